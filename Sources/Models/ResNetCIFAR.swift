import NN
import Tensors

/// The residual block of the CIFAR ResNet (reference §3.1, `blocks_resnet.py` `BasicBlock`):
///
///     z   = bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)
///     out = relu(z)
///
/// conv1: 3×3, stride s, pad 1, no bias, C_in → C_out; conv2: 3×3, stride 1, pad 1, no bias.
/// Shortcut: option A (`x[:, :, ::2, ::2]` zero-padded by C_out/4 channels on each side, no parameters)
/// when s ≠ 1 or C_in ≠ C_out, identity otherwise.
/// Shapes: x [N, C_in, H, W] → out [N, C_out, (H−1)/s+1, (W−1)/s+1].
///
/// Backward is forward reversed: dz = relu'(dy); dx = main-path backward(dz) + shortcut backward(dz).
///
/// `conv1` and `conv2` are `Layer`-typed so that QAT can swap them for quantized convs
/// (`Model.replaceQuantizableConvs`); state names stay `conv1.*` / `conv2.*`.
public final class BasicBlock: Layer {
    public var conv1: Layer
    public let bn1: BatchNorm2d
    let relu1 = ReLU()
    public var conv2: Layer
    public let bn2: BatchNorm2d
    /// nil: identity shortcut.
    public let shortcut: OptionAShortcut?
    let relu2 = ReLU()

    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int

    /// Convolution weights ~ kaiming_normal_ (fan_in, gain √2); BN weight 1, bias 0.
    public init(inputChannels: Int, outputChannels: Int, stride: Int, rng: inout RNG) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.stride = stride
        let c1 = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3,
                        stride: stride, padding: 1, bias: false)
        let c2 = Conv2d(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3,
                        stride: 1, padding: 1, bias: false)
        Initialization.kaimingNormalFanIn(c1.weight.value, rng: &rng)
        Initialization.kaimingNormalFanIn(c2.weight.value, rng: &rng)
        conv1 = c1
        conv2 = c2
        bn1 = BatchNorm2d(features: outputChannels)
        bn2 = BatchNorm2d(features: outputChannels)
        shortcut = stride != 1 || inputChannels != outputChannels
            ? OptionAShortcut(inputChannels: inputChannels, outputChannels: outputChannels, stride: stride)
            : nil
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = conv1.forward(x, mode: mode)
        h = bn1.forward(h, mode: mode)
        h = relu1.forward(h, mode: mode)
        h = conv2.forward(h, mode: mode)
        h = bn2.forward(h, mode: mode)
        let s = shortcut?.forward(x, mode: mode) ?? x
        return relu2.forward(add(h, s), mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dz = relu2.backward(dy)
        var g = bn2.backward(dz)
        g = conv2.backward(g)
        g = relu1.backward(g)
        g = bn1.backward(g)
        g = conv1.backward(g)
        let ds = shortcut?.backward(dz) ?? dz
        return add(g, ds)
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        prefixed("conv1", conv1.parameters()) + prefixed("bn1", bn1.parameters())
            + prefixed("conv2", conv2.parameters()) + prefixed("bn2", bn2.parameters())
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        prefixed("conv1", conv1.buffers()) + prefixed("bn1", bn1.buffers())
            + prefixed("conv2", conv2.buffers()) + prefixed("bn2", bn2.buffers())
    }
}

/// He et al.'s CIFAR ResNet-(6n+2) in the EWGS variant used by SQAKD (reference §3.1,
/// `custom_models_resnet.py`): n = 3 is ResNet-20, n = 5 is ResNet-32.
///
///     conv1 3×3 C_in→16 (no bias) → bn1 → ReLU                     [N, 16, H, W]
///     layer1: n BasicBlocks, 16 ch, stride 1                        [N, 16, H, W]
///     layer2: n BasicBlocks, 32 ch, first stride 2                  [N, 32, H/2, W/2]
///     layer3: n BasicBlocks, 64 ch, first stride 2                  [N, 64, H/4, W/4]
///     global average pool → flatten                                 [N, 64]
///     bn2 = BatchNorm1d(64) → linear 64→classes                     [N, classes]
///
/// State names: `conv1.weight`, `bn1.*`, `layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}.*`, `bn2.*`,
/// `linear.{weight,bias}` (reference keys). ResNet-20 / 10 classes: 269,850 parameters,
/// 40,551,040 MACs per 32×32 image.
///
/// Init: kaiming_normal_ (fan_in, gain √2) on conv and linear weights; linear bias U(±1/√64)
/// (PyTorch default); BN weight 1, bias 0. The stem conv computes no input gradient.
public final class ResNetCIFAR: Model {
    public let architecture: String
    public let classes: Int
    public let inputChannels: Int
    public let blocksPerStage: Int

    /// The stem conv (`Layer`-typed so the Tiny-ImageNet-style transform can quantize it).
    public private(set) var conv1: Layer
    public let bn1: BatchNorm2d
    let relu = ReLU()
    /// Children are `BasicBlock`s named "0", "1", ...
    public let layer1: Sequential
    public let layer2: Sequential
    public let layer3: Sequential
    let stageBlocks: [[BasicBlock]]
    let pool = AdaptiveAvgPool2d(outputSize: 1)
    let flatten = Flatten()
    public let bn2: BatchNorm1d
    /// The classifier (`Layer`-typed for the same reason).
    public private(set) var linear: Layer

