import NN
import Tensors

/// torchvision's `ConvBNReLU` (0.8; `Conv2dNormActivation` with ReLU6 in 0.14), the authors' copy
/// `TinyImageNet/models/mobilenet_v2.py:42-51`: Sequential(`0` Conv2d k×k, stride s, pad (k−1)/2, groups g,
/// no bias; `1` BatchNorm2d; `2` ReLU6). Weight ~ kaiming_normal_ (fan_out) (`:160-164`).
func convBNReLU6(_ inputChannels: Int, _ outputChannels: Int, kernelSize: Int = 3, stride: Int = 1, groups: Int = 1,
                 rng: inout RNG) -> Sequential {
    let conv = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
                      stride: stride, padding: (kernelSize - 1) / 2, groups: groups, bias: false)
    Initialization.kaimingNormalFanOut(conv.weight.value, rng: &rng)
    return Sequential([conv, BatchNorm2d(features: outputChannels), ReLU6()])
}

/// MobileNetV2's inverted residual block (`mobilenet_v2.py:54-83`), expansion t, hidden width C_h = C_in·t:
///
///     conv = [ConvBNReLU6 1×1 C_in→C_h (only if t ≠ 1)] → ConvBNReLU6 3×3 depthwise C_h→C_h, stride s
///            (groups C_h) → Conv2d 1×1 C_h→C_out (no bias, no activation) → BatchNorm2d
///     y = x + conv(x) when s = 1 and C_in = C_out, else conv(x)
///
/// Shapes: x [N, C_in, H, W] → y [N, C_out, (H−1)/s+1, (W−1)/s+1]. Backward: dx = conv backward(dy), plus dy
/// on the residual path.
/// Children: `conv` (a `Sequential` "0", "1", ... as torchvision's), so the state names are
/// `conv.0.0.weight`, `conv.0.1.*`, ..., `conv.{2,3}` (t = 1: `conv.{1,2}`) for the linear 1×1 and its BN.
/// MQBench's placement (`shareActivationQuantizers`) adds `input_quant` before `conv` in a residual block.
public final class InvertedResidual: Layer, ActivationSharing {
    /// MQBench's shared fake-quantizer of a residual block's input (`shareActivationQuantizers`): read by
    /// the first convolution and the residual add; empty (every other case) reads the input as it is.
    public let inputQuant = ActivationSlot("input_quant")
    public internal(set) var conv: Layer

    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int
    public let expansion: Int
    /// stride 1 and C_in = C_out (`:64`).
    public let usesResidual: Bool

