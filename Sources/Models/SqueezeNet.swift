import NN
import Tensors

/// SqueezeNet's Fire module (Iandola et al. 2016; torchvision 0.11 `squeezenet.py` `Fire`), squeeze s,
/// expands e1, e3:
///
///     h   = relu(squeeze(x))                       squeeze: 1×1 C_in→s, bias
///     out = cat(relu(expand1x1(h)), relu(expand3x3(h)))   expand1x1: 1×1 s→e1; expand3x3: 3×3 p1 s→e3; bias
///
/// Backward: da, db = split(dy, [e1, e3]); dh = expand1x1'(relu'(da)) + expand3x3'(relu'(db));
/// dx = squeeze'(relu'(dh)). Shapes: x [N, C_in, H, W] → out [N, e1 + e3, H, W].
///
/// Children (torchvision's names): `squeeze`, `squeeze_activation`, `expand1x1`, `expand1x1_activation`,
/// `expand3x3`, `expand3x3_activation`; MQBench's placement (`shareActivationQuantizers`) adds
/// `squeeze_activation_quant` after `squeeze_activation`.
public final class Fire: Layer, ActivationSharing {
    public internal(set) var squeeze: Layer
    public internal(set) var squeezeActivation: Layer = ReLU()
    /// MQBench's shared fake-quantizer of h (`shareActivationQuantizers`), read by both expands; empty (every
    /// other case) gives each expand h as it is.
    public let squeezeActivationQuant = ActivationSlot("squeeze_activation_quant")
    public internal(set) var expand1x1: Layer
    public internal(set) var expand1x1Activation: Layer = ReLU()
    public internal(set) var expand3x3: Layer
    public internal(set) var expand3x3Activation: Layer = ReLU()

    public let inputChannels: Int
    public let squeezeChannels: Int
    public let expand1x1Channels: Int
    public let expand3x3Channels: Int

    private var savedInputLayout: Layout = .plain

    /// Weights ~ kaiming_uniform_ (torchvision's SqueezeNet init: a = 0, fan_in, U(±√(6/fan_in))), biases 0;
    /// drawn in module order.
    public init(inputChannels: Int, squeeze s: Int, expand1x1 e1: Int, expand3x3 e3: Int, rng: inout RNG) {
        self.inputChannels = inputChannels
        squeezeChannels = s
        expand1x1Channels = e1
        expand3x3Channels = e3
        let sq = Conv2d(inputChannels: inputChannels, outputChannels: s, kernelSize: 1)
        let x1 = Conv2d(inputChannels: s, outputChannels: e1, kernelSize: 1)
        let x3 = Conv2d(inputChannels: s, outputChannels: e3, kernelSize: 3, padding: 1)
        for c in [sq, x1, x3] { Initialization.kaimingUniformFanIn(c.weight.value, rng: &rng) }
        squeeze = sq
        expand1x1 = x1
        expand3x3 = x3
    }

    public var children: [Child] {
        var list = [child("squeeze", \.squeeze), child("squeeze_activation", \.squeezeActivation)]
        list += squeezeActivationQuant.children
        return list + [child("expand1x1", \.expand1x1), child("expand1x1_activation", \.expand1x1Activation),
                       child("expand3x3", \.expand3x3), child("expand3x3_activation", \.expand3x3Activation)]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        savedInputLayout = x.layout
        let r = squeezeActivation.forward(squeeze.forward(x, mode: mode), mode: mode)
        let h = squeezeActivationQuant.forward(r, mode: mode)
        let a = expand1x1Activation.forward(expand1x1.forward(h, mode: mode), mode: mode)
        let b = expand3x3Activation.forward(expand3x3.forward(h, mode: mode), mode: mode)
        return concatenateChannels([a, b])
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let parts = splitChannels(dy, sizes: [expand1x1Channels, expand3x3Channels])
        let dh = expand1x1.backward(expand1x1Activation.backward(parts[0]))
        addInPlace(dh, expand3x3.backward(expand3x3Activation.backward(parts[1])))
        let dr = squeezeActivationQuant.backward(dh)
        return squeeze.backward(squeezeActivation.backward(dr)).toLayout(savedInputLayout)
    }

    /// h, read by both expands.
    public var activationSites: [ActivationSite] {
        [ActivationSite(slot: squeezeActivationQuant.name, consumers: ["expand1x1", "expand3x3"])]
    }

    public func installActivationQuantizer(_ layer: Layer, at slot: String) throws {
        try squeezeActivationQuant.install(layer, at: slot)
    }
}

