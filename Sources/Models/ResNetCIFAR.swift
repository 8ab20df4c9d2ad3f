import NN
import Tensors

/// The residual block of both ResNets: the CIFAR one (reference §3.1, `blocks_resnet.py` `BasicBlock`) and
/// torchvision's ImageNet ResNet-18 (`BasicBlock.torchvision`, in ResNetImageNet.swift):
///
///     z   = bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x)
///     out = relu2(z)
///
/// conv1: 3×3, stride s, pad 1, no bias, C_in → C_out; conv2: 3×3, stride 1, pad 1, no bias.
/// Shortcut when s ≠ 1 or C_in ≠ C_out, identity otherwise: the CIFAR block's option A
/// (`x[:, :, ::2, ::2]` zero-padded by C_out/4 channels on each side, no parameters, child `shortcut`), or
/// ResNet-18's option B (child `downsample`).
/// Shapes: x [N, C_in, H, W] → out [N, C_out, (H−1)/s+1, (W−1)/s+1].
///
/// Backward is forward reversed: dz = relu2'(dy); dx = main-path backward(dz) + shortcut backward(dz).
///
/// Children (every slot replaceable): `input_quant` (once MQBench's placement fills it), `conv1`, `bn1`,
/// `relu1`, `conv2`, `bn2`, the shortcut under `shortcutName` (when not the identity), `relu2`; state
/// names `conv1.*`, `bn1.*`, `conv2.*`, `bn2.*` (reference keys) and the shortcut's.
public final class BasicBlock: Layer, ActivationSharing {
    /// MQBench's shared fake-quantizer of the block input (`shareActivationQuantizers`): read by `conv1`,
    /// the shortcut and the identity; empty (every other case) reads the input as it is.
    public let inputQuant = ActivationSlot("input_quant")
    public internal(set) var conv1: Layer
    public internal(set) var bn1: Layer
    public internal(set) var relu1: Layer = ReLU()
    public internal(set) var conv2: Layer
    public internal(set) var bn2: Layer
    /// nil: identity shortcut.
    public internal(set) var shortcut: Layer?
    /// The shortcut's child name: `shortcut` (CIFAR) or `downsample` (torchvision).
    public let shortcutName: String
    /// Paths, relative to the shortcut, of its weight layers, which read the block input.
    let shortcutConsumers: [String]
    public internal(set) var relu2: Layer = ReLU()

    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int

    /// A block from its convolutions and shortcut (already initialised); BN weight 1, bias 0.
    init(conv1: Conv2d, conv2: Conv2d, shortcut: Layer?, shortcutName: String, shortcutConsumers: [String]) {
        inputChannels = conv1.inputChannels
        outputChannels = conv1.outputChannels
        stride = conv1.stride
        self.conv1 = conv1
        self.conv2 = conv2
        bn1 = BatchNorm2d(features: outputChannels)
        bn2 = BatchNorm2d(features: outputChannels)
        self.shortcut = shortcut
        self.shortcutName = shortcutName
        self.shortcutConsumers = shortcutConsumers
    }

    /// The two 3×3 convolutions of a block, unbiased.
    static func convolutions(inputChannels: Int, outputChannels: Int, stride: Int) -> (Conv2d, Conv2d) {
        (Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, stride: stride, padding: 1, bias: false),
         Conv2d(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, stride: 1, padding: 1, bias: false))
    }

    /// The CIFAR block: convolution weights ~ kaiming_normal_ (fan_in, gain √2), drawn conv1, conv2; option-A
    /// shortcut.
    public convenience init(inputChannels: Int, outputChannels: Int, stride: Int, rng: inout RNG) {
        let (c1, c2) = Self.convolutions(inputChannels: inputChannels, outputChannels: outputChannels, stride: stride)
        Initialization.kaimingNormalFanIn(c1.weight.value, rng: &rng)
        Initialization.kaimingNormalFanIn(c2.weight.value, rng: &rng)
        let shortcut = stride != 1 || inputChannels != outputChannels
            ? OptionAShortcut(inputChannels: inputChannels, outputChannels: outputChannels, stride: stride)
            : nil
        self.init(conv1: c1, conv2: c2, shortcut: shortcut, shortcutName: "shortcut", shortcutConsumers: [])
    }

    public var children: [Child] {
        var list = inputQuant.children
        list += [child("conv1", \.conv1), child("bn1", \.bn1), child("relu1", \.relu1),
                 child("conv2", \.conv2), child("bn2", \.bn2)]
        if let shortcut { list.append(Child(shortcutName, shortcut) { self.shortcut = $0 }) }
        list.append(child("relu2", \.relu2))
        return list
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let xs = inputQuant.forward(x, mode: mode)
        var h = conv1.forward(xs, mode: mode)
        h = bn1.forward(h, mode: mode)
        h = relu1.forward(h, mode: mode)
        h = conv2.forward(h, mode: mode)
        h = bn2.forward(h, mode: mode)
        let s = shortcut?.forward(xs, mode: mode) ?? xs
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
        let dxs = add(g, ds)
        return inputQuant.backward(dxs)
    }

    /// The block input, read by `conv1`, the shortcut's weight layers (`downsample.0`; option A has none)
    /// and the identity.
    public var activationSites: [ActivationSite] {
        let viaShortcut = shortcut == nil ? [] : shortcutConsumers.map { "\(shortcutName).\($0)" }
        return [ActivationSite(slot: inputQuant.name, consumers: ["conv1"] + viaShortcut)]
    }

    public func installActivationQuantizer(_ layer: Layer, at slot: String) throws {
        try inputQuant.install(layer, at: slot)
    }
}

