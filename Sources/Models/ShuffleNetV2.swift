import NN
import Tensors

/// The ShuffleNet-V2 unit (Ma et al. 2018, Fig. 3c/d; torchvision 0.11 `shufflenetv2.py`
/// `InvertedResidual`), m = C_out/2 branch channels:
///
///     stride 1 (C_in = C_out):  x1, x2 = x.chunk(2);  out = shuffle(cat(x1, branch2(x2)), 2)
///     stride 2:                 out = shuffle(cat(branch1(x), branch2(x)), 2)
///     branch1 = dw3×3 s (C_in) → BN → 1×1 C_in→m → BN → ReLU            (stride 2 only; else empty)
///     branch2 = 1×1 →m → BN → ReLU → dw3×3 s (m) → BN → 1×1 m→m → BN → ReLU
///
/// Convolutions have no bias. shuffle(cat(a, b), 2) interleaves: out[:, 2j] = a[:, j], out[:, 2j+1] = b[:, j];
/// forward does the split, concatenation and shuffle as one channel gather (x1 is read straight from x).
/// Backward: da = dy[:, 0::2], db = dy[:, 1::2]; stride 1: dx = cat(da, branch2'(db)); stride 2:
/// dx = branch1'(da) + branch2'(db).
/// Shapes: x [N, C_in, H, W] → out [N, C_out, (H−1)/s+1, (W−1)/s+1].
///
/// Children: `branch1`, `branch2` (torchvision's names; `Sequential`s indexed as torchvision's, ReLUs
/// included, so state names are `branch2.0.weight`, `branch2.1.running_mean`, ...). A stride-1 unit's
/// `branch1` is an empty `Sequential`, as in torchvision. MQBench's placement (`shareActivationQuantizers`)
/// adds `input_quant` before both branches of a stride-2 unit.
public final class ShuffleUnit: Layer, ActivationSharing {
    /// MQBench's shared fake-quantizer of a stride-2 unit's input (`shareActivationQuantizers`): read by
    /// `branch1.0` and `branch2.0`; empty (every other case) reads the input as it is.
    public let inputQuant = ActivationSlot("input_quant")
    public internal(set) var branch1: Layer
    public internal(set) var branch2: Layer

    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int

    private var savedInputLayout: Layout = .plain

    /// Every convolution gets PyTorch's default init (`Conv2d.resetParameters`), drawn in module order.
    public init(inputChannels: Int, outputChannels: Int, stride: Int, rng: inout RNG) {
        precondition(stride == 1 || stride == 2, "ShuffleUnit stride \(stride)")
        precondition(outputChannels % 2 == 0 && (stride == 2 || inputChannels == outputChannels),
                     "ShuffleUnit(\(inputChannels)→\(outputChannels), stride \(stride)): a stride-1 unit keeps its even width")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.stride = stride
        let m = outputChannels / 2
        func conv(_ i: Int, _ o: Int, _ k: Int, stride: Int = 1, groups: Int = 1, rng: inout RNG) -> Conv2d {
            let c = Conv2d(inputChannels: i, outputChannels: o, kernelSize: k, stride: stride, padding: k / 2,
                           groups: groups, bias: false)
            c.resetParameters(rng: &rng)
            return c
        }
        if stride == 2 {
            branch1 = Sequential([conv(inputChannels, inputChannels, 3, stride: 2, groups: inputChannels, rng: &rng),
                                  BatchNorm2d(features: inputChannels),
                                  conv(inputChannels, m, 1, rng: &rng), BatchNorm2d(features: m), ReLU()])
        } else {
            branch1 = Sequential([])
        }
        branch2 = Sequential([conv(stride == 2 ? inputChannels : m, m, 1, rng: &rng), BatchNorm2d(features: m), ReLU(),
                              conv(m, m, 3, stride: stride, groups: m, rng: &rng), BatchNorm2d(features: m),
                              conv(m, m, 1, rng: &rng), BatchNorm2d(features: m), ReLU()])
    }

    public var children: [Child] {
        inputQuant.children + [child("branch1", \.branch1), child("branch2", \.branch2)]
    }

