import TestSupport
import Testing
import Tensors
@testable import NN

struct BatchNorm1dTests {
    typealias K = LayerTestKit

    /// Channel 0 holds {1, 2, 6}: mean 3, biased variance 14/3, unbiased 7.
    @Test func runningStatisticsByHand() {
        let x = Tensor(shape: [3, 2], values: [1, 5, 2, 5, 6, 5])
        let bn = BatchNorm1d(features: 2)
        let y = bn.forward(x, mode: .train)
        #expect(abs(bn.runningMean.value[0] - 0.3) < 1e-7 && abs(bn.runningMean.value[1] - 0.5) < 1e-7)
        #expect(abs(bn.runningVar.value[0] - 1.6) < 1e-6 && abs(bn.runningVar.value[1] - 0.9) < 1e-7)
        #expect(bn.numBatchesTracked.value[0] == 1)
        #expect(abs(y[0] - Float(-2 / (14.0 / 3 + 1e-5).squareRoot())) < 1e-6)
        #expect(y[1] == 0)
        #expect(bn.buffers().map(\.name) == ["running_mean", "running_var", "num_batches_tracked"])
    }

    /// BatchNorm1d on [N, C] equals BatchNorm2d on [N, C, 1, 1], forward and backward.
    @Test func matchesBatchNorm2d() {
        let x = randomTensor([16, 8], seed: 1), dy = randomTensor([16, 8], seed: 2)
        let b1 = BatchNorm1d(features: 8), b2 = BatchNorm2d(features: 8)
        K.randomizeParameters(b1, seed: 3)
        K.randomizeParameters(b2, seed: 3)
        let y1 = b1.forward(x, mode: .train), y2 = b2.forward(x.reshaped([16, 8, 1, 1]), mode: .train)
        let dx1 = b1.backward(dy), dx2 = b2.backward(dy.reshaped([16, 8, 1, 1]))
        #expect(y1.shape == [16, 8] && dx1.shape == [16, 8])
        #expect(y1.array == y2.array && dx1.array == dx2.array)
        #expect(b1.weight.grad.array == b2.weight.grad.array && b1.runningVar.value.array == b2.runningVar.value.array)
    }

    @Test(arguments: [[6, 5], [4, 5, 3]])
    func gradients(shape: [Int]) {
        let bn = BatchNorm1d(features: 5)
        K.randomizeParameters(bn, seed: 4)
        let train = GradientCheck().check(bn, input: randomTensor(shape, seed: 5))
        #expect(train.isEmpty, "\(train.prefix(5))")
        bn.runningMean.value = randomTensor([5], seed: 6, -0.5, 0.5)
        bn.runningVar.value = randomTensor([5], seed: 7, 0.5, 2)
        let eval = GradientCheck().check(bn, input: randomTensor(shape, seed: 8), mode: .eval)
        #expect(eval.isEmpty, "\(eval.prefix(5))")
    }
}
