import NN
import Quantization
import Tensors

/// An image classifier from the zoo: input [N, inputChannels, H, W] → logits [N, classes].
///
/// State names equal the PyTorch reference's state-dict keys, so `namedTensors()` / `load(stateDict:)`
/// exchange checkpoints with it directly. Everything structural (parameters, state dict, MACs, the layers a
/// quantization policy picks, feature taps) is derived from the module tree (`Layer.children`).
public protocol Model: Layer {
    /// The zoo name (`resnet20`, `vgg13`, ...).
    var architecture: String { get }
    var classes: Int { get }
    var inputChannels: Int { get }
    /// Paths of the layers before the first stage (ResNet `conv1`, `bn1`, `relu`; VGG `layer0`): the CIFAR
    /// quantization policy keeps the convolutions under them in full precision (reference §2.2.4).
    var stemPaths: [String] { get }
    /// The distillation features f0, f1, ... of the reference's `forward(is_feat=True)` (§3.1, §3.2, §6),
    /// as the paths of the layers whose outputs they are; `tapFeatures()` taps them.
    var featurePaths: [String] { get }
    /// The convolution and linear layers whose outputs are the model's output with nothing in between, the
    /// layers MQBench's `_get_io_module` calls "last" (reference §2.3.1). Default: the classifier
    /// (`classifierPath`). SqueezeNet's classifier conv is followed by ReLU, pooling and `torch.flatten`,
    /// so it has none.
    var graphOutputLayerPaths: [String] { get }
}

extension Model {
    /// Multiply-adds of one forward pass on one image of the given size (`Layer.macs(inputShape:)`):
    /// convolutions (K²·C_in/groups·C_out·H_out·W_out) and linear layers (in·out). Not counted: batch-norm,
    /// ReLU, pooling, residual additions and the (parameter-free) option-A shortcut.
    public func macs(inputHeight: Int, inputWidth: Int) -> Int {
        macs(inputShape: [1, inputChannels, inputHeight, inputWidth])
    }

    /// Taps f0, f1, ... (`featurePaths`), in order: after a forward, `taps[i].output` is feature f_i; an
    /// extra gradient dL/df_i goes to `taps[i].injectedGradient` before `backward`.
    @discardableResult
    public func tapFeatures() throws -> [Tap] { try tap(featurePaths) }

    /// Path of the classifier: the last linear layer (plain or quantized) in tree order; in a model without
    /// one (SqueezeNet's 1×1 conv classifier), the last convolution.
    public var classifierPath: String? {
        let list = modules()
        return (list.last { $0.layer is Linear || $0.layer is QLinear }
                ?? list.last { $0.layer is Conv2d || $0.layer is QConv2d })?.path
    }

    public var graphOutputLayerPaths: [String] { classifierPath.map { [$0] } ?? [] }

    /// Path of the layer that reads the image: the first convolution (plain or quantized) in tree order.
    public var inputLayerPath: String? {
        modules().first { $0.layer is Conv2d || $0.layer is QConv2d }?.path
    }
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

/// One row of the zoo: a name and how to build the model; the rest comes from the built model's tree.
public struct ModelZooEntry: Sendable {
    /// As on the command line and in checkpoints' `architecture`.
    public let name: String
    /// One line for `sqakd models`.
    public let summary: String
    /// The input size the model is trained and benchmarked at (height, width).
    public let inputSize: (height: Int, width: Int)
    /// The smallest input height and width the model accepts.
    public let minimumInputSize: Int
    /// Datasets `sqakd models` lists the model for, with their class counts.
    public let datasets: [(name: String, classes: Int)]
    /// A freshly initialised model drawing from `rng` (reference initialisation).
    public let build: @Sendable (_ classes: Int, _ inputChannels: Int, _ rng: inout RNG) -> any Model
}

/// The model zoo of the paper (reference §3.1–§3.3), one row per model. A new model is its family's
/// file plus one row here.
public enum ModelZoo {
    static let cifar: [(name: String, classes: Int)] = [("cifar10", 10), ("cifar100", 100)]
    static let tinyImageNet: [(name: String, classes: Int)] = [("tiny-imagenet", 200)]

