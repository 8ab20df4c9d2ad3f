import Kernels
@testable import Models
import NN
import Quantization
import Tensors
import Testing
import TestSupport

/// MQBench's activation placement on the five ImageNet-style models (reference §2.3.1): one fake-quantizer
/// per tensor read by several layers (a residual block's input, a stride-2 ShuffleNet unit's input, a Fire
/// module's squeezed tensor), and MQBench's first/last layers at 32 bits, with SqueezeNet's classifier conv
/// low-bit because its graph ends in `torch.flatten`.
@Suite(.serialized) struct ImageNetSharedActivationTests {
    init() { Threads.set(2) }

    /// Expected shared slots (present) and plain blocks (absent), and the consumers left without a quantizer.
    @Test(arguments: [
        ("resnet18", ["layer1.0.input_quant", "layer2.0.input_quant", "layer4.1.input_quant"], [String](),
         ["layer1.0.conv1", "layer2.0.conv1", "layer2.0.downsample.0"]),
        ("mobilenetv2", ["features.3.input_quant", "features.16.input_quant"], ["features.1.input_quant", "features.2.input_quant"],
         ["features.3.conv.0.0"]),
        ("shufflenet_v2_x0_5", ["stage2.0.input_quant", "stage3.0.input_quant"], ["stage2.1.input_quant"],
         ["stage2.0.branch1.0", "stage2.0.branch2.0"]),
        ("squeezenet1_0", ["features.3.squeeze_activation_quant", "features.12.squeeze_activation_quant"], [String](),
         ["features.3.expand1x1", "features.3.expand3x3"]),
    ])
    func sharedSlots(model name: String, present: [String], absent: [String], consumers: [String]) throws {
        let model = try ModelZoo.make(name, classes: 10, seed: 1)
        try quantize(model: model, scheme: LSQScheme(), bits: 4, style: .tinyImageNet)
        let slots = Set(quantizedLayers(in: model).filter { $0.layer is QuantizedActivation }.map(\.name))
        for p in present { #expect(slots.contains(p), "\(name): no shared quantizer at \(p)") }
        for p in absent { #expect(!slots.contains(p), "\(name): unexpected shared quantizer at \(p)") }
        for p in consumers {
            let q = try #require(model.layer(at: p) as? QuantizedLayer, "\(name): \(p) is not quantized")
            #expect(q.inputQuantizer == nil && q.weightQuantizer?.bits == 4, "\(name): \(p)")
        }
        // A tensor read by k > 1 convs has one learnable scale instead of k: the shared form has fewer.
        let perLayer = try ModelZoo.make(name, classes: 10, seed: 1)
        try quantize(model: perLayer, scheme: LSQScheme(), bits: 4, style: .tinyImageNet, perLayerActivations: true)
        #expect(!quantizedLayers(in: perLayer).contains { $0.layer is QuantizedActivation })
        let extraReaders = name == "mobilenetv2" ? 0 : 1
        #expect(model.parameters().count <= perLayer.parameters().count - extraReaders, "\(name)")
    }

    /// MQBench's "first" layer reads the image and its "last" feed the graph output: 32 bits. SqueezeNet's
    /// output is `torch.flatten`, so its classifier conv and that conv's input stay at the low bit-width.
    @Test(arguments: [("resnet18", "conv1", "fc"), ("mobilenetv2", "features.0.0", "classifier.1"),
                      ("vgg11_bn", "block0.0.conv2d", "classifier"), ("shufflenet_v2_x0_5", "conv1.0", "fc")])
    func edgesAreThirtyTwoBit(model name: String, first: String, last: String) throws {
        let model = try ModelZoo.make(name, classes: 10, seed: 1)
        #expect(model.inputLayerPath == first && model.graphOutputLayerPaths == [last])
        try quantize(model: model, scheme: PACTScheme(), bits: 3, style: .tinyImageNet)
        let lowBit = quantizedLayers(in: model).filter { $0.layer.weightQuantizer?.bits == 3 }
        #expect(lowBit.count == quantizedLayers(in: model).filter { $0.layer.weightQuantizer != nil }.count - 2, "\(name)")
        for p in [first, last] {
            let q = try #require(model.layer(at: p) as? QuantizedLayer, "\(name): \(p) not quantized")
            #expect(q.weightQuantizer?.bits == 32 && q.inputQuantizer?.bits == 32, "\(name): \(p)")
        }
    }

    @Test func squeezeNetClassifierIsLowBit() throws {
        let model = try ModelZoo.make("squeezenet1_0", classes: 10, seed: 1)
        #expect(model.graphOutputLayerPaths.isEmpty)
        try quantize(model: model, scheme: DoReFaScheme(), bits: 8, style: .tinyImageNet)
        let head = try #require(model.layer(at: "classifier.1") as? QuantizedLayer)
        #expect(head.weightQuantizer?.bits == 8 && head.inputQuantizer?.bits == 8)
        let stem = try #require(model.layer(at: "features.0") as? QuantizedLayer)
        #expect(stem.weightQuantizer?.bits == 32)
        // fp_edge_layers: the stem alone is left in full precision.
        let fpEdges = try ModelZoo.make("squeezenet1_0", classes: 10, seed: 1)
        try quantize(model: fpEdges, scheme: DoReFaScheme(), bits: 8, style: .tinyImageNet, fullPrecisionEdges: true)
        #expect(fpEdges.layer(at: "features.0") is Conv2d && fpEdges.layer(at: "classifier.1") is QuantizedLayer)
    }

    /// A slot takes a layer only under its own name and only in a block with a site; once filled it is the
    /// replaceable child of that name, in front of the block's other children.
    @Test func slotInstallation() throws {
        var rng = RNG(seed: 3)
        let fire = Fire(inputChannels: 4, squeeze: 3, expand1x1: 2, expand3x3: 2, rng: &rng)
        let plain = InvertedResidual(inputChannels: 4, outputChannels: 8, stride: 2, expansion: 2, rng: &rng)
        let unit = ShuffleUnit(inputChannels: 8, outputChannels: 8, stride: 1, rng: &rng)
        #expect(throws: LayerTreeError.noLayer(path: "input_quant")) { try fire.installActivationQuantizer(ReLU(), at: "input_quant") }
        #expect(throws: LayerTreeError.noLayer(path: "input_quant")) { try plain.installActivationQuantizer(ReLU(), at: "input_quant") }
        #expect(throws: LayerTreeError.noLayer(path: "input_quant")) { try unit.installActivationQuantizer(ReLU(), at: "input_quant") }
        #expect(fire.squeezeActivationQuant.layer == nil && plain.inputQuant.layer == nil && unit.inputQuant.layer == nil)
        #expect(!fire.children.map(\.name).contains("squeeze_activation_quant"))
        try fire.installActivationQuantizer(ReLU(), at: "squeeze_activation_quant")
        #expect(fire.children.map(\.name) == ["squeeze", "squeeze_activation", "squeeze_activation_quant", "expand1x1",
                                              "expand1x1_activation", "expand3x3", "expand3x3_activation"])
        let replacement = ReLU()
        try fire.replaceLayer(at: "squeeze_activation_quant", with: replacement)
        #expect(fire.squeezeActivationQuant.layer === replacement)
    }

