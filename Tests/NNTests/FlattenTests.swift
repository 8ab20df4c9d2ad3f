import TestSupport
import Testing
import Tensors
@testable import NN

struct FlattenTests {
    typealias K = LayerTestKit

    @Test(arguments: LayerTestKit.layouts)
    func logicalOrderAndBackwardLayout(layout: Layout) {
        let x = randomTensor([2, 16, 3, 2], seed: 1)
        let flatten = Flatten()
        let y = flatten.forward(x.toLayout(layout), mode: .train)
        #expect(y.shape == [2, 96] && y.layout == .plain && y.array == x.array)
        let dy = randomTensor([2, 96], seed: 2)
        let dx = flatten.backward(dy)
        #expect(dx.shape == [2, 16, 3, 2] && dx.layout == layout && dx.plainArray == dy.array)
        let failures = GradientCheck().check(flatten, input: x.toLayout(layout))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test func oneByOneBlockedAndTwoD() {
        let x = randomTensor([4, 32, 1, 1], seed: 3)
        let y = Flatten().forward(x.toLayout(.blocked(16)), mode: .train)
        #expect(y.shape == [4, 32] && y.array == x.array)
        let z = Flatten().forward(randomTensor([4, 7], seed: 4), mode: .train)
        #expect(z.shape == [4, 7])
    }
}
