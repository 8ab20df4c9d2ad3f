import TestSupport
import Testing
import Tensors
@testable import NN

struct LeakyReLUTests {
    typealias K = LayerTestKit

    @Test func valuesAndGradient() {
        let l = LeakyReLU(negativeSlope: 0.1)
        let y = l.forward(Tensor(shape: [5], values: [-2, -0.5, 0, 0.5, 3]), mode: .train)
        expectClose(y, Tensor(shape: [5], values: [-0.2, -0.05, 0, 0.5, 3]), atol: 1e-7, rtol: 0)
        let dx = l.backward(Tensor(shape: [5], values: [1, 2, 3, 4, 5]))
        expectClose(dx, Tensor(shape: [5], values: [0.1, 0.2, 0.3, 4, 5]), atol: 1e-7, rtol: 0)
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayout(layout: Layout) {
        let x = K.awayFrom([0], [2, 16, 3, 3], seed: 1, -2, 2).toLayout(layout)
        let l = LeakyReLU(negativeSlope: 0.1)
        let y = l.forward(x, mode: .train)
        #expect(y.layout == layout)
        let failures = GradientCheck().check(l, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}

struct ConvTranspose2dTests {
    /// Stride 1 equals the convolution with the kernel transposed in channels and flipped, padding k − 1 − p:
    /// a hand case (1 channel in, 1 out, 2×2 kernel, no padding) against the definition
    /// y[i + u, j + v] += x[i, j]·w[u, v].
    @Test func handCase() {
        let c = ConvTranspose2d(inputChannels: 1, outputChannels: 1, kernelSize: 2)
        c.weight.value = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        c.bias.value = Tensor(shape: [1], values: [0.5])
        let y = c.forward(Tensor(shape: [1, 1, 2, 2], values: [1, 10, 100, 1000]), mode: .eval).toLayout(.plain)
        #expect(y.shape == [1, 1, 3, 3])
        let expected: [Float] = [1, 12, 20, 103, 1234, 2040, 300, 3400, 4000].map { $0 + 0.5 }
        expectClose(y, Tensor(shape: [1, 1, 3, 3], values: expected), atol: 1e-3, rtol: 0)
    }

    @Test func gradients() {
        var rng = RNG(seed: 2)
        let c = ConvTranspose2d(inputChannels: 3, outputChannels: 5, kernelSize: 3, padding: 1)
        c.resetParameters(rng: &rng)
        #expect(c.parameters().map(\.name) == ["weight", "bias"] && c.weight.shape == [3, 5, 3, 3])
        let failures = GradientCheck().check(c, input: randomTensor([2, 3, 4, 4], seed: 3))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
