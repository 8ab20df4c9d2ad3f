import Foundation
import Testing
import NN
import Tensors
@testable import Models

/// The folder of this suite's golden files.
let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

/// Reads `Golden/<name>`. The key lists come from
/// `/usr/bin/python3 scripts/reference_models.py keys Tests/ModelsTests/Golden`.
func goldenText(_ name: String) throws -> String {
    try String(contentsOf: goldenDirectory.appendingPathComponent(name), encoding: .utf8)
}

@Suite("Model zoo")
struct ModelZooTests {
    /// Reference counts: `resnet20_fp` comment (269,850) and PyTorch's `sum(p.numel())` over the
    /// reference definitions (scripts/reference_models.py); the Tiny-ImageNet models at 200 classes:
    /// torchvision's ResNet-18 and MobileNetV2 and the authors' VGG-11-BN (reference §3.3, issue 10).
    @Test(arguments: [("resnet20", 10, 269_850), ("resnet32", 100, 470_132), ("vgg8", 10, 3_918_858),
                      ("vgg13", 100, 9_462_180), ("resnet18", 200, 11_279_112), ("mobilenetv2", 200, 2_480_072),
                      ("vgg11_bn", 200, 9_328_584)])
    func parameterCounts(name: String, classes: Int, expected: Int) throws {
        let model = try ModelZoo.make(name, classes: classes, seed: 1)
        #expect(model.parameterCount == expected)
        #expect(model.architecture == name)
        #expect(model.classes == classes)
    }

    /// Names, shapes and order of parameters then buffers equal PyTorch's `named_parameters()` then
    /// `named_buffers()` of the reference architecture. `num_batches_tracked` is 0-d in PyTorch; the
    /// engine may store it as [] or [1] (`load(stateDict:)` accepts either), so both read as "scalar".
    @Test(arguments: [("resnet20", 10), ("resnet32", 100), ("vgg8", 10), ("vgg13", 100)])
    func stateDictKeysMatchPyTorch(name: String, classes: Int) throws {
        let file = "\(name)_\(classes)_keys.txt"
        func normalised(_ line: String) -> String {
            line.contains("num_batches_tracked") ? line.replacingOccurrences(of: "\t[1]\t", with: "\t[]\t") : line
        }
        let expected = try goldenText(file).split(separator: "\n").map { normalised(String($0)) }
        let model = try ModelZoo.make(name, classes: classes, seed: 1)
        let actual = model.namedTensors().map { entry -> String in
            let kind = model.parameters().contains { $0.name == entry.name } ? "param" : "buffer"
            return normalised("\(entry.name)\t\(entry.tensor.shape)\t\(kind)")
        }
        #expect(actual.count == expected.count, "regenerate with: /usr/bin/python3 scripts/reference_models.py keys Tests/ModelsTests/Golden")
        for (a, e) in zip(actual, expected) where a != e {
            Issue.record("\(file): got '\(a)', PyTorch has '\(e)'")
            break
        }
        let integers = model.namedTensors().filter(\.isInteger).map(\.name)
        #expect(integers.allSatisfy { $0.hasSuffix("num_batches_tracked") })
        #expect(integers.count == model.buffers().count / 3)
    }

    /// PyTorch forward hooks over the reference definitions (conv: numel(out)·C_in/g·K²; linear: in·out).
    @Test(arguments: [("resnet20", 10, 32, 40_551_040), ("resnet32", 100, 32, 68_868_352),
                      ("vgg8", 10, 32, 96_146_432), ("vgg11", 10, 32, 209_392_640),
                      ("vgg13", 100, 32, 284_936_192), ("vgg11", 200, 64, 611_160_064),
                      ("resnet18", 200, 224, 1_813_663_744), ("mobilenetv2", 200, 64, 24_704_512),
                      ("vgg11_bn", 200, 64, 837_652_480)])
    func macs(name: String, classes: Int, size: Int, expected: Int) throws {
        #expect(try ModelZoo.macs(name, classes: classes, inputSize: (size, size)) == expected)
        let model = try ModelZoo.make(name, classes: classes, seed: 1)
        #expect(model.macs(inputHeight: size, inputWidth: size) == expected)
    }

    @Test func resnet20MacsAre40_55M() throws {
        let macs = try ModelZoo.macs("resnet20", classes: 10, inputSize: (32, 32))
        #expect((Double(macs) / 1e6 * 100).rounded() / 100 == 40.55)
    }

