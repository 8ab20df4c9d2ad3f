import TestSupport
import Testing
import Tensors
@testable import NN

struct AdaptiveAvgPool2dTests {
    typealias K = LayerTestKit

    /// 5 → 3 uses PyTorch's overlapping windows [0, 2), [1, 4), [3, 5).
    @Test func values() {
        let pool = AdaptiveAvgPool2d(outputHeight: 1, outputWidth: 3)
        let y = pool.forward(Tensor(shape: [1, 1, 1, 5], values: [1, 2, 3, 4, 5]), mode: .train)
        #expect(y.shape == [1, 1, 1, 3] && y.array == [1.5, 3, 4.5])
        let dx = pool.backward(Tensor(shape: [1, 1, 1, 3], values: [2, 3, 4]))
        #expect(dx.array == [1, 2, 1, 3, 2])
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayouts(layout: Layout) {
        for out in [1, 3, 4] {
            let x = randomTensor([2, 16, 7, 7], seed: UInt64(out)).toLayout(layout)
            let pool = AdaptiveAvgPool2d(outputSize: out)
            let y = pool.forward(x, mode: .train)
            #expect(y.shape == [2, 16, out, out] && y.layout == layout)
            expectClose(y, AdaptiveAvgPool2d(outputSize: out).forward(x.toLayout(.plain), mode: .train), atol: 1e-6, rtol: 0)
            let failures = GradientCheck().check(pool, input: x)
            #expect(failures.isEmpty, "out \(out): \(failures.prefix(5))")
        }
    }

    /// The classifier head of the CIFAR models: global average of a blocked [128, 64, 8, 8], then Flatten.
    @Test func globalPoolThenFlatten() {
        let x = randomTensor([128, 64, 8, 8], seed: 9)
        let pool = AdaptiveAvgPool2d(outputSize: 1), flatten = Flatten()
        let f = flatten.forward(pool.forward(x.toLayout(.blocked(16)), mode: .train), mode: .train)
        #expect(f.shape == [128, 64] && f.layout == .plain)
        var worst: Float = 0
        for nc in 0..<(128 * 64) {
            var s: Double = 0
            for p in 0..<64 { s += Double(x[nc * 64 + p]) }
            worst = max(worst, abs(f[nc] - Float(s / 64)))
        }
        #expect(worst < 1e-6)
        let dx = pool.backward(flatten.backward(Tensor(shape: [128, 64], values: Array(repeating: 64, count: 128 * 64))))
        #expect(dx.layout == .blocked(16) && dx.array.allSatisfy { $0 == 1 })
    }
}
