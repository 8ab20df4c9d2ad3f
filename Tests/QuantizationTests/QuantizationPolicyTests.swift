import TestSupport
import Models
import NN
import Quantization
import Tensors
import Testing

/// `quantize(model:scheme:bits:policy:)` picks layers by path from the module tree.
@Suite struct QuantizationPolicyTests {
    func weightLayers(_ model: any Model) -> [String] {
        model.modules().filter { $0.layer is Conv2d || $0.layer is Linear }.map(\.path)
    }

    /// CIFAR: every conv outside the stem, in forward order; Tiny-ImageNet: every conv and linear, the first
    /// and last at 32 bits (an MQBench scheme) or left FP (EWGS). On the CIFAR zoo models (stem and
    /// classifier names assumed here; SqueezeNet's MQBench edge differs, §2.3.1).
    @Test(arguments: ["resnet20", "resnet32", "vgg8", "vgg11", "vgg13"])
    func policySelections(name: String) throws {
        let fp = try ModelZoo.make(name, classes: 10, seed: 1)
        let all = weightLayers(fp)
        let stem: [String]
        switch name {
        case "resnet20", "resnet32", "resnet18": stem = ["conv1"]
        case "mobilenetv2": stem = ["features.0.0"]
        case "vgg11_bn": stem = all.filter { $0.hasPrefix("block0.") }
        default: stem = all.filter { $0.hasPrefix("layer0.") }
        }
        #expect(!stem.isEmpty)
        let inner = all.filter { !stem.contains($0) && $0 != all.last }
        let classifiers = ["resnet20": "linear", "resnet32": "linear", "resnet18": "fc", "mobilenetv2": "classifier.1"]
        #expect(all.last == classifiers[name, default: "classifier"])

        let cifar = try ModelZoo.make(name, classes: 10, seed: 1)
        #expect(try quantize(model: cifar, scheme: EWGSScheme(), bits: 2, policy: .cifar) == inner)
        #expect(quantizedLayers(in: cifar).map(\.name) == inner)

        let tiny = try ModelZoo.make(name, classes: 10, seed: 1)
        #expect(try quantize(model: tiny, scheme: LSQScheme(), bits: 4, style: .tinyImageNet) == all)
        // (Residual blocks also hold their input's shared activation quantizer, which has no weight.)
        #expect(quantizedLayers(in: tiny).filter { !($0.layer is QuantizedActivation) }.map { $0.layer.weightQuantizer?.bits }
                == all.map { $0 == all.first || $0 == all.last ? 32 : 4 })

        let ewgs = try ModelZoo.make(name, classes: 10, seed: 1)
        #expect(try quantize(model: ewgs, scheme: EWGSScheme(), bits: 2, policy: .tinyImageNet) == Array(all.dropFirst().dropLast()))
    }

    /// A policy is a function of (path, layer): here only layer3's convs.
    @Test func customPolicy() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 1)
        let policy = QuantizationPolicy { path, layer, context in
            layer is Conv2d && context.path(path, isUnder: "layer3") ? .quantized : .full
        }
        let names = try quantize(model: model, scheme: PACTScheme(), bits: 3, policy: policy)
        #expect(names == (0..<3).flatMap { ["layer3.\($0).conv1", "layer3.\($0).conv2"] })
        #expect(QuantizationStyle(rawValue: "tiny-imagenet") == .tinyImageNet && QuantizationStyle.cifar.rawValue == "cifar")
    }

    /// Taps and quantization compose: a tapped conv is quantized inside its tap, names and state keys are
    /// those of the untapped model, and the tap still sees the (quantized) layer's output.
    @Test func quantizeThroughTaps() throws {
        let plain = try ModelZoo.make("resnet20", classes: 10, seed: 1)
        let tapped = try ModelZoo.make("resnet20", classes: 10, seed: 1)
        let tap = try tapped.tap(["layer2.0.conv1"])[0]
        let a = try quantize(model: plain, scheme: EWGSScheme(), bits: 2)
        let b = try quantize(model: tapped, scheme: EWGSScheme(), bits: 2)
        #expect(a == b)
        #expect(tap.wrapped is QConv2d && tapped.layer(at: "layer2.0.conv1") === tap)
        #expect(plain.namedTensors().map(\.name) == tapped.namedTensors().map(\.name))
        let x = randomTensor([2, 3, 8, 8], seed: 2)
        #expect(calibrateQuantizers(model: plain, firstBatch: x).array == calibrateQuantizers(model: tapped, firstBatch: x).array)
        #expect(tap.output?.shape == [2, 32, 4, 4])
    }
}
