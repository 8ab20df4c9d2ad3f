import NN
import Tensors

/// One VGG block (reference `custom_models_vgg.py` `VGGBlock` / `QVGGBlock`):
/// conv2d 3×3 pad 1 with bias, C_in → C_out → bn (BatchNorm2d) → relu. [N, C_in, H, W] → [N, C_out, H, W].
/// Children (replaceable): `conv2d`, `bn`, `relu`; state names `conv2d.{weight,bias}`, `bn.*` (the
/// reference's attribute names).
public final class VGGBlock: Layer {
    public internal(set) var conv2d: Layer
    public internal(set) var bn: Layer
    public internal(set) var relu: Layer = ReLU()

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

    public var children: [Child] { [child("conv2d", \.conv2d), child("bn", \.bn), child("relu", \.relu)] }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        relu.forward(bn.forward(conv2d.forward(x, mode: mode), mode: mode), mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        conv2d.backward(bn.backward(relu.backward(dy)))
    }
}

/// The CIFAR VGG of CRD / EWGS / SQAKD: VGG-BN without the FC stack (reference §3.2,
/// `custom_models_vgg.py` `VGG`), in five groups of `VGGBlock`s:
///
///     layer0 → pool0 → layer1 → pool1 → layer2 → pool2 → layer3
///       → (pool3 only when the input height is 64, as in the reference) → layer4
///       → pool4 (global average) → flatten → classifier Linear(512, classes)
///
/// pool0…pool3 are 2×2 max-pools. On 32×32 inputs the spatial sizes are 32 → 16 → 8 → 4 → 4 → 1.
/// Children, in forward order: `layer0`, `pool0`, `layer1`, `pool1`, `layer2`, `pool2`, `layer3`, `pool3`,
/// `layer4`, `pool4`, `flatten`, `classifier`; groups are `Sequential`s of `VGGBlock`s named "0", "1", ...
/// State names: `layer{0..4}.{i}.conv2d.{weight,bias}`, `layer{0..4}.{i}.bn.*`, `classifier.{weight,bias}`.
/// VGG-8 / 10 classes: 3,918,858 parameters; VGG-13 / 100 classes: 9,462,180.
/// Features f0…f5 (`featurePaths`, reference §3.2): each group's output before its pool, then the pooled
/// 512-vector.
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

    /// `layer0` ... `layer4`.
    public internal(set) var groups: [Layer]
    /// `pool0` ... `pool3`.
    public internal(set) var pools: [Layer]
    public internal(set) var globalPool: Layer = AdaptiveAvgPool2d(outputSize: 1)
    public internal(set) var flatten: Layer = Flatten()
    public internal(set) var classifier: Layer

    public let stemPaths = ["layer0"]
    public let featurePaths = ["layer0", "layer1", "layer2", "layer3", "layer4", "flatten"]

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
        var groups: [Layer] = []
        for widths in configuration.groups {
            var blocks: [VGGBlock] = []
            for w in widths {
                blocks.append(VGGBlock(inputChannels: width, outputChannels: w,
                                       propagatesInputGradient: !groups.isEmpty || !blocks.isEmpty, rng: &rng))
                width = w
            }
            groups.append(Sequential(blocks))
        }
        self.groups = groups
        pools = (0..<4).map { _ in MaxPool2d(kernelSize: 2, stride: 2, padding: 0) }

        let fc = Linear(inputFeatures: 512, outputFeatures: classes, bias: true)
        Initialization.normal(fc.weight.value, std: 0.01, rng: &rng)
        fc.bias?.value.fill(0)
        classifier = fc
    }

    public var children: [Child] {
        var list: [Child] = []
        for g in groups.indices {
            list.append(Child("layer\(g)", groups[g]) { self.groups[g] = $0 })
            if g < pools.count { list.append(Child("pool\(g)", pools[g]) { self.pools[g] = $0 }) }
        }
        return list + [child("pool4", \.globalPool), child("flatten", \.flatten), child("classifier", \.classifier)]
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
}
