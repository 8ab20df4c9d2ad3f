import NN
import Tensors

/// The authors' Tiny-ImageNet VGG-11-BN, arch `vgg11_bn` (reference §3.3, `TinyImageNet/models/vgg.py`):
/// the CRD-style VGG without FC stack, cfg 'A' (`:144`), in five groups of `VGGBlock`s (conv 3×3 pad 1
/// with bias → BN → ReLU, `:24-38`):
///
///     block0 (64) → pool0 → block1 (128) → pool1 → block2 (256, 256) → pool2
///       → block3 (512, 512) → block4 (512, 512) → pool4 (global average) → flatten → classifier Linear(512, classes)
///
/// pool0…pool2 are 2×2 max-pools. Unlike the CIFAR VGG (`VGGCIFAR`), pool3 is never applied, whatever the
/// input size: the reference builds `pool3` (`:57`) but its call is commented out (`:97-99`), so 224×224
/// inputs go 224 → 112 → 56 → 28 (block3 and block4 at 28×28) → 1, and 64×64 inputs 64 → 32 → 16 → 8 → 1.
/// The unused `pool3` has no state and is left out of the tree.
/// Children, in forward order: `block0`, `pool0`, `block1`, `pool1`, `block2`, `pool2`, `block3`, `block4`,
/// `pool4`, `flatten`, `classifier`; groups are `Sequential`s of `VGGBlock`s named "0", "1".
/// State names are the reference's: `block{0..4}.{i}.conv2d.{weight,bias}`, `block{0..4}.{i}.bn.*`
/// (with `num_batches_tracked`), `classifier.{weight,bias}`. 200 classes: 9,328,584 parameters.
/// Features f0…f5 (`featurePaths`): each group's output (before its pool), then the pooled 512-vector, as
/// the CIFAR VGG's (reference §3.2). `stemPaths`: `block0`.
///
/// Init (`:128-141`): conv weight N(0, 2/(k²·C_out)), bias 0; BN 1/0; classifier weight N(0, 0.01²),
/// bias 0. The first conv computes no input gradient.
public final class VGGImageNet: Model {
    /// The widths of the convs of each group (`cfg['A']`, `:144`).
    public static let groupWidths = [[64], [128], [256, 256], [512, 512], [512, 512]]
    /// Three 2×2 max-pools need at least 8×8 inputs.
    public static let minimumInputSize = 8

    public let architecture = "vgg11_bn"
    public let classes: Int
    public let inputChannels: Int

    /// `block0` ... `block4`.
    public internal(set) var groups: [Layer]
    /// `pool0` ... `pool2`.
    public internal(set) var pools: [Layer]
    public internal(set) var globalPool: Layer = AdaptiveAvgPool2d(outputSize: 1)
    public internal(set) var flatten: Layer = Flatten()
    public internal(set) var classifier: Layer

    public let stemPaths = ["block0"]
    public let featurePaths = ["block0", "block1", "block2", "block3", "block4", "flatten"]

    public init(classes: Int, inputChannels: Int = 3, rng: inout RNG) {
        precondition(classes >= 1 && inputChannels >= 1,
                     "VGGImageNet(classes: \(classes), inputChannels: \(inputChannels))")
        self.classes = classes
        self.inputChannels = inputChannels

        var width = inputChannels
        var groups: [Layer] = []
        for widths in Self.groupWidths {
            var blocks: [VGGBlock] = []
            for w in widths {
                blocks.append(VGGBlock(inputChannels: width, outputChannels: w,
                                       propagatesInputGradient: !groups.isEmpty || !blocks.isEmpty, rng: &rng))
                width = w
            }
            groups.append(Sequential(blocks))
        }
        self.groups = groups
        pools = (0..<3).map { _ in MaxPool2d(kernelSize: 2, stride: 2, padding: 0) }

        let fc = Linear(inputFeatures: 512, outputFeatures: classes, bias: true)
        Initialization.normal(fc.weight.value, std: 0.01, rng: &rng)
        fc.bias?.value.fill(0)
        classifier = fc
    }

    public var children: [Child] {
        var list: [Child] = []
        for g in groups.indices {
            list.append(Child("block\(g)", groups[g]) { self.groups[g] = $0 })
            if g < pools.count { list.append(Child("pool\(g)", pools[g]) { self.pools[g] = $0 }) }
        }
        return list + [child("pool4", \.globalPool), child("flatten", \.flatten), child("classifier", \.classifier)]
    }

    private var sequence: [Layer] {
        [groups[0], pools[0], groups[1], pools[1], groups[2], pools[2], groups[3], groups[4], globalPool, flatten, classifier]
    }

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
