import TestSupport
import Testing
import Tensors
@testable import NN

struct ReLU6Tests {
    typealias K = LayerTestKit

    @Test func valuesAndHardtanhGradient() {
        let relu6 = ReLU6()
        let y = relu6.forward(Tensor(shape: [6], values: [-1, 0, 0.5, 6, 7, 5.9]), mode: .train)
        #expect(y.array == [0, 0, 0.5, 6, 6, 5.9])
        let dx = relu6.backward(Tensor(shape: [6], values: [1, 2, 3, 4, 5, 6]))
        #expect(dx.array == [0, 0, 3, 0, 0, 6])
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayout(layout: Layout) {
        let x = K.awayFrom([0, 6], [2, 16, 3, 3], seed: 1, -2, 8).toLayout(layout)
        let relu6 = ReLU6()
        let y = relu6.forward(x, mode: .train)
        #expect(y.layout == layout)
        expectClose(y, ReLU6().forward(x.toLayout(.plain), mode: .train), atol: 0, rtol: 0)
        let failures = GradientCheck().check(relu6, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
