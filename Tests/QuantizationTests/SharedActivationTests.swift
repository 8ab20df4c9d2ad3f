import Kernels
@testable import Models
import NN
import Quantization
import Tensors
import Testing
import TestSupport

/// MQBench's activation placement (reference §2.3.1): one fake-quantizer per tensor, read by every user of
/// the tensor, so a residual block's identity branch adds the quantized input.
@Suite(.serialized) struct SharedActivationTests {
    init() { Threads.set(2) }

    private func batch(_ n: Int, _ hw: Int, seed: UInt64) -> Tensor {
        var rng = RNG(seed: seed)
        let x = Tensor(shape: [n, 3, hw, hw])
        for i in 0..<x.count { x[i] = rng.normal() }
        return x
    }

    @Test func blocksReadTheirInputThroughOneQuantizer() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 3)
        try quantize(model: model, scheme: LSQScheme(), bits: 4, style: .tinyImageNet)
        let keys = model.namedTensors().map(\.name)
        #expect(keys.contains("layer2.0.input_quant.input_fake_quant.scale"))
        #expect(!keys.contains("layer2.0.conv1.input_fake_quant.scale"))
        #expect(keys.contains("layer2.0.conv2.input_fake_quant.scale"))
        let conv1 = try #require(model.layer(at: "layer2.0.conv1") as? QConv2d)
        #expect(conv1.inputQuantizer == nil && conv1.weightQuantizer != nil)
        // The per-layer form keeps a quantizer on each conv input and none in the blocks.
        let perLayer = try ModelZoo.make("resnet20", classes: 10, seed: 3)
        try quantize(model: perLayer, scheme: LSQScheme(), bits: 4, style: .tinyImageNet, perLayerActivations: true)
        #expect(!quantizedLayers(in: perLayer).contains { $0.layer is QuantizedActivation })
        #expect(perLayer.namedTensors().map(\.name).contains("layer2.0.conv1.input_fake_quant.scale"))
        // Both forms have one learnable scale per activation tensor a conv reads here (option-A shortcuts
        // have no conv), so the parameter counts agree; CIFAR style and EWGS place none in the blocks.
        #expect(model.parameters().count == perLayer.parameters().count)
        let cifar = try ModelZoo.make("resnet20", classes: 10, seed: 3)
        try quantize(model: cifar, scheme: LSQScheme(), bits: 4, style: .cifar)
        #expect(!quantizedLayers(in: cifar).contains { $0.layer is QuantizedActivation })
        let ewgs = try ModelZoo.make("resnet20", classes: 10, seed: 3)
        try quantize(model: ewgs, scheme: EWGSScheme(), bits: 2, style: .tinyImageNet)
        #expect(!quantizedLayers(in: ewgs).contains { $0.layer is QuantizedActivation })
    }

    /// y = relu(bn2(conv2(relu(bn1(conv1(Q(x)))))) + Q(x)): the identity adds the quantized input, which
    /// the per-layer form does not.
    @Test func identityBranchAddsTheQuantizedInput() throws {
        let shared = try ModelZoo.make("resnet20", classes: 10, seed: 5)
        let perLayer = try ModelZoo.make("resnet20", classes: 10, seed: 5)
        try quantize(model: shared, scheme: PACTScheme(), bits: 3, style: .tinyImageNet)
        try quantize(model: perLayer, scheme: PACTScheme(), bits: 3, style: .tinyImageNet, perLayerActivations: true)
        let x = batch(4, 16, seed: 9)
        calibrateQuantizers(model: shared, firstBatch: x)
        calibrateQuantizers(model: perLayer, firstBatch: x)
        let block = try #require(shared.layer(at: "layer1.1") as? BasicBlock)
        let h = batch(4, 16, seed: 10)
        let input = Tensor(shape: [4, 16, 16, 16])
        for i in 0..<input.count { input[i] = abs(h[i % h.count]) * 3 }
        let y = block.forward(input, mode: .eval)
        let xq = try #require(block.inputQuant.layer).forward(input, mode: .eval)
        var t = block.conv1.forward(xq, mode: .eval)
        t = block.bn1.forward(t, mode: .eval)
        t = block.relu1.forward(t, mode: .eval)
        t = block.conv2.forward(t, mode: .eval)
        t = block.bn2.forward(t, mode: .eval)
        let expected = block.relu2.forward(add(t, xq), mode: .eval)
        #expect(y.toLayout(.plain).array == expected.toLayout(.plain).array)
        #expect(xq.array != input.array)
        let other = try #require(perLayer.layer(at: "layer1.1") as? BasicBlock)
        #expect(other.forward(input, mode: .eval).toLayout(.plain).array != y.toLayout(.plain).array)
    }

    /// The block's backward sends the summed gradient of conv1 and the identity through the one quantizer:
    /// with DoReFa's "32-bit" form (tanh, normalisation by the tensor's max, rounding at 2⁻³¹) the surrogate
    /// is the exact derivative, so a finite-difference check covers the wiring, input and parameters.
    @Test func blockGradientsMatchFiniteDifferences() throws {
        var rng = RNG(seed: 2)
        let block = BasicBlock(inputChannels: 8, outputChannels: 8, stride: 1, rng: &rng)
        let scheme = DoReFaScheme()
        block.conv1 = QConv2d(block.conv1 as! Conv2d, weightQuantizer: try scheme.makeWeightQuantizer(bits: 32, settings: scheme.settings),
                              inputQuantizer: nil, outputScale: false)
        let q = try #require(try scheme.makeActivationQuantizer(bits: 32, settings: scheme.settings))
        try block.installActivationQuantizer(QuantizedActivation(q), at: "input_quant")
        let x = randomTensor([2, 8, 5, 5], seed: 4)
        _ = block.forward(x, mode: .train)
        let failures = GradientCheck(h: 1e-3, atol: 4e-3, skipNonSmooth: true).check(block, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