    /// Each block with a site, its consumers quantized and the shared quantizer installed, passes a
    /// finite-difference check: DoReFa's "32-bit" form is smooth (tanh, max-normalisation, rounding at 2⁻³¹),
    /// so the check covers the wiring of the summed gradient through the one quantizer.
    @Test(arguments: ["resnet-downsample", "inverted-residual", "shuffle-stride2", "fire"])
    func blockGradients(kind: String) throws {
        var rng = RNG(seed: 7)
        let scheme = DoReFaScheme()
        let block: any ActivationSharing
        let input: [Int]
        switch kind {
        case "resnet-downsample":
            block = BasicBlock.torchvision(inputChannels: 4, outputChannels: 6, stride: 2, rng: &rng); input = [2, 4, 6, 6]
        case "inverted-residual":
            block = InvertedResidual(inputChannels: 4, outputChannels: 4, stride: 1, expansion: 2, rng: &rng); input = [2, 4, 5, 5]
        case "shuffle-stride2":
            block = ShuffleUnit(inputChannels: 4, outputChannels: 8, stride: 2, rng: &rng); input = [2, 4, 6, 6]
        default:
            block = Fire(inputChannels: 4, squeeze: 3, expand1x1: 2, expand3x3: 2, rng: &rng); input = [2, 4, 5, 5]
        }
        for site in block.activationSites {
            var replacements: [String: Layer] = [:]
            for c in site.consumers {
                let conv = try #require(block.layer(at: c) as? Conv2d)
                replacements[c] = QConv2d(conv, weightQuantizer: try scheme.makeWeightQuantizer(bits: 32, settings: scheme.settings),
                                          inputQuantizer: nil, outputScale: false)
            }
            try block.replaceLayers { p, _ in replacements[p] }
            let q = try #require(try scheme.makeActivationQuantizer(bits: 32, settings: scheme.settings))
            try block.installActivationQuantizer(QuantizedActivation(q), at: site.slot)
        }
        #expect(!block.activationSites.isEmpty)
        let x = randomTensor(input, seed: 4)
        _ = block.forward(x, mode: .train)
        let failures = GradientCheck(h: 1e-3, atol: 4e-3, skipNonSmooth: true).check(block, input: x)
        #expect(failures.isEmpty, "\(kind): \(failures.prefix(5))")
    }
}
