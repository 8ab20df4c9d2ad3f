import NN
import Tensors

/// One VGG block (reference `custom_models_vgg.py` `VGGBlock` / `QVGGBlock`):
/// conv2d 3×3 pad 1 with bias, C_in → C_out → bn (BatchNorm2d) → ReLU. [N, C_in, H, W] → [N, C_out, H, W].
/// State names `conv2d.{weight,bias}`, `bn.*` (the reference's attribute names).
/// `conv2d` is `Layer`-typed so that QAT can swap it for a quantized conv.
public final class VGGBlock: Layer {
    public var conv2d: Layer
    public let bn: BatchNorm2d
    let relu = ReLU()

    public let inputChannels: Int
    public let outputChannels: Int

    /// Conv weight ~ N(0, 2/(3²·C_out)), conv bias 0; BN weight 1, bias 0.
    /// `propagatesInputGradient: false` for the network's first conv (its input is the image).
    public init(inputChannels: Int, outputChannels: Int, propagatesInputGradient: Bool = true, rng: inout RNG) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        let conv = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, stride: 1,
                          padding: 1, bias: true)
        Initialization.normal(conv.weight.value, std: (2 / Float(9 * outputChannels)).squareRoot(), rng: &rng)
        conv.bias?.value.fill(0)
        conv.propagatesInputGradient = propagatesInputGradient
        conv2d = conv
        bn = BatchNorm2d(features: outputChannels)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        relu.forward(bn.forward(conv2d.forward(x, mode: mode), mode: mode), mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        conv2d.backward(bn.backward(relu.backward(dy)))
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        prefixed("conv2d", conv2d.parameters()) + prefixed("bn", bn.parameters())
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        prefixed("conv2d", conv2d.buffers()) + prefixed("bn", bn.buffers())
    }
}

/// The CIFAR VGG of CRD / EWGS / SQAKD: VGG-BN without the FC stack (reference §3.2,
/// `custom_models_vgg.py` `VGG`), in five groups of `VGGBlock`s:
///
///     layer0 → maxpool 2 → layer1 → maxpool 2 → layer2 → maxpool 2 → layer3
///       → (maxpool 2 only when the input height is 64, as in the reference) → layer4
///       → global average pool → flatten → classifier Linear(512, classes)
///
/// On 32×32 inputs the spatial sizes are 32 → 16 → 8 → 4 → 4 → 1.
/// State names: `layer{0..4}.{i}.conv2d.{weight,bias}`, `layer{0..4}.{i}.bn.*`, `classifier.{weight,bias}`.
/// VGG-8 / 10 classes: 3,918,858 parameters; VGG-13 / 100 classes: 9,462,180.
///
/// Init: conv weight N(0, 2/(k²·C_out)), bias 0; BN 1/0; classifier weight N(0, 0.01²), bias 0.
/// The first conv computes no input gradient.
public final class VGGCIFAR: Model {
    /// Widths of the convs of each group (reference `cfg`).
    public enum Configuration: String, CaseIterable, Sendable {
        /// VGG-8: 5 conv + 1 FC.
        case s = "S"
        /// VGG-11: 8 conv + 1 FC.
        case a = "A"
        /// VGG-13: 10 conv + 1 FC.
        case b = "B"

        public var groups: [[Int]] {
            switch self {
            case .s: return [[64], [128], [256], [512], [512]]
            case .a: return [[64], [128], [256, 256], [512, 512], [512, 512]]
            case .b: return [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]
            }
        }

        /// The depth in the model's name: convolutions + 3, counting the three FC layers of the original
        /// VGG although this variant keeps a single classifier (VGG-8 = 5 conv + 1 FC).
        public var depth: Int { groups.joined().count + 3 }
    }

    /// Three 2×2 max-pools need at least 8×8 inputs.
    public static let minimumInputSize = 8

    public let architecture: String
    public let classes: Int
    public let inputChannels: Int
    public let configuration: Configuration

    /// `layer0` ... `layer4`; children are `VGGBlock`s named "0", "1", ...
    public let groups: [Sequential]
    let groupBlocks: [[VGGBlock]]
    /// pool0 ... pool3.
    let pools: [MaxPool2d]
    let globalPool = AdaptiveAvgPool2d(outputSize: 1)
    let flatten = Flatten()
    /// `Layer`-typed so the Tiny-ImageNet-style transform can quantize it.
    public private(set) var classifier: Layer

    /// The layers of the last training forward, in order (pool3 depends on the input height).
    var savedPath: [Layer] = []

