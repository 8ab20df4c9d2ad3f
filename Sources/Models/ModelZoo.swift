import NN
import Tensors

/// An image classifier from the zoo: input [N, inputChannels, H, W] → logits [N, classes].
///
/// State names equal the PyTorch reference's state-dict keys, so `namedTensors()` / `load(stateDict:)`
/// exchange checkpoints with it directly.
public protocol Model: Layer {
    /// The zoo name (`resnet20`, `vgg13`, ...).
    var architecture: String { get }
    var classes: Int { get }
    var inputChannels: Int { get }

    /// Multiply-adds of one forward pass on one image of the given size. Counted: convolutions
    /// (K²·C_in/groups·C_out·H_out·W_out) and linear layers (in·out). Not counted: batch-norm, ReLU,
    /// pooling, residual additions and the (parameter-free) option-A shortcut.
    func macs(inputHeight: Int, inputWidth: Int) -> Int

    /// State-dict prefixes of the convolutions that CIFAR QAT quantizes (reference §2.2.4), in forward
    /// order. ResNet: both 3×3 convs of every residual block (`layer1.0.conv1`, `layer1.0.conv2`, ...);
    /// VGG: every conv of groups 1–4 (`layer1.0.conv2d`, ...). The stem / group 0 and the classifier stay FP.
    var quantizableConvNames: [String] { get }

    /// Replaces every quantizable conv by `transform(name, current)`, in `quantizableConvNames` order.
    /// The replacement's parameters and buffers appear in the state dict under `name.` (so a quantized
    /// conv listing `weight` and its quantizer's parameters keeps the reference's QConv key names).
    func replaceQuantizableConvs(_ transform: (_ name: String, _ conv: Layer) throws -> Layer) rethrows

    /// Visits every conv and linear in forward order, the first layer first and the classifier last, and
    /// replaces each by `transform(name, current)` (the Tiny-ImageNet / MQBench style quantizes all of them).
    func replaceWeightLayers(_ transform: (_ name: String, _ layer: Layer) throws -> Layer) rethrows
}

/// A model-zoo request that cannot be served; the message is meant for the command line.
public enum ModelZooError: Error, Equatable, CustomStringConvertible {
    case unknownModel(String, valid: [String])
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unknownModel(let name, let valid):
            return "unknown model '\(name)'; valid names: \(valid.joined(separator: ", "))"
        case .invalidArgument(let message):
            return message
        }
    }
}

/// The CIFAR model zoo of the paper (reference §3.1, §3.2), by name.
///
/// | name | model | reference builder |
/// |---|---|---|
/// | resnet20 | ResNet-20, option A, BN1d head | `resnet20_fp` |
/// | resnet32 | ResNet-32, option A, BN1d head | `resnet32_fp` |
/// | vgg8 | VGG-8-BN, cfg 'S' | `vgg8_bn_fp` |
/// | vgg11 | VGG-11-BN, cfg 'A' | `vgg11_bn_fp` |
/// | vgg13 | VGG-13-BN, cfg 'B' | `vgg13_bn_fp` |
public enum ModelZoo {
    public static let names = ["resnet20", "resnet32", "vgg8", "vgg11", "vgg13"]

    enum Family {
        case resnet(blocksPerStage: Int)
        case vgg(VGGCIFAR.Configuration)
    }

    static func family(_ name: String) throws -> Family {
        switch name {
        case "resnet20": return .resnet(blocksPerStage: 3)
        case "resnet32": return .resnet(blocksPerStage: 5)
        case "vgg8": return .vgg(.s)
        case "vgg11": return .vgg(.a)
        case "vgg13": return .vgg(.b)
        default: throw ModelZooError.unknownModel(name, valid: names)
        }
    }

    /// One line describing the architecture, for listings.
    public static func summary(_ name: String) throws -> String {
        switch try family(name) {
        case .resnet(let n): return "CIFAR ResNet-\(6 * n + 2) (option-A shortcuts, BatchNorm1d before the FC)"
        case .vgg(let c): return "CIFAR VGG-\(c.depth)-BN (cfg '\(c.rawValue)', no FC stack)"
        }
    }

    /// A freshly initialised model (reference initialisation, drawn from `RNG(seed: seed)`).
    public static func make(_ name: String, classes: Int, inputChannels: Int = 3, seed: UInt64) throws -> any Model {
        let family = try family(name)
        try validate(classes: classes, inputChannels: inputChannels)
        var rng = RNG(seed: seed)
        switch family {
        case .resnet(let n):
            return ResNetCIFAR(blocksPerStage: n, classes: classes, inputChannels: inputChannels, rng: &rng)
        case .vgg(let c):
            return VGGCIFAR(configuration: c, classes: classes, inputChannels: inputChannels, rng: &rng)
        }
    }

    /// Multiply-adds per image (see `Model.macs`), computed from the architecture without building it.
    public static func macs(_ name: String, classes: Int, inputChannels: Int = 3,
                            inputSize: (height: Int, width: Int)) throws -> Int {
        let family = try family(name)
        try validate(classes: classes, inputChannels: inputChannels)
        let minimum: Int
        switch family {
        case .resnet: minimum = 1
        case .vgg: minimum = VGGCIFAR.minimumInputSize
        }
        guard inputSize.height >= minimum, inputSize.width >= minimum else {
            throw ModelZooError.invalidArgument(
                "\(name) needs inputs of at least \(minimum)×\(minimum), got \(inputSize.height)×\(inputSize.width)")
        }
        switch family {
        case .resnet(let n):
            return ResNetCIFAR.macs(blocksPerStage: n, classes: classes, inputChannels: inputChannels,
                                    inputHeight: inputSize.height, inputWidth: inputSize.width)
        case .vgg(let c):
            return VGGCIFAR.macs(configuration: c, classes: classes, inputChannels: inputChannels,
                                 inputHeight: inputSize.height, inputWidth: inputSize.width)
        }
    }

    static func validate(classes: Int, inputChannels: Int) throws {
        guard classes >= 1 else { throw ModelZooError.invalidArgument("classes must be at least 1, got \(classes)") }
        guard inputChannels >= 1 else {
            throw ModelZooError.invalidArgument("input channels must be at least 1, got \(inputChannels)")
        }
    }
}
