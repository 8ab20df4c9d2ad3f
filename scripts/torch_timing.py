"""The PyTorch timing loop the scripts/bench_*.py comparisons share: `warmup` untimed calls of a step, then
`steps` timed ones (wall clock, time.perf_counter); the benchmarks report the median (robust to the odd
hiccup of a shared machine), and the name of the CPU they ran on."""
import platform
import statistics
import time


def cpu_name():
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
