import TestSupport
import Testing
import Tensors
@testable import NN

struct AvgPool2dTests {
    typealias K = LayerTestKit

    @Test func values() {
        let pool = AvgPool2d(kernelSize: 2)
        let y = pool.forward(Tensor(shape: [1, 1, 2, 4], values: [1, 2, 3, 4, 5, 6, 7, 8]), mode: .train)
        #expect(y.shape == [1, 1, 1, 2] && y.array == [3.5, 5.5])
        let dx = pool.backward(Tensor(shape: [1, 1, 1, 2], values: [4, 8]))
        #expect(dx.array == [1, 1, 2, 2, 1, 1, 2, 2])
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayouts(layout: Layout) {
        for (k, s) in [(2, 2), (3, 2), (8, 8)] {
            let x = randomTensor([2, 16, 8, 8], seed: UInt64(k)).toLayout(layout)
            let pool = AvgPool2d(kernelSize: k, stride: s)
            let y = pool.forward(x, mode: .train)
            #expect(y.layout == layout)
            expectClose(y, AvgPool2d(kernelSize: k, stride: s).forward(x.toLayout(.plain), mode: .train), atol: 0, rtol: 0)
            let failures = GradientCheck().check(pool, input: x)
            #expect(failures.isEmpty, "k\(k) s\(s): \(failures.prefix(5))")
        }
    }
}