    public init(inputChannels: Int, outputChannels: Int, stride: Int, expansion: Int, rng: inout RNG) {
        precondition(stride == 1 || stride == 2, "InvertedResidual: stride \(stride) (1 or 2)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.stride = stride
        self.expansion = expansion
        usesResidual = stride == 1 && inputChannels == outputChannels
        let hidden = inputChannels * expansion
        var layers: [Layer] = []
        if expansion != 1 { layers.append(convBNReLU6(inputChannels, hidden, kernelSize: 1, rng: &rng)) }
        layers.append(convBNReLU6(hidden, hidden, stride: stride, groups: hidden, rng: &rng))
        let project = Conv2d(inputChannels: hidden, outputChannels: outputChannels, kernelSize: 1, bias: false)
        Initialization.kaimingNormalFanOut(project.weight.value, rng: &rng)
        layers += [project, BatchNorm2d(features: outputChannels)]
        conv = Sequential(layers)
    }

    public var children: [Child] {
        inputQuant.children + [child("conv", \.conv)]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let xs = inputQuant.forward(x, mode: mode)
        let h = conv.forward(xs, mode: mode)
        return usesResidual ? add(h, xs) : h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let g = conv.backward(dy)
        let dxs = usesResidual ? add(g, dy) : g
        return inputQuant.backward(dxs)
    }

    /// A residual block's input, read by its first convolution (`conv.0.0`) and the add. A block without
    /// the residual has one reader and no site.
    public var activationSites: [ActivationSite] {
        usesResidual ? [ActivationSite(slot: inputQuant.name, consumers: ["conv.0.0"])] : []
    }

    public func installActivationQuantizer(_ layer: Layer, at slot: String) throws {
        guard usesResidual else { throw LayerTreeError.noLayer(path: slot) }
        try inputQuant.install(layer, at: slot)
    }
}

/// torchvision's MobileNetV2, width 1.0, the authors' `mobilenet_v2` (reference §3.3,
/// `TinyImageNet/models/mobilenet_v2.py:86-199`, a copy of torchvision 0.8):
///
///     features.0: ConvBNReLU6 3×3 s2 C_in→32                              [N, 32, H/2, W/2]       f0
///     features.1…17: inverted residuals (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
///                    (6,96,3,1) (6,160,3,2) (6,320,1,1) (`:121-130`), stride s on the first of each n
///     features.18: ConvBNReLU6 1×1 320→1280                              [N, 1280, H/32, W/32]   f4
///     pool (global average) → flatten                                      [N, 1280]               f5
///     classifier: `0` Dropout(0.2), `1` Linear(1280, classes)             [N, classes]
///
/// Children: `features` (Sequential "0"…"18"), `pool`, `flatten`, `classifier` (Sequential "0", "1").
/// `pool` and `flatten` are the reference's functional `adaptive_avg_pool2d(x, 1).reshape(N, -1)`
/// (`:177`); they have no state, so the state names are torchvision's: `features.0.{0,1}.*`,
/// `features.{1…17}.conv.*`, `features.18.{0,1}.*`, `classifier.1.{weight,bias}` (with
/// `num_batches_tracked`). 200 classes: 2,480,072 parameters (1000 classes: torchvision's 3,504,872).
/// Features f0…f5 (`featurePaths`): the stem `features.0`, then the last block at each resolution:
/// `features.3` (24 ch, H/4), `features.6` (32 ch, H/8), `features.13` (96 ch, H/16), `features.18`
/// (1280 ch, H/32), and the pooled 1280-vector. `stemPaths`: `features.0`.
///
/// Init (`:160-170`): conv weights kaiming_normal_ (fan_out, gain √2); BN 1/0; Linear N(0, 0.01²), bias 0.
/// The dropout mask is drawn from its own generator, seeded from the init RNG after every weight.
/// The stem conv computes no input gradient.
public final class MobileNetV2: Model {
    /// (t, c, n, s): expansion, output channels, repeats, first stride (`:121-130`).
    public static let invertedResidualSetting: [(t: Int, c: Int, n: Int, s: Int)] = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]
    public static let stemChannels = 32
    public static let lastChannels = 1280
    /// `classifier.0` (`:155`).
    public static let dropoutProbability: Float = 0.2

    public let architecture = "mobilenetv2"
    public let classes: Int
    public let inputChannels: Int

    public internal(set) var features: Layer
    public internal(set) var pool: Layer = AdaptiveAvgPool2d(outputSize: 1)
    public internal(set) var flatten: Layer = Flatten()
    public internal(set) var classifier: Layer

    public let stemPaths = ["features.0"]
    public let featurePaths = ["features.0", "features.3", "features.6", "features.13", "features.18", "flatten"]

    public init(classes: Int, inputChannels: Int = 3, rng: inout RNG) {
        precondition(classes >= 1 && inputChannels >= 1,
                     "MobileNetV2(classes: \(classes), inputChannels: \(inputChannels))")
        self.classes = classes
        self.inputChannels = inputChannels

        let stem = convBNReLU6(inputChannels, Self.stemChannels, stride: 2, rng: &rng)
        (stem.layers[0] as! Conv2d).propagatesInputGradient = false
        var layers: [Layer] = [stem]
        var width = Self.stemChannels
        for (t, c, n, s) in Self.invertedResidualSetting {
            for i in 0..<n {
                layers.append(InvertedResidual(inputChannels: width, outputChannels: c, stride: i == 0 ? s : 1,
                                               expansion: t, rng: &rng))
                width = c
            }
        }
        layers.append(convBNReLU6(width, Self.lastChannels, kernelSize: 1, rng: &rng))
        features = Sequential(layers)

        let linear = Linear(inputFeatures: Self.lastChannels, outputFeatures: classes, bias: true)
        Initialization.normal(linear.weight.value, std: 0.01, rng: &rng)
        linear.bias?.value.fill(0)
        classifier = Sequential([Dropout(probability: Self.dropoutProbability, seed: rng.next()), linear])
    }

    public var children: [Child] {
        [child("features", \.features), child("pool", \.pool), child("flatten", \.flatten),
         child("classifier", \.classifier)]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = features.forward(x, mode: mode)
        h = pool.forward(h, mode: mode)
        h = flatten.forward(h, mode: mode)
        return classifier.forward(h, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = classifier.backward(dy)
        g = flatten.backward(g)
        g = pool.backward(g)
        return features.backward(g)
    }
}
