import TestSupport
import Testing
import Tensors
@testable import NN

struct MaxPool2dTests {
    typealias K = LayerTestKit

    @Test func outputSizes() {
        #expect(MaxPool2d(kernelSize: 2, stride: 2).outputLength(32) == 16)
        #expect(MaxPool2d(kernelSize: 3, stride: 2, padding: 1).outputLength(112) == 56)
        #expect(MaxPool2d(kernelSize: 3, stride: 2).outputLength(14) == 6)
        #expect(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true).outputLength(14) == 7)
        #expect(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true).outputLength(13) == 6)
        // ceil mode drops a last window that would start inside the right padding.
        #expect(MaxPool2d(kernelSize: 2, stride: 2, padding: 1, ceilMode: true).outputLength(4) == 3)
        #expect(MaxPool2d(kernelSize: 3).stride == 3)
    }

    @Test func valuesAndRouting() {
        let pool = MaxPool2d(kernelSize: 2, stride: 2)
        let x = Tensor(shape: [1, 1, 2, 4], values: [1, 5, 2, 2, 3, 4, 2, 0])
        let y = pool.forward(x, mode: .train)
        #expect(y.shape == [1, 1, 1, 2] && y.array == [5, 2])
        let dx = pool.backward(Tensor(shape: [1, 1, 1, 2], values: [10, 20]))
        // Tie between the two 2s of the second window: the first (row 0, column 2) takes the gradient.
        #expect(dx.array == [0, 10, 20, 0, 0, 0, 0, 0])
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayouts(layout: Layout) {
        for (k, s, p, ceil) in [(2, 2, 0, false), (3, 2, 1, false), (3, 2, 0, true)] {
            let x = K.distinct([2, 16, 7, 7], seed: UInt64(k + p)).toLayout(layout)
            let pool = MaxPool2d(kernelSize: k, stride: s, padding: p, ceilMode: ceil)
            let y = pool.forward(x, mode: .train)
            #expect(y.layout == layout)
            expectClose(y, MaxPool2d(kernelSize: k, stride: s, padding: p, ceilMode: ceil)
                                    .forward(x.toLayout(.plain), mode: .train), atol: 0, rtol: 0)
            let failures = GradientCheck().check(pool, input: x)
            #expect(failures.isEmpty, "k\(k) s\(s) p\(p): \(failures.prefix(5))")
        }
    }
}
