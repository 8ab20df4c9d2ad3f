import CBLAS
import CDNNL
import Glibc

/// The engine's thread count. oneDNN (GNU OpenMP), OpenBLAS and the Swift kernels all follow it, so a
/// run's numbers depend on (config, seed, threads) only. Set it once, before training.
public enum Threads {
    public private(set) static var count: Int = 1

    public static func set(_ n: Int) {
        count = max(1, n)
        omp_set_num_threads(Int32(count))
        openblas_set_num_threads(Int32(count))
        configureAllocator()
    }

    /// Activations are allocated afresh every step; glibc would hand big blocks back to the kernel with
    /// munmap and fault them in again (measured: ~15% of a ResNet-20 step). Keep them in the heap.
    private static var allocatorConfigured = false
    static func configureAllocator() {
        guard !allocatorConfigured else { return }
        allocatorConfigured = true
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    }
}

/// Context handed through libgomp to the worker function.
private struct ParallelContext {
    var n: Int
    var body: (Int) -> Void

    /// This thread's chunk. A method, so that the workers borrow the context in place: copying it out of the
    /// pointer retained and released the closure on every thread of every call, one refcount that all the
    /// threads contend for (6% of a ShuffleNet-V2 step at 64×64).
    func run(thread w: Int, of workers: Int) {
        let lo = n * w / workers, hi = n * (w + 1) / workers
        for i in lo..<hi { body(i) }
    }
}

/// Runs `body(i)` for i in 0..<n on `Threads.count` threads of the OpenMP pool (the one oneDNN and
/// OpenBLAS run on: one set of threads for the whole engine, no oversubscription). Work is split in
/// contiguous, fixed chunks by thread number, so a body that writes only to its own indices gives
/// results independent of scheduling.
@inline(__always)
public func parallelFor(_ n: Int, minimumPerThread: Int = 1, _ body: (Int) -> Void) {
    let workers = min(Threads.count, max(1, n / max(1, minimumPerThread)))
    if workers <= 1 || n <= 1 {
        for i in 0..<n { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var context = ParallelContext(n: n, body: body)
        withUnsafeMutablePointer(to: &context) { ptr in
            GOMP_parallel({ raw in
                raw!.assumingMemoryBound(to: ParallelContext.self).pointee
                    .run(thread: Int(omp_get_thread_num()), of: Int(omp_get_num_threads()))
            }, ptr, UInt32(workers), 0)
        }
    }
}
