import Datasets
import Foundation
import Kernels
import Testing
@testable import Training

/// Fashion-MNIST subsets shared by the QAT / SQAKD tests: 256 training and 100 test images.
func smallFashionMNIST() throws -> (train: Dataset, test: Dataset) {
    let kind = try DatasetKind(id: "fashion-mnist")
    return (try kind.load(split: .train).limited(.first(256)), try kind.load(split: .test).limited(.first(100)))
}

/// The same images with other labels.
func relabeled(_ d: Dataset, _ labels: [Int32]) -> Dataset {
    Dataset(name: d.name, channels: d.channels, height: d.height, width: d.width, images: d.images, labels: labels,
            classCount: d.classCount, normalization: d.normalization)
}

func runTrainer(_ config: TrainConfig, _ dir: URL, data: (train: Dataset, test: Dataset), stopAfter: Int? = nil) throws -> RunRecord {
    let t = Trainer(config: config, runDirectory: dir)
    t.progress.quiet = true
    t.datasets = data
    t.stopAfterEpochs = stopAfter
    return try t.train()
}

@Suite(.serialized) struct DistillationTests {
    init() { Threads.set(2) }

    /// A 1-epoch FP ResNet-20 teacher on the small subset; returns its run directory.
    func teacher(_ data: (train: Dataset, test: Dataset)) throws -> URL {
        var c = TrainConfig()
        c.model = "resnet20"
        c.epochs = 1
        c.batchSize = 64
        c.seed = 5
        let dir = temporaryDirectory("teacher")
        _ = try runTrainer(c, dir, data: data)
        return dir
    }

    func studentConfig(teacher: URL, distill: Bool, epochs: Int = 1) -> TrainConfig {
        var c = Recipe.cifarQAT.defaults()
        c.model = "resnet20"
        c.quantizer = "ewgs"
        c.bits = 2
        c.epochs = epochs
        c.batchSize = 64
        c.seed = 9
        c.teacher = teacher.path
        c.distill = distill ? .sqakd : .none
        return c
    }

    /// SQAKD uses no label: the same images with every training label replaced give bit-identical weights
    /// and records. The QAT baseline (cross-entropy) does depend on them.
    @Test func sqakdIsLabelBlind() throws {
        let data = try smallFashionMNIST()
        let teacherDir = try teacher(data)
        let zeros = relabeled(data.train, Array(repeating: 0, count: data.train.count))
        let dirs = (0..<4).map { temporaryDirectory("blind-\($0)") }
        defer { for d in dirs + [teacherDir] { try? FileManager.default.removeItem(at: d) } }

        let kd = studentConfig(teacher: teacherDir, distill: true)
        let a = try runTrainer(kd, dirs[0], data: data)
        let b = try runTrainer(kd, dirs[1], data: (zeros, data.test))
        #expect(a.epochs.map(\.numbers) == b.epochs.map(\.numbers))
        #expect(try lastModel(dirs[0])
                == lastModel(dirs[1]))

        let ce = studentConfig(teacher: teacherDir, distill: false)
        let c = try runTrainer(ce, dirs[2], data: data)
        let d = try runTrainer(ce, dirs[3], data: (zeros, data.test))
        #expect(c.epochs.map(\.numbers) != d.epochs.map(\.numbers))
        #expect(try lastModel(dirs[2])
                != lastModel(dirs[3]))
    }

    /// A QAT+SQAKD run interrupted after epoch 1 and resumed ends bit-identical to an uninterrupted one
    /// (quantizer parameters, both Adams and their schedules restored).
    @Test func sqakdResumeIsBitIdentical() throws {
        let data = try smallFashionMNIST()
        let teacherDir = try teacher(data)
        let a = temporaryDirectory("kd-straight"), b = temporaryDirectory("kd-resumed")
        defer { for d in [a, b, teacherDir] { try? FileManager.default.removeItem(at: d) } }
        let config = studentConfig(teacher: teacherDir, distill: true, epochs: 2)
        let straight = try runTrainer(config, a, data: data)
        let partial = try runTrainer(config, b, data: data, stopAfter: 1)
        #expect(partial.epochs.count == 1)
        let resumed = try runTrainer(config, b, data: data)
        #expect(resumed.epochs.map(\.numbers) == straight.epochs.map(\.numbers))
        #expect(try lastModel(a) == lastModel(b))
        // The quantized checkpoint carries every quantizer parameter under the reference's QConv names.
        let keys = try SafetensorsKeys(#require(RunDirectory(b).committedCheckpoint()))
        for k in ["layer1.0.conv1.uW", "layer1.0.conv1.lA", "layer3.2.conv2.output_scale", "layer1.0.conv1.weight"] {
            #expect(keys.contains(k), "missing \(k)")
        }
    }

    @Test func distillationNeedsATeacher() {
        var c = Recipe.cifarQAT.defaults()
        c.quantizer = "ewgs"
        c.bits = 2
        c.distill = .sqakd
        #expect(throws: ConfigError.self) { try c.validate() }
    }
}

import NN
import Tensors

func SafetensorsKeys(_ url: URL) throws -> Set<String> { Set(try SafetensorsFile.read(url).tensors.keys) }

/// The reference's two QAT recipes (§4.2 CIFAR, §4.3 Tiny-ImageNet) as the trainer builds them.
@Suite struct RecipeTests {
    @Test func cifarRecipeHasTwoAdams() throws {
        var c = Recipe.cifarQAT.defaults()
        c.quantizer = "ewgs"
        c.bits = 2
        let setup = try TrainingSetup(config: c, classes: 10, inputChannels: 3, iterationsPerEpoch: 10)
        #expect(setup.optimizers.map(\.name) == ["optimizer_m", "optimizer_q"])
        let q = setup.optimizers[1].optimizer.groups[0]
        #expect(q.weightDecay == 0 && q.lr == c.quantizerLR)
        #expect(q.parameters.count == 18 * 7)  // lW, uW, lA, uA, lA_t, uA_t, output_scale per QConv
        #expect(q.parameters.allSatisfy { !$0.name.hasSuffix(".weight") && !$0.name.hasSuffix(".bias") })
        #expect(!setup.perIterationSchedule)
    }

    @Test func tinyImageNetRecipeIsOneSGDWithWarmup() throws {
        var c = TrainConfig()
        c.quantizer = "lsq"
        c.bits = 4
        c.style = .tinyImageNet
        c.optimizer = .sgd
        c.nesterov = true
        c.lr = 0.004
        c.weightDecay = 1e-4
        c.schedule = .warmupCosine
        c.warmupIterations = 20
        c.epochs = 3
        try c.validate()
        let setup = try TrainingSetup(config: c, classes: 10, inputChannels: 3, iterationsPerEpoch: 10)
        #expect(setup.optimizers.count == 1)
        let group = setup.optimizers[0].optimizer.groups[0]
        #expect(group.weightDecay == 1e-4)
        #expect(group.parameters.contains { $0.name == "conv1.weight_fake_quant.scale" })
        #expect(setup.perIterationSchedule)
        let reference = WarmupCosineLR(peakLR: 0.004, iterationsPerEpoch: 10, epochs: 3, warmupIterations: 20)
        #expect(setup.setLearningRates(epoch: 1, iteration: 3) == [reference.learningRate(globalIteration: 13)])
        #expect(setup.setLearningRates(epoch: 2, iteration: 5) == [reference.learningRate(globalIteration: 25)])
    }
}
