import TestSupport
import Kernels
import Testing
import NN
import Tensors
@testable import Models

/// Records the input layout and geometry of the convolution it stands in for and returns zeros of the
/// output's shape in the block the convolution would write, so a model's layout flow can be traced
/// without computing (the MAC probe's trick).
private final class ConvLayoutProbe: Layer {
    let conv: Conv2d
    let path: String
    var seen: [(geometry: ConvGeometry, xBlock: Int)] = []

    init(_ conv: Conv2d, path: String) {
        self.conv = conv
        self.path = path
    }

    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let g = conv.geometry(batch: x.shape[0], inputHeight: x.shape[2], inputWidth: x.shape[3])
        seen.append((g, x.layout.block))
        let b = convOutputBlock(g, bias: conv.bias != nil)
        return Tensor(shape: g.outputShape, layout: b == 1 ? .plain : .blocked(b))
    }

    func backward(_ dy: Tensor) -> Tensor { preconditionFailure("layout probe has no backward") }
}

@Suite("Tiny-ImageNet models")
struct ImageNetModelTests {
    /// Blocks: the option-B block (stride 2, 1×1 downsample) and the identity block by finite differences.
    @Test func resNetBlockGradients() {
        var rng = RNG(seed: 31)
        let down = BasicBlock.torchvision(inputChannels: 16, outputChannels: 32, stride: 2, rng: &rng)
        #expect(down.children.map(\.name) == ["conv1", "bn1", "relu1", "conv2", "bn2", "downsample", "relu2"])
        #expect(down.parameters().map(\.name).suffix(3) == ["downsample.0.weight", "downsample.1.weight", "downsample.1.bias"])
        let x = randomTensor([2, 16, 8, 8], seed: 32)
        #expect(down.forward(x, mode: .train).shape == [2, 32, 4, 4])
        let downFailures = smoothCheck.check(down, input: x)
        #expect(downFailures.isEmpty, "\(downFailures.prefix(5))")
        let identity = BasicBlock.torchvision(inputChannels: 16, outputChannels: 16, stride: 1, rng: &rng)
        #expect(identity.shortcut == nil && !identity.children.contains { $0.name == "downsample" })
        let failures = smoothCheck.check(identity, input: randomTensor([2, 16, 5, 5], seed: 33))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// Inverted residuals: t = 1 (no expansion), the residual form (stride 1, C_in = C_out) and the
    /// stride-2 form, by finite differences through 1×1, depthwise 3×3, BN and ReLU6.
    @Test(arguments: [(16, 16, 1, 1), (16, 16, 1, 6), (8, 16, 2, 6)])
    func invertedResidualGradients(cin: Int, cout: Int, stride: Int, t: Int) {
        var rng = RNG(seed: 41)
        let block = InvertedResidual(inputChannels: cin, outputChannels: cout, stride: stride, expansion: t, rng: &rng)
        #expect(block.usesResidual == (stride == 1 && cin == cout))
        let convs = block.modules().compactMap { $0.layer as? Conv2d }
        #expect(convs.map(\.groups) == (t == 1 ? [cin, 1] : [1, cin * t, 1]))
        let x = randomTensor([2, cin, 6, 6], seed: 42)
        #expect(block.forward(x, mode: .train).shape == [2, cout, 6 / stride, 6 / stride])
        let failures = smoothCheck.check(block, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// The module trees: torchvision's / the authors' module paths for the layers with state.
    @Test func moduleTrees() throws {
        let r = try ModelZoo.make("resnet18", classes: 200, seed: 0)
        #expect(r.children.map(\.name) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                            "avgpool", "flatten", "fc"])
        #expect(r.layer(at: "layer2.0.downsample.0") is Conv2d && r.layer(at: "layer1.0.downsample") == nil)
        let m = try ModelZoo.make("mobilenetv2", classes: 200, seed: 0)
        #expect(m.layer(at: "features.1.conv.0.0").map { ($0 as? Conv2d)?.groups == 32 } == true)
        #expect(m.layer(at: "features.2.conv.1.0").map { ($0 as? Conv2d)?.groups == 96 } == true)
        #expect(m.layer(at: "features.18.2") is ReLU6 && m.layer(at: "classifier.0") is Dropout)
        #expect(m.modules().filter { $0.layer is InvertedResidual }.count == 17)
        let residuals = m.modules().compactMap { ($0.layer as? InvertedResidual)?.usesResidual == true ? $0.path : nil }
        #expect(residuals == ["features.3", "features.5", "features.6", "features.8", "features.9", "features.10",
                              "features.12", "features.13", "features.15", "features.16"])
        let v = try ModelZoo.make("vgg11_bn", classes: 200, seed: 0)
        #expect(v.children.map(\.name) == ["block0", "pool0", "block1", "pool1", "block2", "pool2", "block3", "block4",
                                            "pool4", "flatten", "classifier"])
    }

    /// Feature taps f0…f5 at 64×64 (train forward) have the documented shapes, and 224×224 inputs work.
    @Test(arguments: [
        ("resnet18", [[2, 64, 32, 32], [2, 64, 16, 16], [2, 128, 8, 8], [2, 256, 4, 4], [2, 512, 2, 2], [2, 512]]),
        ("mobilenetv2", [[2, 32, 32, 32], [2, 24, 16, 16], [2, 32, 8, 8], [2, 96, 4, 4], [2, 1280, 2, 2], [2, 1280]]),
        ("vgg11_bn", [[2, 64, 64, 64], [2, 128, 32, 32], [2, 256, 16, 16], [2, 512, 8, 8], [2, 512, 8, 8], [2, 512]]),
    ])
    func featureShapes(name: String, shapes: [[Int]]) throws {
        let model = try ModelZoo.make(name, classes: 200, seed: 2)
        let taps = try model.tapFeatures()
        let y = model.forward(randomTensor([2, 3, 64, 64], seed: 3), mode: .train)
        #expect(y.shape == [2, 200] && y.array.allSatisfy(\.isFinite))
        #expect(taps.map { $0.output?.shape ?? [] } == shapes)
        _ = model.backward(randomTensor([2, 200], seed: 4))
        #expect(model.parameters().allSatisfy { $0.parameter.grad.array.contains { $0 != 0 } }, "every parameter learns")
        if name != "vgg11_bn" {  // VGG at 224 is 10 GMACs per image: its 224 shapes are traced by the MAC test.
            #expect(model.forward(randomTensor([1, 3, 224, 224], seed: 5), mode: .eval).shape == [1, 200])
        }
        let smallest = try ModelZoo.entry(name).minimumInputSize
        #expect(model.forward(randomTensor([1, 3, smallest, smallest], seed: 6), mode: .eval).shape == [1, 200])
        let gray = try ModelZoo.make(name, classes: 10, inputChannels: 1, seed: 2)
        #expect(gray.forward(randomTensor([2, 1, 32, 32], seed: 7), mode: .train).shape == [2, 10])
    }

    /// Every convolution of the three models at 64×64 (batch 32) and 224×224 (batch 2), with the input block the model
    /// actually feeds it: forward, backward-data and backward-weights run JIT kernels (depthwise included),
    /// and no activation is reordered except around the stem (whose plain image input oneDNN may restage).
    @Test(arguments: ["resnet18", "mobilenetv2", "vgg11_bn"])
    func convolutionsRunJITWithoutActivationReorders(name: String) throws {
        let model = try ModelZoo.make(name, classes: 200, seed: 0)
        var probes: [ConvLayoutProbe] = []
        try model.replaceLayers { path, layer in
            guard let conv = layer as? Conv2d else { return nil }
            probes.append(ConvLayoutProbe(conv, path: path))
            return probes.last
        }
        for (batch, size) in [(32, 64), (2, 224)] { _ = model.forward(Tensor(shape: [batch, 3, size, size]), mode: .eval) }
        #expect(probes.allSatisfy { $0.seen.count == 2 })
        for p in probes {
            for (g, xBlock) in p.seen {
                let plans = convPlanInfo(g, bias: p.conv.bias != nil, xBlock: xBlock)
                for (k, info) in plans.enumerated() where !(k == 1 && !p.conv.propagatesInputGradient) {
                    // Known gap: oneDNN 2.7 has no JIT backward-weights for a 3×3 conv on a 2×2 input (ResNet-18's
                    // layer4 and MobileNetV2's 960-channel depthwise convs at 64×64 inputs); it runs `ref:any`.
                    let knownReference = k == 2 && g.inputHeight == 2 && g.kernelHeight == 3
                    #expect(info.isJIT != knownReference, "\(name) \(p.path) \(g): \(info)")
                    if p.conv.propagatesInputGradient {
                        #expect(!info.reorders.contains { $0.contains("nChw") || $0.contains("nchw") },
                                "\(name) \(p.path) \(g): \(info)")
                    }
                }
            }
        }
    }
}
