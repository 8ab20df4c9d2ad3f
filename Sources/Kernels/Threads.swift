import CBLAS
import CDNNL
import Dispatch

/// The engine's thread count. oneDNN (GNU OpenMP), OpenBLAS and the Swift kernels all follow it, so a
/// run's numbers depend on (config, seed, threads) only. Set it once, before training.
public enum Threads {
    public private(set) static var count: Int = 1

    public static func set(_ n: Int) {
        count = max(1, n)
        omp_set_num_threads(Int32(count))
        openblas_set_num_threads(Int32(count))
    }
}

/// Runs `body(i)` for i in 0..<n on `Threads.count` workers. Work is split in contiguous, fixed chunks,
/// so a body that writes only to its own indices gives results independent of scheduling.
@inline(__always)
public func parallelFor(_ n: Int, minimumPerThread: Int = 1, _ body: (Int) -> Void) {
    let workers = min(Threads.count, max(1, n / max(1, minimumPerThread)))
    if workers <= 1 || n <= 1 {
        for i in 0..<n { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = n * w / workers, hi = n * (w + 1) / workers
            for i in lo..<hi { body(i) }
        }
    }
}