    public static let stageWidths = [16, 32, 64]

    public init(blocksPerStage n: Int, classes: Int, inputChannels: Int = 3, rng: inout RNG) {
        precondition(n >= 1 && classes >= 1 && inputChannels >= 1,
                     "ResNetCIFAR(blocksPerStage: \(n), classes: \(classes), inputChannels: \(inputChannels))")
        architecture = "resnet\(6 * n + 2)"
        self.classes = classes
        self.inputChannels = inputChannels
        blocksPerStage = n

        let stem = Conv2d(inputChannels: inputChannels, outputChannels: 16, kernelSize: 3, stride: 1, padding: 1,
                          bias: false)
        stem.propagatesInputGradient = false
        Initialization.kaimingNormalFanIn(stem.weight.value, rng: &rng)
        conv1 = stem
        bn1 = BatchNorm2d(features: 16)

        var stageBlocks: [[BasicBlock]] = []
        var width = 16
        for (planes, stride) in zip(Self.stageWidths, [1, 2, 2]) {
            var blocks: [BasicBlock] = []
            for i in 0..<n {
                blocks.append(BasicBlock(inputChannels: width, outputChannels: planes, stride: i == 0 ? stride : 1,
                                         rng: &rng))
                width = planes
            }
            stageBlocks.append(blocks)
        }
        self.stageBlocks = stageBlocks
        layer1 = Sequential(stageBlocks[0])
        layer2 = Sequential(stageBlocks[1])
        layer3 = Sequential(stageBlocks[2])

        bn2 = BatchNorm1d(features: 64)
        let fc = Linear(inputFeatures: 64, outputFeatures: classes, bias: true)
        Initialization.kaimingNormalFanIn(fc.weight.value, rng: &rng)
        if let b = fc.bias { Initialization.uniform(b.value, bound: 1 / Float(64).squareRoot(), rng: &rng) }
        linear = fc
    }

    var stages: [(name: String, layer: Sequential)] { [("layer1", layer1), ("layer2", layer2), ("layer3", layer3)] }

    /// Every residual block with its state-dict prefix (`layer2.0`, ...), in forward order.
    public var blocks: [(name: String, block: BasicBlock)] {
        zip(["layer1", "layer2", "layer3"], stageBlocks).flatMap { stage, blocks in
            blocks.enumerated().map { (name: "\(stage).\($0.offset)", block: $0.element) }
        }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = conv1.forward(x, mode: mode)
        h = bn1.forward(h, mode: mode)
        h = relu.forward(h, mode: mode)
        h = layer1.forward(h, mode: mode)
        h = layer2.forward(h, mode: mode)
        h = layer3.forward(h, mode: mode)
        h = pool.forward(h, mode: mode)
        h = flatten.forward(h, mode: mode)
        h = bn2.forward(h, mode: mode)
        return linear.forward(h, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = linear.backward(dy)
        g = bn2.backward(g)
        g = flatten.backward(g)
        g = pool.backward(g)
        g = layer3.backward(g)
        g = layer2.backward(g)
        g = layer1.backward(g)
        g = relu.backward(g)
        g = bn1.backward(g)
        return conv1.backward(g)
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        prefixed("conv1", conv1.parameters()) + prefixed("bn1", bn1.parameters())
            + stages.flatMap { prefixed($0.name, $0.layer.parameters()) }
            + prefixed("bn2", bn2.parameters()) + prefixed("linear", linear.parameters())
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        prefixed("conv1", conv1.buffers()) + prefixed("bn1", bn1.buffers())
            + stages.flatMap { prefixed($0.name, $0.layer.buffers()) }
            + prefixed("bn2", bn2.buffers()) + prefixed("linear", linear.buffers())
    }

    public func macs(inputHeight: Int, inputWidth: Int) -> Int {
        Self.macs(blocksPerStage: blocksPerStage, classes: classes, inputChannels: inputChannels,
                  inputHeight: inputHeight, inputWidth: inputWidth)
    }

    /// Conv + linear multiply-adds per image; every conv is 3×3 with pad 1, so H_out = (H − 1)/s + 1.
    public static func macs(blocksPerStage n: Int, classes: Int, inputChannels: Int,
                            inputHeight: Int, inputWidth: Int) -> Int {
        var h = inputHeight, w = inputWidth
        var total = 9 * inputChannels * 16 * h * w
        var width = 16
        for (planes, stride) in zip(stageWidths, [1, 2, 2]) {
            for i in 0..<n {
                let s = i == 0 ? stride : 1
                h = (h - 1) / s + 1
                w = (w - 1) / s + 1
                total += 9 * width * planes * h * w + 9 * planes * planes * h * w
                width = planes
            }
        }
        return total + 64 * classes
    }

    public var quantizableConvNames: [String] { blocks.flatMap { [$0.name + ".conv1", $0.name + ".conv2"] } }

    public func replaceQuantizableConvs(_ transform: (_ name: String, _ conv: Layer) throws -> Layer) rethrows {
        for (name, block) in blocks {
            block.conv1 = try transform(name + ".conv1", block.conv1)
            block.conv2 = try transform(name + ".conv2", block.conv2)
        }
    }

    public func replaceWeightLayers(_ transform: (_ name: String, _ layer: Layer) throws -> Layer) rethrows {
        conv1 = try transform("conv1", conv1)
        try replaceQuantizableConvs(transform)
        linear = try transform("linear", linear)
    }
}
