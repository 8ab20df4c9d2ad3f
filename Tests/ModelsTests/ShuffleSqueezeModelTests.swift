import TestSupport
import Testing
import NN
import Tensors
@testable import Models

@Suite("ShuffleNet-V2 and SqueezeNet")
struct ShuffleSqueezeModelTests {
    // Blocks by finite differences (the whole networks are checked against torchvision in
    // ImageNetModelGoldenTests), on plain and blocked inputs.

    @Test(arguments: [Layout.plain, .blocked(8), .blocked(16)])
    func shuffleUnitStride1Gradients(_ layout: Layout) {
        var rng = RNG(seed: 31)
        let unit = ShuffleUnit(inputChannels: 16, outputChannels: 16, stride: 1, rng: &rng)
        #expect((unit.branch1 as? Sequential)?.layers.isEmpty == true)
        let x = randomTensor([2, 16, 5, 5], seed: 32).toLayout(layout)
        #expect(unit.forward(x, mode: .train).shape == [2, 16, 5, 5])
        let failures = smoothCheck.check(unit, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test(arguments: [Layout.plain, .blocked(8)])
    func shuffleUnitStride2Gradients(_ layout: Layout) {
        var rng = RNG(seed: 33)
        let unit = ShuffleUnit(inputChannels: 8, outputChannels: 16, stride: 2, rng: &rng)
        // 10×10 → 5×5: 50 values per BN channel keep train-mode BN's curvature below the probe's threshold.
        let x = randomTensor([2, 8, 10, 10], seed: 34).toLayout(layout)
        #expect(unit.forward(x, mode: .train).shape == [2, 16, 5, 5])
        let failures = smoothCheck.check(unit, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// The stride-1 unit passes its first half through: out[:, 2j] = x[:, j] exactly.
    @Test func shuffleUnitPassesFirstHalfToEvenChannels() {
        var rng = RNG(seed: 35)
        let unit = ShuffleUnit(inputChannels: 16, outputChannels: 16, stride: 1, rng: &rng)
        let x = randomTensor([2, 16, 4, 4], seed: 36)
        let y = unit.forward(x, mode: .eval).toLayout(.plain)
        for n in 0..<2 { for j in 0..<8 { for p in 0..<16 {
            #expect(y[(n * 16 + 2 * j) * 16 + p] == x[(n * 16 + j) * 16 + p])
        } } }
    }

    @Test(arguments: [Layout.plain, .blocked(8)])
    func fireGradients(_ layout: Layout) {
        var rng = RNG(seed: 37)
        let fire = Fire(inputChannels: 8, squeeze: 4, expand1x1: 8, expand3x3: 16, rng: &rng)
        let x = randomTensor([2, 8, 5, 5], seed: 38).toLayout(layout)
        #expect(fire.forward(x, mode: .train).shape == [2, 24, 5, 5])
        let failures = smoothCheck.check(fire, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// Reference §3.3 counts at 200 classes, and torchvision's at 10.
    @Test(arguments: [("shufflenet_v2_x0_5", 200, 546_792), ("squeezenet1_0", 200, 838_024),
                      ("shufflenet_v2_x0_5", 10, 352_042), ("squeezenet1_0", 10, 740_554)])
    func parameterCounts(_ name: String, _ classes: Int, _ expected: Int) throws {
        #expect(try ModelZoo.make(name, classes: classes, seed: 0).parameterCount == expected)
    }

    /// MACs per image traced from the tree against a forward-hook count on torchvision (200 classes).
    @Test(arguments: [("shufflenet_v2_x0_5", 224, 39_657_248), ("shufflenet_v2_x0_5", 64, 3_425_408),
                      ("squeezenet1_0", 224, 749_702_176), ("squeezenet1_0", 64, 50_284_576)])
    func macs(_ name: String, _ size: Int, _ expected: Int) throws {
        #expect(try ModelZoo.macs(name, classes: 200, inputSize: (size, size)) == expected)
    }

    /// Feature shapes at 64×64 and 224×224 (the paths of `featurePaths`), logits [N, classes].
    @Test(arguments: [64, 224])
    func featureShapes(_ size: Int) throws {
        let expected: [String: [[Int]]] = [
            "shufflenet_v2_x0_5": size == 64
                ? [[1, 24, 32, 32], [1, 48, 8, 8], [1, 96, 4, 4], [1, 192, 2, 2], [1, 1024, 2, 2], [1, 1024]]
                : [[1, 24, 112, 112], [1, 48, 28, 28], [1, 96, 14, 14], [1, 192, 7, 7], [1, 1024, 7, 7], [1, 1024]],
            "squeezenet1_0": size == 64
                ? [[1, 96, 29, 29], [1, 256, 14, 14], [1, 512, 7, 7], [1, 512, 3, 3]]
                : [[1, 96, 109, 109], [1, 256, 54, 54], [1, 512, 27, 27], [1, 512, 13, 13]],
        ]
        for (name, shapes) in expected {
            let model = try ModelZoo.make(name, classes: 7, inputChannels: 1, seed: 1)
            let taps = try model.tapFeatures()
            let y = model.forward(randomTensor([1, 1, size, size], seed: 2), mode: .eval)
            #expect(y.shape == [1, 7] && y.array.allSatisfy(\.isFinite), "\(name)")
            #expect(taps.map { $0.output?.shape ?? [] } == shapes, "\(name) at \(size)")
        }
    }

    @Test func smallestInputs() throws {
        let squeeze = try ModelZoo.make("squeezenet1_0", classes: 3, seed: 0)
        #expect(squeeze.forward(randomTensor([1, 3, 29, 29], seed: 3), mode: .eval).shape == [1, 3])
        #expect(try ModelZoo.entry("squeezenet1_0").minimumInputSize == 29)
        #expect(throws: ModelZooError.self) { try ModelZoo.macs("squeezenet1_0", classes: 3, inputSize: (28, 28)) }
        let shuffle = try ModelZoo.make("shufflenet_v2_x0_5", classes: 3, seed: 0)
        #expect(shuffle.forward(randomTensor([1, 3, 1, 1], seed: 4), mode: .eval).shape == [1, 3])
    }

    /// Train mode learns through every parameter; SqueezeNet's dropout acts in training only.
    @Test func trainStepTouchesEveryParameter() throws {
        for name in ["shufflenet_v2_x0_5", "squeezenet1_0"] {
            let model = try ModelZoo.make(name, classes: 5, seed: 9)
            let x = randomTensor([2, 3, 64, 64], seed: 10)
            let y = model.forward(x, mode: .train)
            #expect(y.shape == [2, 5])
            let (_, dy) = CrossEntropyLoss()(y, labels: [1, 3])
            _ = model.backward(dy)
            let silent = model.parameters().filter { !$0.parameter.grad.array.contains { $0 != 0 } }.map(\.name)
            #expect(silent.isEmpty, "\(name): no gradient for \(silent)")
        }
        let squeeze = try ModelZoo.make("squeezenet1_0", classes: 5, seed: 9)
        let x = randomTensor([2, 3, 64, 64], seed: 10)
        let e1 = squeeze.forward(x, mode: .eval).array, e2 = squeeze.forward(x, mode: .eval).array
        #expect(e1 == e2)
        #expect(squeeze.layer(at: "classifier.0") is Dropout)
    }

    /// The module tree: torchvision's names, classifier and input layer paths, stems and features exist.
    @Test func moduleTrees() throws {
        let shuffle = try ModelZoo.make("shufflenet_v2_x0_5", classes: 10, seed: 0)
        #expect(shuffle.children.map(\.name) == ["conv1", "maxpool", "stage2", "stage3", "stage4", "conv5", "pool", "flatten", "fc"])
        #expect(shuffle.layer(at: "stage2.0.branch1.0") is Conv2d && (shuffle.layer(at: "stage2.0.branch1.0") as! Conv2d).groups == 24)
        #expect(shuffle.layer(at: "stage3.7.branch2.3") is Conv2d && shuffle.layer(at: "stage3.8") == nil)
        #expect(shuffle.classifierPath == "fc" && shuffle.inputLayerPath == "conv1.0")
        let squeeze = try ModelZoo.make("squeezenet1_0", classes: 10, seed: 0)
        #expect(squeeze.layer(at: "features.12.expand3x3") is Conv2d && squeeze.layer(at: "features.11") is MaxPool2d)
        #expect(squeeze.classifierPath == "classifier.1" && squeeze.inputLayerPath == "features.0")
        for m in [shuffle, squeeze] {
            #expect(m.featurePaths.allSatisfy { m.layer(at: $0) != nil } && m.stemPaths.allSatisfy { m.layer(at: $0) != nil })
        }
        // A torchvision state dict implies the classes and channels (SqueezeNet's classifier is a 4-D conv weight).
        let state = try ModelZoo.make("squeezenet1_0", classes: 13, inputChannels: 1, seed: 0).stateDict()
        let geometry = try ModelZoo.geometry(of: state, as: "squeezenet1_0")
        #expect(geometry.classes == 13 && geometry.inputChannels == 1)
    }

    /// Initialisation as torchvision: SqueezeNet kaiming_uniform convs (bound √(6/fan_in)), final conv
    /// N(0, 0.01²), zero biases; ShuffleNet PyTorch defaults (bound 1/√fan_in), BN 1/0.
    @Test func initialisation() throws {
        let squeeze = try ModelZoo.make("squeezenet1_0", classes: 200, seed: 3)
        for (name, p) in squeeze.parameters() {
            let v = p.value.array
            if name.hasSuffix("bias") { #expect(v.allSatisfy { $0 == 0 }, "\(name)"); continue }
            if name == "classifier.1.weight" {
                let s = moments(p.value)
                #expect(abs(s.std - 0.01) < 0.0005 && abs(s.mean) < 0.0005, "\(s)")
                continue
            }
            let bound = (6 / Float(p.count / p.shape[0])).squareRoot()
            #expect(v.allSatisfy { abs($0) <= bound } && v.map(abs).max()! > 0.9 * bound, "\(name)")
        }
        let shuffle = try ModelZoo.make("shufflenet_v2_x0_5", classes: 200, seed: 3)
        for (name, p) in shuffle.parameters() {
            let v = p.value.array
            if shuffle.layer(at: String(name.split(separator: ".").dropLast().joined(separator: "."))) is BatchNorm2d {
                #expect(v.allSatisfy { $0 == (name.hasSuffix("weight") ? 1 : 0) }, "\(name)")
                continue
            }
            let fanIn = name.hasPrefix("fc") ? 1024 : p.count / p.shape[0]
            let bound = 1 / Float(fanIn).squareRoot()
            #expect(v.allSatisfy { abs($0) <= bound } && v.map(abs).max()! > 0.8 * bound, "\(name)")
        }
    }
}