/// He et al.'s CIFAR ResNet-(6n+2) in the EWGS variant used by SQAKD (reference §3.1,
/// `custom_models_resnet.py`): n = 3 is ResNet-20, n = 5 is ResNet-32.
///
///     conv1 3×3 C_in→16 (no bias) → bn1 → relu                     [N, 16, H, W]      f0
///     layer1: n BasicBlocks, 16 ch, stride 1                        [N, 16, H, W]      f1
///     layer2: n BasicBlocks, 32 ch, first stride 2                  [N, 32, H/2, W/2]  f2
///     layer3: n BasicBlocks, 64 ch, first stride 2                  [N, 64, H/4, W/4]  f3
///     pool (global average) → flatten                               [N, 64]            f4
///     bn2 = BatchNorm1d(64) → linear 64→classes                     [N, classes]
///
/// Children, in this order: `conv1`, `bn1`, `relu`, `layer1`, `layer2`, `layer3`, `pool`, `flatten`,
/// `bn2`, `linear`; stages are `Sequential`s of `BasicBlock`s named "0", "1", ...
/// State names: `conv1.weight`, `bn1.*`, `layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}.*`, `bn2.*`,
/// `linear.{weight,bias}` (reference keys). ResNet-20 / 10 classes: 269,850 parameters,
/// 40,551,040 MACs per 32×32 image.
/// Features f0…f4 (`featurePaths`): the reference's `forward(is_feat=True)` (`:81-127`): the stem after
/// its ReLU, each stage's output (after the last block's ReLU) and the pooled 64-vector before `bn2`.
///
/// Init: kaiming_normal_ (fan_in, gain √2) on conv and linear weights; linear bias U(±1/√64)
/// (PyTorch default); BN weight 1, bias 0. The stem conv computes no input gradient.
public final class ResNetCIFAR: Model {
    public let architecture: String
    public let classes: Int
    public let inputChannels: Int
    public let blocksPerStage: Int

    public internal(set) var conv1: Layer
    public internal(set) var bn1: Layer
    public internal(set) var relu: Layer = ReLU()
    public internal(set) var layer1: Layer
    public internal(set) var layer2: Layer
    public internal(set) var layer3: Layer
    public internal(set) var pool: Layer = AdaptiveAvgPool2d(outputSize: 1)
    public internal(set) var flatten: Layer = Flatten()
    public internal(set) var bn2: Layer
    public internal(set) var linear: Layer

    public static let stageWidths = [16, 32, 64]

    public let stemPaths = ["conv1", "bn1", "relu"]
    public let featurePaths = ["relu", "layer1", "layer2", "layer3", "flatten"]

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

        var stages: [Sequential] = []
        var width = 16
        for (planes, stride) in zip(Self.stageWidths, [1, 2, 2]) {
            var blocks: [BasicBlock] = []
            for i in 0..<n {
                blocks.append(BasicBlock(inputChannels: width, outputChannels: planes, stride: i == 0 ? stride : 1,
                                         rng: &rng))
                width = planes
            }
            stages.append(Sequential(blocks))
        }
        layer1 = stages[0]
        layer2 = stages[1]
        layer3 = stages[2]

        bn2 = BatchNorm1d(features: 64)
        let fc = Linear(inputFeatures: 64, outputFeatures: classes, bias: true)
        Initialization.kaimingNormalFanIn(fc.weight.value, rng: &rng)
        if let b = fc.bias { Initialization.uniform(b.value, bound: 1 / Float(64).squareRoot(), rng: &rng) }
        linear = fc
    }

    public var children: [Child] {
        [child("conv1", \.conv1), child("bn1", \.bn1), child("relu", \.relu),
         child("layer1", \.layer1), child("layer2", \.layer2), child("layer3", \.layer3),
         child("pool", \.pool), child("flatten", \.flatten), child("bn2", \.bn2), child("linear", \.linear)]
    }

    /// Every residual block with its path (`layer2.0`, ...), in forward order.
    public var blocks: [(name: String, block: BasicBlock)] {
        modules().compactMap { m in (m.layer as? BasicBlock).map { (m.path, $0) } }
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
}