    public init(configuration: Configuration, classes: Int, inputChannels: Int = 3, rng: inout RNG) {
        precondition(classes >= 1 && inputChannels >= 1,
                     "VGGCIFAR(classes: \(classes), inputChannels: \(inputChannels))")
        architecture = "vgg\(configuration.depth)"
        self.classes = classes
        self.inputChannels = inputChannels
        self.configuration = configuration

        var width = inputChannels
        var groupBlocks: [[VGGBlock]] = []
        for widths in configuration.groups {
            var blocks: [VGGBlock] = []
            for w in widths {
                blocks.append(VGGBlock(inputChannels: width, outputChannels: w,
                                       propagatesInputGradient: !groupBlocks.isEmpty || !blocks.isEmpty, rng: &rng))
                width = w
            }
            groupBlocks.append(blocks)
        }
        self.groupBlocks = groupBlocks
        groups = groupBlocks.map { Sequential($0) }
        pools = (0..<4).map { _ in MaxPool2d(kernelSize: 2, stride: 2, padding: 0) }

        let fc = Linear(inputFeatures: 512, outputFeatures: classes, bias: true)
        Initialization.normal(fc.weight.value, std: 0.01, rng: &rng)
        fc.bias?.value.fill(0)
        classifier = fc
    }

    /// Whether the reference applies pool3: only for 64-pixel-high inputs (Tiny-ImageNet-sized).
    static func usesPool3(inputHeight: Int) -> Bool { inputHeight == 64 }

    func path(inputHeight: Int) -> [Layer] {
        var p: [Layer] = [groups[0], pools[0], groups[1], pools[1], groups[2], pools[2], groups[3]]
        if Self.usesPool3(inputHeight: inputHeight) { p.append(pools[3]) }
        return p + [groups[4], globalPool, flatten, classifier]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4, "VGGCIFAR expects [N, C, H, W], got \(x.shape)")
        let layers = path(inputHeight: x.shape[2])
        if mode == .train { savedPath = layers }
        var h = x
        for l in layers { h = l.forward(h, mode: mode) }
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(!savedPath.isEmpty, "VGGCIFAR.backward needs a training-mode forward first")
        var g = dy
        for l in savedPath.reversed() { g = l.backward(g) }
        return g
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        groups.enumerated().flatMap { prefixed("layer\($0.offset)", $0.element.parameters()) }
            + prefixed("classifier", classifier.parameters())
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        groups.enumerated().flatMap { prefixed("layer\($0.offset)", $0.element.buffers()) }
            + prefixed("classifier", classifier.buffers())
    }

    public func macs(inputHeight: Int, inputWidth: Int) -> Int {
        Self.macs(configuration: configuration, classes: classes, inputChannels: inputChannels,
                  inputHeight: inputHeight, inputWidth: inputWidth)
    }

    /// Conv + classifier multiply-adds per image: convs keep the size (3×3, pad 1); pools halve it (floor).
    public static func macs(configuration: Configuration, classes: Int, inputChannels: Int,
                            inputHeight: Int, inputWidth: Int) -> Int {
        var h = inputHeight, w = inputWidth, width = inputChannels
        var total = 0
        for (g, widths) in configuration.groups.enumerated() {
            if g > 0 && (g < 4 || usesPool3(inputHeight: inputHeight)) {
                h /= 2
                w /= 2
            }
            for c in widths {
                total += 9 * width * c * h * w
                width = c
            }
        }
        return total + 512 * classes
    }

    /// Every block of groups 1–4 with its state-dict prefix (`layer1.0`, ...), in forward order.
    var quantizableBlocks: [(name: String, block: VGGBlock)] {
        groupBlocks.enumerated().dropFirst().flatMap { g, blocks in
            blocks.enumerated().map { (name: "layer\(g).\($0.offset)", block: $0.element) }
        }
    }

    public var quantizableConvNames: [String] { quantizableBlocks.map { $0.name + ".conv2d" } }

    public func replaceQuantizableConvs(_ transform: (_ name: String, _ conv: Layer) throws -> Layer) rethrows {
        for (name, block) in quantizableBlocks { block.conv2d = try transform(name + ".conv2d", block.conv2d) }
    }

    public func replaceWeightLayers(_ transform: (_ name: String, _ layer: Layer) throws -> Layer) rethrows {
        for (i, block) in groupBlocks[0].enumerated() { block.conv2d = try transform("layer0.\(i).conv2d", block.conv2d) }
        try replaceQuantizableConvs(transform)
        classifier = try transform("classifier", classifier)
    }
}
