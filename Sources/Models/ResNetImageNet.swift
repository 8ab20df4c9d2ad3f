import NN
import Tensors

extension BasicBlock {
    /// The ImageNet ResNet-18 block (torchvision `BasicBlock`; the authors' copy is
    /// `TinyImageNet/models/resnet_imagenet.py:41-78`): the shortcut is option B when s ≠ 1 or C_in ≠ C_out
    /// (`:193-197`), `downsample` = Sequential(1×1 conv, stride s, no bias; BatchNorm2d); convolution weights
    /// ~ kaiming_normal_ (fan_out, gain √2), drawn conv1, conv2, downsample.0 (`:169-174`).
    /// PyTorch applies one `relu` module twice; here each application is its own layer (each saves its own
    /// output), so the module paths are `relu1` and `relu2`. Neither has state, so the state names are
    /// torchvision's: `conv1.weight`, `bn1.*`, `conv2.weight`, `bn2.*`, `downsample.0.weight`, `downsample.1.*`.
    public static func torchvision(inputChannels: Int, outputChannels: Int, stride: Int, rng: inout RNG) -> BasicBlock {
        let (c1, c2) = convolutions(inputChannels: inputChannels, outputChannels: outputChannels, stride: stride)
        Initialization.kaimingNormalFanOut(c1.weight.value, rng: &rng)
        Initialization.kaimingNormalFanOut(c2.weight.value, rng: &rng)
        var downsample: Layer?
        if stride != 1 || inputChannels != outputChannels {
            let d = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 1,
                           stride: stride, padding: 0, bias: false)
            Initialization.kaimingNormalFanOut(d.weight.value, rng: &rng)
            downsample = Sequential([d, BatchNorm2d(features: outputChannels)])
        }
        return BasicBlock(conv1: c1, conv2: c2, shortcut: downsample, shortcutName: "downsample", shortcutConsumers: ["0"])
    }
}

/// torchvision's ImageNet ResNet-18, the authors' `resnet18_imagenet` (reference §3.3,
/// `TinyImageNet/models/resnet_imagenet.py:130-229, 259-260`):
///
///     conv1 7×7 s2 p3 C_in→64 (no bias) → bn1 → relu           [N, 64, H/2, W/2]     f0
///     maxpool 3×3 s2 p1                                         [N, 64, H/4, W/4]
///     layer1: 2 blocks, 64 ch, stride 1                          [N, 64, H/4, W/4]     f1
///     layer2: 2 blocks, 128 ch, first stride 2                   [N, 128, H/8, W/8]    f2
///     layer3: 2 blocks, 256 ch, first stride 2                   [N, 256, H/16, W/16]  f3
///     layer4: 2 blocks, 512 ch, first stride 2                   [N, 512, H/32, W/32]  f4
///     avgpool (global average) → flatten                         [N, 512]              f5
///     fc 512→classes                                             [N, classes]
///
/// (Sizes rounded up: 64×64 inputs give 32, 16, 16, 8, 4, 2; 224×224 give 112, 56, 56, 28, 14, 7.)
/// Children, in this order: `conv1`, `bn1`, `relu`, `maxpool`, `layer1` … `layer4`, `avgpool`, `flatten`,
/// `fc`; stages are `Sequential`s of `BasicBlock.torchvision` blocks named "0", "1". State names are torchvision's:
/// `conv1.weight`, `bn1.*`, `layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}.*`, `layer{2,3,4}.0.downsample.{0,1}.*`,
/// `fc.{weight,bias}`, with `num_batches_tracked` for every BN, so a torchvision state dict loads strictly.
/// 200 classes: 11,279,112 parameters (1000 classes: torchvision's 11,689,512).
/// Features f0…f5 (`featurePaths`): the stem after its ReLU (before the max-pool), each stage's output and
/// the pooled 512-vector, as in CRD's ImageNet ResNet `forward(is_feat=True)`; the authors' Tiny-ImageNet
/// recipe distils logits only (γ = 0), so these serve the feature-based methods on this model.
/// `stemPaths`: `conv1`, `bn1`, `relu`, `maxpool`.
///
/// Init (`:169-174`): conv weights kaiming_normal_ (fan_out, ReLU gain); BN weight 1, bias 0; fc PyTorch's
/// default U(±1/√512) for weight and bias; no zero-init of the residual BN (`zero_init_residual=False`).
/// The stem conv computes no input gradient.
public final class ResNetImageNet: Model {
    public let architecture = "resnet18"
    public let classes: Int
    public let inputChannels: Int

    public internal(set) var conv1: Layer
    public internal(set) var bn1: Layer
    public internal(set) var relu: Layer = ReLU()
    public internal(set) var maxpool: Layer = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
    /// `layer1` … `layer4`.
    public internal(set) var stages: [Layer]
    public internal(set) var avgpool: Layer = AdaptiveAvgPool2d(outputSize: 1)
    public internal(set) var flatten: Layer = Flatten()
    public internal(set) var fc: Layer

    /// ResNet-18: [2, 2, 2, 2] blocks at these widths, first strides 1, 2, 2, 2.
    public static let stageWidths = [64, 128, 256, 512]
    public static let blocksPerStage = [2, 2, 2, 2]

    public let stemPaths = ["conv1", "bn1", "relu", "maxpool"]
    public let featurePaths = ["relu", "layer1", "layer2", "layer3", "layer4", "flatten"]

    public init(classes: Int, inputChannels: Int = 3, rng: inout RNG) {
        precondition(classes >= 1 && inputChannels >= 1,
                     "ResNetImageNet(classes: \(classes), inputChannels: \(inputChannels))")
        self.classes = classes
        self.inputChannels = inputChannels

        let stem = Conv2d(inputChannels: inputChannels, outputChannels: 64, kernelSize: 7, stride: 2, padding: 3,
                          bias: false)
        stem.propagatesInputGradient = false
        Initialization.kaimingNormalFanOut(stem.weight.value, rng: &rng)
        conv1 = stem
        bn1 = BatchNorm2d(features: 64)

        var stages: [Layer] = []
        var width = 64
        for (s, (planes, n)) in zip(Self.stageWidths, Self.blocksPerStage).enumerated() {
            var blocks: [BasicBlock] = []
            for i in 0..<n {
                blocks.append(.torchvision(inputChannels: width, outputChannels: planes, stride: i == 0 && s > 0 ? 2 : 1, rng: &rng))
                width = planes
            }
            stages.append(Sequential(blocks))
        }
        self.stages = stages

        let linear = Linear(inputFeatures: 512, outputFeatures: classes, bias: true)
        linear.resetParameters(rng: &rng)
        fc = linear
    }

    public var children: [Child] {
        var list = [child("conv1", \.conv1), child("bn1", \.bn1), child("relu", \.relu), child("maxpool", \.maxpool)]
        for s in stages.indices { list.append(Child("layer\(s + 1)", stages[s]) { self.stages[s] = $0 }) }
        return list + [child("avgpool", \.avgpool), child("flatten", \.flatten), child("fc", \.fc)]
    }

    private var sequence: [Layer] { [conv1, bn1, relu, maxpool] + stages + [avgpool, flatten, fc] }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = x
        for l in sequence { h = l.forward(h, mode: mode) }
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        for l in sequence.reversed() { g = l.backward(g) }
        return g
    }
}
