import Foundation
import Tensors

/// Wall times of `body` in milliseconds over `repeats` calls, after `warmup` untimed calls.
func timings(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> [Double] {
    for _ in 0..<warmup { body() }
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    return times
}

/// Fastest of `timings` (the figure least disturbed by other processes on a shared machine).
func fastest(repeats: Int, _ body: () -> Void) -> Double { timings(repeats: repeats, body).min()! }

/// A plain tensor with entries uniform in [lo, hi), drawn in storage order from `RNG(seed:)`.
func randomTensor(_ shape: [Int], seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
    var rng = RNG(seed: seed)
    let t = Tensor(shape: shape)
    t.withUnsafeMutablePointer { p in for i in 0..<t.count { p[i] = rng.uniform(lo, hi) } }
    return t
}