    public static let entries: [ModelZooEntry] = [
        ModelZooEntry(name: "resnet20", summary: "CIFAR ResNet-20 (option-A shortcuts, BatchNorm1d before the FC)",
                      inputSize: (32, 32), minimumInputSize: 1, datasets: cifar) { classes, channels, rng in
            ResNetCIFAR(blocksPerStage: 3, classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "resnet32", summary: "CIFAR ResNet-32 (option-A shortcuts, BatchNorm1d before the FC)",
                      inputSize: (32, 32), minimumInputSize: 1, datasets: cifar) { classes, channels, rng in
            ResNetCIFAR(blocksPerStage: 5, classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "vgg8", summary: "CIFAR VGG-8-BN (cfg 'S', no FC stack)",
                      inputSize: (32, 32), minimumInputSize: VGGCIFAR.minimumInputSize, datasets: cifar) { classes, channels, rng in
            VGGCIFAR(configuration: .s, classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "vgg11", summary: "CIFAR VGG-11-BN (cfg 'A', no FC stack)",
                      inputSize: (32, 32), minimumInputSize: VGGCIFAR.minimumInputSize, datasets: cifar) { classes, channels, rng in
            VGGCIFAR(configuration: .a, classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "vgg13", summary: "CIFAR VGG-13-BN (cfg 'B', no FC stack)",
                      inputSize: (32, 32), minimumInputSize: VGGCIFAR.minimumInputSize, datasets: cifar) { classes, channels, rng in
            VGGCIFAR(configuration: .b, classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "resnet18", summary: "ImageNet ResNet-18 (torchvision; the authors' resnet18_imagenet)",
                      inputSize: (224, 224), minimumInputSize: 1, datasets: tinyImageNet) { classes, channels, rng in
            ResNetImageNet(classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "mobilenetv2", summary: "MobileNet-V2 ×1.0 (torchvision; the authors' mobilenet_v2)",
                      inputSize: (224, 224), minimumInputSize: 1, datasets: tinyImageNet) { classes, channels, rng in
            MobileNetV2(classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "vgg11_bn", summary: "Tiny-ImageNet VGG-11-BN (the authors' vgg11_bn: cfg 'A', no FC stack, pool3 never applied)",
                      inputSize: (224, 224), minimumInputSize: VGGImageNet.minimumInputSize, datasets: tinyImageNet) { classes, channels, rng in
            VGGImageNet(classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "shufflenet_v2_x0_5", summary: "ShuffleNet-V2 ×0.5 (torchvision 0.11 definition and names)",
                      inputSize: (224, 224), minimumInputSize: 1, datasets: tinyImageNet) { classes, channels, rng in
            ShuffleNetV2(classes: classes, inputChannels: channels, rng: &rng)
        },
        ModelZooEntry(name: "squeezenet1_0", summary: "SqueezeNet 1.0 (torchvision 0.11 definition and names)",
                      inputSize: (224, 224), minimumInputSize: SqueezeNet.minimumInputSize, datasets: tinyImageNet) { classes, channels, rng in
            SqueezeNet(classes: classes, inputChannels: channels, rng: &rng)
        },
    ]

    public static var names: [String] { entries.map(\.name) }

    public static func entry(_ name: String) throws -> ModelZooEntry {
        guard let e = entries.first(where: { $0.name == name }) else { throw ModelZooError.unknownModel(name, valid: names) }
        return e
    }

    /// One line describing the architecture, for listings.
    public static func summary(_ name: String) throws -> String { try entry(name).summary }

    /// A freshly initialised model (reference initialisation, drawn from `RNG(seed: seed)`).
    public static func make(_ name: String, classes: Int, inputChannels: Int = 3, seed: UInt64) throws -> any Model {
        let e = try entry(name)
        try validate(classes: classes, inputChannels: inputChannels)
        var rng = RNG(seed: seed)
        return e.build(classes, inputChannels, &rng)
    }

    /// Multiply-adds per image (see `Model.macs`), traced on a freshly built model.
    public static func macs(_ name: String, classes: Int, inputChannels: Int = 3,
                            inputSize: (height: Int, width: Int)) throws -> Int {
        let e = try entry(name)
        try validate(classes: classes, inputChannels: inputChannels)
        guard inputSize.height >= e.minimumInputSize, inputSize.width >= e.minimumInputSize else {
            throw ModelZooError.invalidArgument("\(name) needs inputs of at least \(e.minimumInputSize)×\(e.minimumInputSize), " +
                                                "got \(inputSize.height)×\(inputSize.width)")
        }
        return try make(name, classes: classes, inputChannels: inputChannels, seed: 0)
            .macs(inputHeight: inputSize.height, inputWidth: inputSize.width)
    }

    /// The classes and input channels a state dict implies for the model `name`: the out-features of the
    /// classifier's weight and the in-channels of the first convolution's weight, at the paths the
    /// model's own tree gives (`Model.classifierPath`, `Model.inputLayerPath`). Throws when the state dict
    /// lacks either tensor or it has the wrong rank.
    public static func geometry(of stateDict: [String: Tensor], as name: String) throws -> (classes: Int, inputChannels: Int) {
        let probe = try make(name, classes: 1, inputChannels: 1, seed: 0)
        guard let classifier = probe.classifierPath, let input = probe.inputLayerPath else {
            throw ModelZooError.invalidArgument("\(name) has no classifier or no convolution")
        }
        let named = Dictionary(probe.namedTensors().map { ($0.name, $0.tensor.shape) }) { a, _ in a }
        let classifierRank = named[classifier + ".weight"]?.count ?? 2
        guard let w = stateDict[classifier + ".weight"], w.shape.count == classifierRank else {
            throw ModelZooError.invalidArgument("no \(classifierRank)-D '\(classifier).weight' (the \(name) classifier)")
        }
        guard let c = stateDict[input + ".weight"], c.shape.count == 4 else {
            throw ModelZooError.invalidArgument("no 4-D '\(input).weight' (the \(name) input convolution)")
        }
        // The dimensions that do not depend on classes or channels must be the model's own, so a forged
        // shape ([4000000000, 0]) is refused before a model of that size is allocated.
        if let pw = named[classifier + ".weight"], Array(w.shape.dropFirst()) != Array(pw.dropFirst()) || w.shape[0] < 1 {
            let rest = pw.dropFirst().map(String.init).joined(separator: ", ")
            throw ModelZooError.invalidArgument("'\(classifier).weight' has shape \(w.shape); \(name) needs [classes ≥ 1, \(rest)]")
        }
        if let pc = named[input + ".weight"], pc.count == 4, c.shape[0] != pc[0] || Array(c.shape[2...]) != Array(pc[2...]) || c.shape[1] < 1 {
            throw ModelZooError.invalidArgument("'\(input).weight' has shape \(c.shape); \(name) needs [\(pc[0]), channels ≥ 1, \(pc[2]), \(pc[3])]")
        }
        return (w.shape[0], c.shape[1])
    }

    static func validate(classes: Int, inputChannels: Int) throws {
        guard classes >= 1 else { throw ModelZooError.invalidArgument("classes must be at least 1, got \(classes)") }
        guard inputChannels >= 1 else {
            throw ModelZooError.invalidArgument("input channels must be at least 1, got \(inputChannels)")
        }
    }
}

extension ModelZoo {
    /// The zoo as `sqakd models` prints it: one line per row and dataset with the class count, input size,
    /// parameter count and MACs per image (traced from the built model), then each model's summary.
    public static func listing() throws -> String {
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        let nameWidth = max(10, entries.map(\.name.count).max() ?? 0)
        let datasetWidth = max(11, entries.flatMap { $0.datasets.map(\.name.count) }.max() ?? 0)
        var lines = [pad("model", nameWidth) + " " + pad("dataset", datasetWidth) + " " + pad("classes", 7, right: true) + "  "
                     + pad("input", 7) + " " + pad("params", 11, right: true) + "  " + pad("MACs/image", 10, right: true)]
        for e in entries {
            for (dataset, classes) in e.datasets {
                let m = try make(e.name, classes: classes, seed: 0)
                let macs = m.macs(inputHeight: e.inputSize.height, inputWidth: e.inputSize.width)
                let hundredths = Int((Double(macs) / 1e4).rounded())
                let macsText = "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + "\(hundredths % 100) M"
                lines.append(pad(e.name, nameWidth) + " " + pad(dataset, datasetWidth) + " " + pad("\(classes)", 7, right: true) + "  "
                             + pad("\(e.inputSize.height)×\(e.inputSize.width)", 7) + " "
                             + pad(grouped(m.parameterCount), 11, right: true) + "  " + pad(macsText, 10, right: true))
            }
        }
        lines.append("")
        lines += entries.map { pad($0.name, nameWidth) + " " + $0.summary }
        return lines.joined(separator: "\n")
    }

    /// 269850 → "269,850".
    static func grouped(_ n: Int) -> String {
        var digits = Array(String(n)), out: [Character] = []
        while digits.count > 3 {
            out = [","] + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return String(digits + out)
    }
}
