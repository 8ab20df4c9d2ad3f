import Tensors

/// Fixtures for the non-convolution kernel tests (batch norm, elementwise, pooling, shortcut).
enum LayerKernelsSupport {
    /// The layouts every 4-D kernel is tested on.
    static let layouts: [Layout] = [.plain, .blocked(8), .blocked(16)]

    /// A plain tensor with entries uniform in [lo, hi).
    static func random(_ shape: [Int], seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        var rng = RNG(seed: seed)
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.uniform(lo, hi) }
        return t
    }

    /// Bitwise equality in logical (plain) order.
    static func identical(_ a: Tensor, _ b: Tensor) -> Bool {
        a.shape == b.shape && a.plainArray.map(\.bitPattern) == b.plainArray.map(\.bitPattern)
    }

    /// Storage offset of logical (n, c, p) in [N, C/b, HW, b].
    static func offset(n: Int, c: Int, p: Int, C: Int, HW: Int, b: Int) -> Int {
        ((n * (C / b) + c / b) * HW + p) * b + c % b
    }
}