    /// out[:, 2j] = a[:, j], out[:, 2j+1] = b[:, j] as a gather map over [a, b] (a's channels from `aOffset`).
    private func interleave(m: Int, aOffset: Int) -> [(source: Int, channel: Int)] {
        (0..<2 * m).map { c in c % 2 == 0 ? (source: 0, channel: aOffset + c / 2) : (source: 1, channel: c / 2) }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[1] == inputChannels,
                     "ShuffleUnit(\(inputChannels)→\(outputChannels)) expects [N, \(inputChannels), H, W], got \(x.shape)")
        savedInputLayout = x.layout
        let m = outputChannels / 2
        if stride == 1 {
            let x2 = gatherChannels([x], (m..<2 * m).map { (source: 0, channel: $0) })
            let b = branch2.forward(x2, mode: mode)
            return gatherChannels([x, b], interleave(m: m, aOffset: 0), layout: channelLayout(channels: 2 * m, preferring: b.layout))
        }
        let xs = inputQuant.forward(x, mode: mode)
        let a = branch1.forward(xs, mode: mode)
        let b = branch2.forward(xs, mode: mode)
        return gatherChannels([a, b], interleave(m: m, aOffset: 0))
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let m = outputChannels / 2
        precondition(dy.shape.count == 4 && dy.shape[1] == 2 * m, "ShuffleUnit backward: dy \(dy.shape)")
        let db = gatherChannels([dy], (0..<m).map { (source: 0, channel: 2 * $0 + 1) })
        let dxb = branch2.backward(db)
        if stride == 1 {
            return gatherChannels([dy, dxb], (0..<2 * m).map { c in c < m ? (source: 0, channel: 2 * c) : (source: 1, channel: c - m) },
                                  layout: savedInputLayout)
        }
        let da = gatherChannels([dy], (0..<m).map { (source: 0, channel: 2 * $0) })
        let dxa = branch1.backward(da)
        let dxs = add(dxa, dxb)
        return inputQuant.backward(dxs).toLayout(savedInputLayout)
    }

    /// A stride-2 unit's input, read by both branches' first convolutions. A stride-1 unit splits its input
    /// and `branch2.0` alone reads the second half: no site.
    public var activationSites: [ActivationSite] {
        stride == 2 ? [ActivationSite(slot: inputQuant.name, consumers: ["branch1.0", "branch2.0"])] : []
    }

    public func installActivationQuantizer(_ layer: Layer, at slot: String) throws {
        guard stride == 2 else { throw LayerTreeError.noLayer(path: slot) }
        try inputQuant.install(layer, at: slot)
    }
}

/// ShuffleNet-V2 (Ma et al. 2018) as torchvision 0.11 builds it (`shufflenetv2.py`, `ShuffleNetV2`),
/// which the authors trained on Tiny-ImageNet (reference §3.3). ×0.5: repeats [4, 8, 4], widths
/// [24, 48, 96, 192, 1024]:
///
///     conv1 = [3×3 s2 p1 C_in→24 (no bias), BN, ReLU]              [N, 24, H/2, W/2]        f0
///     maxpool 3×3 s2 p1                                             [N, 24, H/4, W/4]
///     stage2: ShuffleUnit 24→48 s2, 3 × ShuffleUnit 48 s1           [N, 48, H/8, W/8]        f1
///     stage3: ShuffleUnit 48→96 s2, 7 × ShuffleUnit 96 s1           [N, 96, H/16, W/16]      f2
///     stage4: ShuffleUnit 96→192 s2, 3 × ShuffleUnit 192 s1         [N, 192, H/32, W/32]     f3
///     conv5 = [1×1 192→1024 (no bias), BN, ReLU]                    [N, 1024, H/32, W/32]    f4
///     pool (global mean, torchvision's `x.mean([2, 3])`) → flatten  [N, 1024]                f5
///     fc 1024→classes                                               [N, classes]
/// (H/2ᵏ rounded up: each stride-2 step maps H to ⌊(H−1)/2⌋+1; 64 → 32, 16, 8, 4, 2; 224 → 112, 56, 28, 14, 7.)
///
/// Children, in order: `conv1`, `maxpool`, `stage2`, `stage3`, `stage4`, `conv5`, `pool`, `flatten`,
/// `fc`; every torchvision module path exists here (`pool` and `flatten` are ours, parameter-free), and
/// state names are torchvision's (`stage2.0.branch1.0.weight`, `conv5.1.running_var`, `fc.bias`).
/// ×0.5 at 200 classes: 546,792 parameters (reference §3.3); 39,657,248 MACs per 224×224 image, 3,425,408 per 64×64.
/// Features f0…f5 (`featurePaths`): the stem after its ReLU, each stage's output, conv5's output and the
/// pooled 1024-vector before `fc`. Stem (`stemPaths`): `conv1`, `maxpool`.
///
/// Init: PyTorch's defaults, as torchvision leaves them (§3.3): conv weights U(±1/√fan_in)
/// (kaiming_uniform, a = √5), fc weight and bias U(±1/√1024), BN weight 1, bias 0. Drawn from `rng` in
/// module order. The stem conv computes no input gradient.
public final class ShuffleNetV2: Model {
    public let architecture: String
    public let classes: Int
    public let inputChannels: Int

