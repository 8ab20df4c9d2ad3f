import TestSupport
import Testing
import NN
import Tensors
@testable import Models

/// Finite differences through conv → BN → ReLU stacks: small steps, probes that straddle a ReLU kink skipped
/// (see `GradientCheck.skipNonSmooth`).
let smoothCheck = GradientCheck(h: 1e-3, atol: 4e-3, skipNonSmooth: true)

@Suite("CIFAR ResNet")
struct ResNetCIFARTests {
    @Test func identityBlockGradients() {
        var rng = RNG(seed: 21)
        let block = BasicBlock(inputChannels: 16, outputChannels: 16, stride: 1, rng: &rng)
        #expect(block.shortcut == nil)
        let failures = smoothCheck.check(block, input: randomTensor([2, 16, 6, 6], seed: 22))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test func optionABlockGradients() {
        var rng = RNG(seed: 23)
        let block = BasicBlock(inputChannels: 16, outputChannels: 32, stride: 2, rng: &rng)
        #expect(block.shortcut != nil)
        let x = randomTensor([2, 16, 8, 8], seed: 24)
        #expect(block.forward(x, mode: .train).shape == [2, 32, 4, 4])
        let failures = smoothCheck.check(block, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    // The whole network is checked against PyTorch (ResNet20GoldenTests), not by finite differences:
    // every parameter there moves thousands of ReLU inputs, and most probes straddle a kink.

    @Test func forwardShapes() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 5)
        let x = randomTensor([3, 3, 32, 32], seed: 6)
        let y = model.forward(x, mode: .train)
        #expect(y.shape == [3, 10])
        #expect(y.array.allSatisfy { $0.isFinite })
        _ = model.backward(randomTensor([3, 10], seed: 7))
        #expect(model.parameters().allSatisfy { $0.parameter.grad.array.contains { $0 != 0 } })
        #expect(model.forward(x, mode: .eval).shape == [3, 10])
    }

    @Test func quantizableConvs() throws {
        let r20 = try ModelZoo.make("resnet20", classes: 10, seed: 0)
        #expect(r20.quantizableConvNames.count == 18)
        #expect(r20.quantizableConvNames.prefix(3) == ["layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1"])
        #expect(r20.quantizableConvNames.last == "layer3.2.conv2")
        let r32 = try ModelZoo.make("resnet32", classes: 100, seed: 0)
        #expect(r32.quantizableConvNames.count == 30)
    }
}

/// A stand-in for a quantized conv: wraps a conv and adds one parameter, as QConv adds its quantizer's.
final class WrappedConv: Layer {
    let inner: Layer
    let extra = Parameter(Tensor(shape: [1]))
    init(_ inner: Layer) { self.inner = inner }
    func forward(_ x: Tensor, mode: Mode) -> Tensor { inner.forward(x, mode: mode) }
    func backward(_ dy: Tensor) -> Tensor { inner.backward(dy) }
    func parameters() -> [(name: String, parameter: Parameter)] { inner.parameters() + [("extra", extra)] }
}

@Suite("Quantizable conv replacement")
struct ReplaceConvTests {
    @Test(arguments: [("resnet20", 18), ("vgg8", 4), ("vgg11", 7), ("vgg13", 8)])
    func replacementKeepsNamesAndOutputs(name: String, count: Int) throws {
        let model = try ModelZoo.make(name, classes: 10, seed: 9)
        let x = randomTensor([2, 3, 32, 32], seed: 10)
        let before = model.forward(x, mode: .eval).array
        let names = model.namedTensors().map(\.name)
        var seen: [String] = []
        model.replaceQuantizableConvs { convName, conv in
            seen.append(convName)
            #expect(conv is Conv2d)
            return WrappedConv(conv)
        }
        #expect(seen == model.quantizableConvNames)
        #expect(seen.count == count)
        let after = model.namedTensors().map(\.name)
        #expect(Set(after).subtracting(names) == Set(seen.map { $0 + ".extra" }))
        #expect(Set(names).isSubset(of: Set(after)))
        #expect(model.forward(x, mode: .eval).array == before)
    }
}
