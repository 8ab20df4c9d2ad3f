import TestSupport
import Testing
import Kernels
import Tensors
@testable import NN

@Suite("Conv2d", .serialized)
struct Conv2dTests {
    private func layer(_ c: Int, _ k: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1,
                       bias: Bool = true, seed: UInt64 = 3) -> Conv2d {
        let conv = Conv2d(inputChannels: c, outputChannels: k, kernelSize: kernel, stride: stride, padding: padding,
                          groups: groups, bias: bias)
        var rng = RNG(seed: seed)
        conv.resetParameters(rng: &rng)
        return conv
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var c: Int, k: Int, kernel: Int, stride: Int, padding: Int, groups: Int, bias: Bool
        var hw: Int, layout: Layout
        var testDescription: String {
            "\(c)→\(k) k\(kernel) s\(stride) p\(padding) g\(groups) bias \(bias) \(hw)x\(hw) \(layout)"
        }
    }

    static let cases: [Case] = [
        Case(c: 16, k: 16, kernel: 3, stride: 1, padding: 1, groups: 1, bias: false, hw: 6, layout: .blocked(16)),
        Case(c: 16, k: 32, kernel: 3, stride: 2, padding: 1, groups: 1, bias: true, hw: 7, layout: .blocked(16)),
        Case(c: 3, k: 16, kernel: 3, stride: 1, padding: 1, groups: 1, bias: true, hw: 5, layout: .plain),
        Case(c: 8, k: 8, kernel: 1, stride: 1, padding: 0, groups: 1, bias: true, hw: 4, layout: .blocked(8)),
        Case(c: 16, k: 10, kernel: 3, stride: 1, padding: 0, groups: 1, bias: true, hw: 5, layout: .blocked(16)),
        Case(c: 32, k: 32, kernel: 3, stride: 1, padding: 1, groups: 2, bias: true, hw: 5, layout: .blocked(16)),
        Case(c: 32, k: 32, kernel: 3, stride: 1, padding: 1, groups: 32, bias: false, hw: 6, layout: .blocked(16)),
        Case(c: 32, k: 32, kernel: 3, stride: 2, padding: 1, groups: 32, bias: true, hw: 7, layout: .blocked(16)),
        Case(c: 4, k: 8, kernel: 7, stride: 2, padding: 3, groups: 1, bias: true, hw: 9, layout: .plain),
    ]

    @Test("finite-difference gradients", arguments: cases)
    func gradients(_ c: Case) {
        Threads.set(2)
        let conv = layer(c.c, c.k, kernel: c.kernel, stride: c.stride, padding: c.padding, groups: c.groups, bias: c.bias)
        let x = randomTensor([2, c.c, c.hw, c.hw], seed: 9).toLayout(c.layout)
        let failures = GradientCheck().check(conv, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test("forward matches the naive reference in plain layout")
    func forwardMatchesReference() {
        let conv = layer(16, 32, kernel: 3, stride: 2, padding: 1)
        let x = randomTensor([2, 16, 9, 9], seed: 4)
        let g = conv.geometry(batch: 2, inputHeight: 9, inputWidth: 9)
        // oneDNN writes the channel block its fastest implementation on this CPU uses: 16 with AVX-512, 8 with AVX2.
        let block = convOutputBlock(g, bias: true)
        #expect(block == 8 || block == 16)
        let y = conv.forward(x.toLayout(.blocked(16)), mode: .eval)
        #expect(y.layout == .blocked(block))
        let ref = Tensor(shape: g.outputShape)
        withUnsafeMutablePointers(ref, x, conv.weight.value, conv.bias!.value) { ref, x, w, b in
            convForwardReference(ref, yBlock: 1, x, xBlock: 1, w, b, g)
        }
        let worst = zip(y.plainArray, ref.array).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4)
    }

    @Test("the stem skips the input gradient but still accumulates weight gradients")
    func stemSkipsInputGradient() {
        let conv = layer(3, 16, kernel: 3, padding: 1, bias: false)
        conv.propagatesInputGradient = false
        let x = randomTensor([2, 3, 8, 8], seed: 5)
        let y = conv.forward(x, mode: .train)
        let dy = Tensor(shape: y.shape, layout: y.layout)
        dy.fill(1)
        let dx = conv.backward(dy)
        #expect(dx.shape == [0])
        let once = conv.weight.grad.array
        #expect(once.contains { $0 != 0 })
        _ = conv.forward(x, mode: .train)
        _ = conv.backward(dy)
        let twice = conv.weight.grad.array
        #expect(zip(once, twice).allSatisfy { abs(2 * $0 - $1) <= 1e-4 * max(1, abs($1)) }, "gradients accumulate")
    }

    @Test("eval forward keeps no input; parameters, names and MACs")
    func bookkeeping() {
        let conv = layer(16, 32, kernel: 3, stride: 2, padding: 1, groups: 2)
        #expect(conv.parameters().map(\.name) == ["weight", "bias"])
        #expect(conv.weight.shape == [32, 8, 3, 3])
        #expect(conv.parameterCount == 32 * 8 * 9 + 32)
        #expect(conv.macs(inputHeight: 32, inputWidth: 32) == 32 * 16 * 16 * 8 * 9)
        #expect(Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 1, bias: false).parameters().map(\.name) == ["weight"])
        let bound = 1 / Float(8 * 9).squareRoot()
        #expect(conv.weight.value.array.allSatisfy { abs($0) <= bound })
        #expect(conv.bias!.value.array.allSatisfy { abs($0) <= bound })
        _ = conv.forward(randomTensor([1, 16, 8, 8], seed: 1), mode: .eval)
        let saved = Mirror(reflecting: conv).children.first { $0.label == "savedInput" }?.value as? Tensor
        #expect(saved == nil)
    }

    @Test("same input twice gives bit-identical outputs and gradients")
    func determinism() {
        Threads.set(2)
        let conv = layer(16, 16, kernel: 3, padding: 1)
        let x = randomTensor([4, 16, 12, 12], seed: 6).toLayout(.blocked(16))
        func once() -> [[Float]] {
            conv.zeroGrad()
            let y = conv.forward(x, mode: .train)
            let dy = randomTensor(y.shape, seed: 8).toLayout(y.layout)
            let dx = conv.backward(dy)
            return [y.array, dx.array, conv.weight.grad.array, conv.bias!.grad.array]
        }
        let a = once(), b = once()
        for (u, v) in zip(a, b) { #expect(u.map(\.bitPattern) == v.map(\.bitPattern)) }
    }
}
