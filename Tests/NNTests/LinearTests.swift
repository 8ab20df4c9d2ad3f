import TestSupport
import Testing
import Kernels
import Tensors
@testable import NN

@Suite("Linear", .serialized)
struct LinearTests {
    private func layer(_ i: Int, _ o: Int, bias: Bool = true) -> Linear {
        let l = Linear(inputFeatures: i, outputFeatures: o, bias: bias)
        var rng = RNG(seed: 11)
        l.resetParameters(rng: &rng)
        return l
    }

    @Test("finite-difference gradients", arguments: [true, false])
    func gradients(_ bias: Bool) {
        let l = layer(24, 10, bias: bias)
        let failures = GradientCheck().check(l, input: randomTensor([5, 24], seed: 2))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test("hand-computed forward and backward")
    func handComputed() {
        let l = Linear(inputFeatures: 2, outputFeatures: 2)
        l.weight.value.copyElements(from: Tensor(shape: [2, 2], values: [1, 2, 3, 4]))   // W = [[1, 2], [3, 4]]
        l.bias!.value.copyElements(from: Tensor(shape: [2], values: [0.5, -1]))
        let x = Tensor(shape: [1, 2], values: [1, -1])
        let y = l.forward(x, mode: .train)
        #expect(y.array == [-0.5, -2])                    // x·Wᵀ + b = [1 − 2 + 0.5, 3 − 4 − 1]
        let dx = l.backward(Tensor(shape: [1, 2], values: [1, 2]))
        #expect(dx.array == [7, 10])                      // dy·W
        #expect(l.weight.grad.array == [1, -1, 2, -2])    // dyᵀ·x
        #expect(l.bias!.grad.array == [1, 2])
    }

    @Test("parameters, names and init bounds")
    func bookkeeping() {
        let l = layer(64, 10)
        #expect(l.parameters().map(\.name) == ["weight", "bias"])
        #expect(l.weight.shape == [10, 64])
        #expect(l.parameterCount == 650)
        #expect(l.weight.value.array.allSatisfy { abs($0) <= 0.125 })
        #expect(Linear(inputFeatures: 3, outputFeatures: 2, bias: false).parameters().map(\.name) == ["weight"])
    }
}
