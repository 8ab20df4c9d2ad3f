import TestSupport
import Testing
import Tensors
@testable import NN

/// Fixtures for the tests of the non-convolution layers.
enum LayerTestKit {
    /// The layouts every 4-D layer is tested on.
    static let layouts: [Layout] = [.plain, .blocked(8), .blocked(16)]

    /// Bitwise equality of shape, layout and storage.
    static func identical(_ a: Tensor, _ b: Tensor) -> Bool {
        a.shape == b.shape && a.layout == b.layout && a.array.map(\.bitPattern) == b.array.map(\.bitPattern)
    }

    /// Random entries in [lo, hi), each at least `gap` away from every value in `kinks`.
    static func awayFrom(_ kinks: [Float], _ shape: [Int], seed: UInt64, _ lo: Float, _ hi: Float, gap: Float = 0.05) -> Tensor {
        let t = randomTensor(shape, seed: seed, lo, hi)
        for i in 0..<t.count {
            for k in kinks where abs(t[i] - k) < gap { t[i] = t[i] < k ? k - gap : k + gap }
        }
        return t
    }

    /// A random permutation of 0.05·(0..<count): distinct values 0.05 apart (no near-ties for max pooling).
    static func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RNG(seed: seed)
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, values: rng.permutation(n).map { Float($0) * 0.05 - Float(n) * 0.025 })
    }

    /// Sets every parameter of `layer` to uniform values in [lo, hi).
    static func randomizeParameters(_ layer: Layer, seed: UInt64, _ lo: Float = 0.5, _ hi: Float = 1.5) {
        var rng = RNG(seed: seed)
        for (_, p) in layer.parameters() { for i in 0..<p.count { p.value[i] = rng.uniform(lo, hi) } }
    }
}