    public internal(set) var conv1: Layer
    public internal(set) var maxpool: Layer = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
    public internal(set) var stage2: Layer
    public internal(set) var stage3: Layer
    public internal(set) var stage4: Layer
    public internal(set) var conv5: Layer
    public internal(set) var pool: Layer = AdaptiveAvgPool2d(outputSize: 1)
    public internal(set) var flatten: Layer = Flatten()
    public internal(set) var fc: Layer

    public let stemPaths = ["conv1", "maxpool"]
    public let featurePaths = ["conv1", "stage2", "stage3", "stage4", "conv5", "flatten"]

    /// torchvision's `shufflenet_v2_x0_5`: `stages_repeats`, `stages_out_channels`.
    public static let x0_5 = (repeats: [4, 8, 4], widths: [24, 48, 96, 192, 1024])

    public init(architecture: String = "shufflenet_v2_x0_5", repeats: [Int] = x0_5.repeats, widths: [Int] = x0_5.widths,
                classes: Int, inputChannels: Int = 3, rng: inout RNG) {
        precondition(repeats.count == 3 && repeats.allSatisfy { $0 >= 1 } && widths.count == 5 && classes >= 1 && inputChannels >= 1,
                     "ShuffleNetV2(repeats: \(repeats), widths: \(widths), classes: \(classes), inputChannels: \(inputChannels))")
        self.architecture = architecture
        self.classes = classes
        self.inputChannels = inputChannels

        let stem = Conv2d(inputChannels: inputChannels, outputChannels: widths[0], kernelSize: 3, stride: 2, padding: 1, bias: false)
        stem.resetParameters(rng: &rng)
        stem.propagatesInputGradient = false
        conv1 = Sequential([stem, BatchNorm2d(features: widths[0]), ReLU()])

        var stages: [Sequential] = []
        var width = widths[0]
        for (n, out) in zip(repeats, widths[1...3]) {
            var units = [ShuffleUnit(inputChannels: width, outputChannels: out, stride: 2, rng: &rng)]
            for _ in 1..<n { units.append(ShuffleUnit(inputChannels: out, outputChannels: out, stride: 1, rng: &rng)) }
            stages.append(Sequential(units))
            width = out
        }
        stage2 = stages[0]
        stage3 = stages[1]
        stage4 = stages[2]

        let last = Conv2d(inputChannels: width, outputChannels: widths[4], kernelSize: 1, bias: false)
        last.resetParameters(rng: &rng)
        conv5 = Sequential([last, BatchNorm2d(features: widths[4]), ReLU()])
        let linear = Linear(inputFeatures: widths[4], outputFeatures: classes)
        linear.resetParameters(rng: &rng)
        fc = linear
    }

    public var children: [Child] {
        [child("conv1", \.conv1), child("maxpool", \.maxpool), child("stage2", \.stage2), child("stage3", \.stage3),
         child("stage4", \.stage4), child("conv5", \.conv5), child("pool", \.pool), child("flatten", \.flatten),
         child("fc", \.fc)]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = conv1.forward(x, mode: mode)
        h = maxpool.forward(h, mode: mode)
        h = stage2.forward(h, mode: mode)
        h = stage3.forward(h, mode: mode)
        h = stage4.forward(h, mode: mode)
        h = conv5.forward(h, mode: mode)
        h = pool.forward(h, mode: mode)
        h = flatten.forward(h, mode: mode)
        return fc.forward(h, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = fc.backward(dy)
        g = flatten.backward(g)
        g = pool.backward(g)
        g = conv5.backward(g)
        g = stage4.backward(g)
        g = stage3.backward(g)
        g = stage2.backward(g)
        g = maxpool.backward(g)
        return conv1.backward(g)
    }
}