/// SqueezeNet 1.0 (Iandola et al. 2016) as torchvision 0.11 builds it (`squeezenet.py`, `SqueezeNet`,
/// version "1_0"), which the authors trained on Tiny-ImageNet (reference §3.3). Every conv has a bias.
///
///     features.0  7×7 s2 C_in→96, features.1 ReLU              [N, 96, 109, 109] (224) / [N, 96, 29, 29] (64)  f0
///     features.2  maxpool 3×3 s2 ceil                           [N, 96, 54, 54]  / [N, 96, 14, 14]
///     features.3–5  Fire(96: 16, 64, 64), Fire(128: 16, 64, 64), Fire(128: 32, 128, 128)
///                                                               [N, 256, 54, 54] / [N, 256, 14, 14]     f1
///     features.6  maxpool 3×3 s2 ceil                           [N, 256, 27, 27] / [N, 256, 7, 7]
///     features.7–10 Fire(256: 32, 128, 128), Fire(256: 48, 192, 192), Fire(384: 48, 192, 192),
///                   Fire(384: 64, 256, 256)                     [N, 512, 27, 27] / [N, 512, 7, 7]       f2
///     features.11 maxpool 3×3 s2 ceil                           [N, 512, 13, 13] / [N, 512, 3, 3]
///     features.12 Fire(512: 64, 256, 256)                       [N, 512, 13, 13] / [N, 512, 3, 3]       f3
///     classifier.0 Dropout(0.5), classifier.1 1×1 512→classes, classifier.2 ReLU,
///     classifier.3 AdaptiveAvgPool2d(1)                         [N, classes, 1, 1]
///     flatten (torchvision's `torch.flatten(x, 1)`)             [N, classes]
///
/// Inputs of at least 29×29 (`minimumInputSize`): our max-pool needs a full first window, so the third
/// max-pool needs a 3×3 map (PyTorch lets a ceil-mode window hang over the edge and accepts 28×28 too).
/// Children: `features`, `classifier` (`Sequential`s indexed as torchvision's), `flatten` (ours,
/// parameter-free). State names are torchvision's (`features.3.squeeze.weight`, `classifier.1.bias`).
/// 1.0 at 200 classes: 838,024 parameters (reference §3.3); 749,702,176 MACs per 224×224 image, 50,284,576 per 64×64.
/// Features f0…f3 (`featurePaths`): the stem after its ReLU and the output of the last Fire before each
/// max-pool and of the last Fire (there is no pooled pre-classifier vector: the classifier is the conv
/// before the pooling). Stem (`stemPaths`): `features.0`, `features.1`, `features.2`.
///
/// The classifier conv `classifier.1` is the model's last weight layer, yet it is no "last layer" for
/// MQBench: torchvision's forward ends in `torch.flatten(x, 1)`, so the FX graph's output node is the flatten,
/// and MQBench's Academic quantizer (`academic_quantizer.py` `_get_io_module`) finds no conv or linear
/// feeding the output. The final 1×1 conv, and its input, are therefore quantized at the low bit-width,
/// not at 32 bits (reference §2.3.1, §8 item 14).
///
/// Init (torchvision): every conv weight kaiming_uniform_ (a = 0: U(±√(6/fan_in))) except the final
/// conv, N(0, 0.01²); all biases 0. Drawn from `rng` in module order; the dropout mask stream is seeded from
/// `rng` too. The stem conv computes no input gradient.
public final class SqueezeNet: Model {
    public let architecture: String
    public let classes: Int
    public let inputChannels: Int

    public internal(set) var features: Layer
    public internal(set) var classifier: Layer
    public internal(set) var flatten: Layer = Flatten()

    public let stemPaths = ["features.0", "features.1", "features.2"]
    public let featurePaths = ["features.1", "features.5", "features.10", "features.12"]
    /// The classifier conv feeds ReLU, pooling and `torch.flatten`: MQBench has no "last" layer here and
    /// quantizes `classifier.1` at the low bit-width (reference §2.3.1, §8 item 14).
    public let graphOutputLayerPaths: [String] = []

    /// The smallest input side: the third max-pool needs 3 rows, so the second 6 and the first 12
    /// (29 → 12 → 6 → 3 → 1 through the stem conv and the three ceil-mode pools).
    public static let minimumInputSize = 29

    /// Fire(C_in, squeeze, expand1x1, expand3x3) of version 1.0 after the stem's max-pool; nil is a max-pool.
    static let version1_0: [(Int, Int, Int, Int)?] = [
        (96, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), nil,
        (256, 32, 128, 128), (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), nil,
        (512, 64, 256, 256),
    ]

    public init(architecture: String = "squeezenet1_0", classes: Int, inputChannels: Int = 3, dropout: Float = 0.5,
                rng: inout RNG) {
        precondition(classes >= 1 && inputChannels >= 1, "SqueezeNet(classes: \(classes), inputChannels: \(inputChannels))")
        self.architecture = architecture
        self.classes = classes
        self.inputChannels = inputChannels

        let stem = Conv2d(inputChannels: inputChannels, outputChannels: 96, kernelSize: 7, stride: 2)
        Initialization.kaimingUniformFanIn(stem.weight.value, rng: &rng)
        stem.propagatesInputGradient = false
        var layers: [Layer] = [stem, ReLU(), MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true)]
        for f in Self.version1_0 {
            guard let (c, s, e1, e3) = f else {
                layers.append(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true))
                continue
            }
            layers.append(Fire(inputChannels: c, squeeze: s, expand1x1: e1, expand3x3: e3, rng: &rng))
        }
        features = Sequential(layers)

        let final = Conv2d(inputChannels: 512, outputChannels: classes, kernelSize: 1)
        Initialization.normal(final.weight.value, std: 0.01, rng: &rng)
        classifier = Sequential([Dropout(probability: dropout, seed: rng.next()), final, ReLU(),
                                 AdaptiveAvgPool2d(outputSize: 1)])
    }

    public var children: [Child] {
        [child("features", \.features), child("classifier", \.classifier), child("flatten", \.flatten)]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = features.forward(x, mode: mode)
        h = classifier.forward(h, mode: mode)
        return flatten.forward(h, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = flatten.backward(dy)
        g = classifier.backward(g)
        return features.backward(g)
    }
}