    @Test func unknownNameListsValidNames() {
        #expect(throws: ModelZooError.unknownModel("resnet50", valid: ModelZoo.names)) {
            try ModelZoo.make("resnet50", classes: 10, seed: 0)
        }
        let message = ModelZooError.unknownModel("x", valid: ModelZoo.names).description
        for name in ModelZoo.names { #expect(message.contains(name)) }
        #expect(throws: ModelZooError.self) { try ModelZoo.macs("nope", classes: 10, inputSize: (32, 32)) }
    }

    @Test func invalidArgumentsThrow() {
        #expect(throws: ModelZooError.self) { try ModelZoo.make("resnet20", classes: 0, seed: 0) }
        #expect(throws: ModelZooError.self) { try ModelZoo.make("vgg8", classes: 10, inputChannels: 0, seed: 0) }
        #expect(throws: ModelZooError.self) { try ModelZoo.macs("vgg8", classes: 10, inputSize: (4, 4)) }
        #expect(throws: ModelZooError.self) { try ModelZoo.macs("resnet20", classes: 10, inputSize: (0, 32)) }
        for name in ModelZoo.names { #expect((try? ModelZoo.summary(name)) != nil) }
    }

    @Test func sameSeedSameWeightsOtherSeedDifferent() throws {
        let a = try ModelZoo.make("resnet20", classes: 10, seed: 3).namedTensors()
        let b = try ModelZoo.make("resnet20", classes: 10, seed: 3).namedTensors()
        let c = try ModelZoo.make("resnet20", classes: 10, seed: 4).namedTensors()
        #expect(zip(a, b).allSatisfy { $0.tensor.array == $1.tensor.array })
        #expect(a[0].tensor.array != c[0].tensor.array)
    }

    @Test func inputChannelsConfigurable() throws {
        let r = try ModelZoo.make("resnet20", classes: 10, inputChannels: 1, seed: 0)
        #expect(r.parameters()[0].parameter.shape == [16, 1, 3, 3])
        let v = try ModelZoo.make("vgg8", classes: 10, inputChannels: 1, seed: 0)
        #expect(v.parameters()[0].parameter.shape == [64, 1, 3, 3])
        #expect(r.inputChannels == 1 && v.inputChannels == 1)
    }
}

/// Sample standard deviation and mean of a tensor's entries.
func moments(_ t: Tensor) -> (mean: Double, std: Double) {
    let v = t.array.map(Double.init)
    let mean = v.reduce(0, +) / Double(v.count)
    let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)
    return (mean, variance.squareRoot())
}

@Suite("Model initialisation")
struct ModelInitTests {
    @Test func resnetInit() throws {
        let model = try ModelZoo.make("resnet32", classes: 100, seed: 11)
        for (name, p) in model.parameters() {
            let t = p.value
            if t.shape.count == 4 || name == "linear.weight" {
                let fanIn = t.shape.dropFirst().reduce(1, *)
                let m = moments(t)
                let std = (2 / Double(fanIn)).squareRoot()
                #expect(abs(m.std / std - 1) < 0.1, "\(name): std \(m.std), expected \(std)")
                #expect(abs(m.mean) < 4 * std / Double(t.count).squareRoot() + 1e-3, "\(name): mean \(m.mean)")
            } else if name == "linear.bias" {
                #expect(t.array.allSatisfy { abs($0) <= 1 / Float(64).squareRoot() })
                #expect(Set(t.array).count == t.count)
            } else if name.hasSuffix("weight") {
                #expect(t.array.allSatisfy { $0 == 1 }, "\(name)")
            } else {
                #expect(t.array.allSatisfy { $0 == 0 }, "\(name)")
            }
        }
    }

    @Test func vggInit() throws {
        let model = try ModelZoo.make("vgg13", classes: 100, seed: 12)
        for (name, p) in model.parameters() {
            let t = p.value
            if t.shape.count == 4 {
                let std = (2 / Double(9 * t.shape[0])).squareRoot()
                #expect(abs(moments(t).std / std - 1) < 0.1, "\(name)")
            } else if name == "classifier.weight" {
                #expect(abs(moments(t).std / 0.01 - 1) < 0.05)
            } else if name.hasSuffix("bn.weight") {
                #expect(t.array.allSatisfy { $0 == 1 }, "\(name)")
            } else {
                #expect(t.array.allSatisfy { $0 == 0 }, "\(name)")
            }
        }
        let buffers = Dictionary(uniqueKeysWithValues: model.buffers().map { ($0.name, $0.buffer.value) })
        #expect(buffers["layer0.0.bn.running_var"]!.array.allSatisfy { $0 == 1 })
        #expect(buffers["layer0.0.bn.running_mean"]!.array.allSatisfy { $0 == 0 })
    }
}
