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

    /// The tree: named children in state order, paths as PyTorch's `named_modules()`.
    @Test func moduleTree() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 0)
        #expect(model.children.map(\.name) == ["conv1", "bn1", "relu", "layer1", "layer2", "layer3", "pool", "flatten",
                                                "bn2", "linear"])
        let paths = model.modules().map(\.path)
        #expect(paths.prefix(6) == ["", "conv1", "bn1", "relu", "layer1", "layer1.0"])
        #expect(paths.contains("layer2.0.shortcut") && !paths.contains("layer1.0.shortcut"))
        #expect(model.layer(at: "layer3.2.conv2") is Conv2d)
        #expect(model.layer(at: "layer3.2.bn2") is BatchNorm2d)
        #expect(model.layer(at: "layer3.3") == nil && model.layer(at: "layer3.2.conv") == nil)
        #expect((model as! ResNetCIFAR).blocks.map(\.name) == ["layer1.0", "layer1.1", "layer1.2", "layer2.0", "layer2.1",
                                                                "layer2.2", "layer3.0", "layer3.1", "layer3.2"])
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

@Suite("Replace by path")
struct ReplaceByPathTests {
    /// Every conv replaced through the generic walk: state names gain exactly the wrapper's `extra`, the
    /// forward uses the replacements (it reads the slots), and outputs are unchanged.
    @Test(arguments: [("resnet20", 19), ("vgg8", 5), ("vgg11", 8), ("vgg13", 10)])
    func everyConvReplaced(name: String, count: Int) throws {
        let model = try ModelZoo.make(name, classes: 10, seed: 9)
        let x = randomTensor([2, 3, 32, 32], seed: 10)
        let before = model.forward(x, mode: .eval).array
        let names = model.namedTensors().map(\.name)
        var seen: [String] = []
        try model.replaceLayers { path, layer in
            guard layer is Conv2d else { return nil }
            seen.append(path)
            return WrappedConv(layer)
        }
        #expect(seen.count == count)
        #expect(seen.allSatisfy { model.layer(at: $0) is WrappedConv })
        let after = model.namedTensors().map(\.name)
        #expect(Set(after).subtracting(names) == Set(seen.map { $0 + ".extra" }))
        #expect(after.filter { !$0.hasSuffix(".extra") } == names)
        #expect(model.forward(x, mode: .eval).array == before)
    }

    /// A replacement at a path is what forward runs: a layer that zeroes its output changes the logits.
    @Test func forwardUsesReplacement() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 9)
        let x = randomTensor([2, 3, 16, 16], seed: 10)
        let old = try model.replaceLayer(at: "layer3.2.relu2", with: Zero())
        #expect(old is ReLU)
        let y = model.forward(x, mode: .eval)
        // Zero features → pooled zeros → bn2 and linear of zeros: every row equals the others.
        #expect(Array(y.array[0..<10]) == Array(y.array[10..<20]))
        try model.replaceLayer(at: "layer3.2.relu2", with: old)
        #expect(Array(model.forward(x, mode: .eval).array[0..<10]) != Array(model.forward(x, mode: .eval).array[10..<20]))
        #expect(throws: LayerTreeError.noLayer(path: "layer9")) { try model.replaceLayer(at: "layer9", with: Zero()) }
        #expect(throws: LayerTreeError.notReplaceable(path: "")) { try model.replaceLayer(at: "", with: Zero()) }
    }
}

/// y = 0 of x's shape.
final class Zero: Layer {
    func forward(_ x: Tensor, mode: Mode) -> Tensor { Tensor(shape: x.shape) }
    func backward(_ dy: Tensor) -> Tensor { Tensor(shape: dy.shape) }
}
