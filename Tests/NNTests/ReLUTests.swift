import TestSupport
import Testing
import Tensors
@testable import NN

struct ReLUTests {
    typealias K = LayerTestKit

    @Test func values() {
        let relu = ReLU()
        let y = relu.forward(Tensor(shape: [5], values: [-1, 0, 0.5, 2, -3]), mode: .train)
        #expect(y.array == [0, 0, 0.5, 2, 0])
        let dx = relu.backward(Tensor(shape: [5], values: [1, 2, 3, 4, 5]))
        #expect(dx.array == [0, 0, 3, 4, 0])
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayout(layout: Layout) {
        let x = K.awayFrom([0], [2, 16, 3, 3], seed: 1, -1, 1).toLayout(layout)
        let relu = ReLU()
        let y = relu.forward(x, mode: .train)
        #expect(y.layout == layout)
        expectClose(y, ReLU().forward(x.toLayout(.plain), mode: .train), atol: 0, rtol: 0)
        let failures = GradientCheck().check(relu, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        // dy may arrive in another layout; dx comes back in the input's.
        let dy = randomTensor(x.shape, seed: 2)
        let dx = relu.backward(dy)
        #expect(dx.layout == layout)
        expectClose(dx, relu.backward(dy.toLayout(layout)), atol: 0, rtol: 0)
    }
}
