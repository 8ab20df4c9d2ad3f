"""The PyTorch timing loop the scripts/bench_*.py comparisons share: `warmup` untimed calls of a step, then
`steps` timed ones (wall clock, time.perf_counter); the benchmarks report the median (robust to the odd
hiccup of a shared machine)."""
import statistics
import time


def step_seconds(step, warmup, steps):
    """Seconds of each of `steps` calls of `step()`, after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def median_step_seconds(step, warmup, steps):
    """statistics.median of `step_seconds(step, warmup, steps)`."""
    return statistics.median(step_seconds(step, warmup, steps))
