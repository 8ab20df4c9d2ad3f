import Datasets
import Distillation
import Foundation
import Kernels
import Models
import NN
import Quantization
import Tensors
import Testing
@testable import Training

/// The Table 7 methods (reference §6) as runs: config weights, feature selection, feature shapes, modules in
/// the model optimizer, end-to-end training and resume.
@Suite(.serialized) struct DistillationMethodTests {
    init() { Threads.set(2) }

    static let featureMethods: [DistillationMethod] = [.at, .nst, .sp, .rkd, .fitnet, .cc, .vid]
    /// 64 training and 20 test images, loaded once.
    static let data: (train: Dataset, test: Dataset)? = try? smallFashionMNIST()

    /// A freshly initialised FP teacher checkpoint (weights do not matter to these tests).
    func teacherFile(_ model: String = "resnet20") throws -> URL {
        let dir = temporaryDirectory("kd-teacher")
        let url = dir.appendingPathComponent("teacher.safetensors")
        try Checkpoint.saveModel(ModelZoo.make(model, classes: 10, seed: 3), to: url)
        return url
    }

    func studentConfig(_ method: DistillationMethod, teacher: URL, epochs: Int = 1) throws -> TrainConfig {
        try TrainConfig.resolve([ConfigOverlay([
            "model": .string("resnet20"), "quantizer": .string("ewgs"), "bits": .integer(2), "distill": .string(method.rawValue),
            "teacher": .string(teacher.path), "epochs": .integer(epochs), "batch_size": .integer(16), "train_limit": .integer(32),
            "test_limit": .integer(10), "seed": .integer(4),
        ], source: ConfigSource("test"))])
    }

    /// §5.2's weights by default (γ 1, α 0, β per method; SQAKD γ 0, α 1), overridable, and the run ids of
    /// configs that do not set the new keys are unchanged (no `gamma`/`beta` in their values).
    @Test func weightsFollowTheTable7Scripts() throws {
        let betas: [DistillationMethod: Double] = [.at: 1000, .nst: 50, .sp: 3000, .rkd: 1, .fitnet: 100, .cc: 0.02, .vid: 1]
        let teacher = "runs/t"
        func resolve(_ extra: [String: ConfigValue]) throws -> TrainConfig {
            try TrainConfig.resolve([ConfigOverlay(["quantizer": .string("ewgs"), "bits": .integer(2), "teacher": .string(teacher)]
                .merging(extra) { $1 }, source: ConfigSource("test"))])
        }
        for (m, beta) in betas {
            let w = try resolve(["distill": .string(m.rawValue)]).lossWeights
            #expect(w == (1, 0, beta), "\(m)")
        }
        let sqakd = try resolve(["distill": .string("sqakd")])
        #expect(sqakd.lossWeights == (0, 1, 0))
        #expect(sqakd.values["gamma"] == nil && sqakd.values["beta"] == nil && sqakd.changedValues["alpha"] == nil)
        #expect(try resolve(["distill": .string("kd")]).lossWeights == (1, 1, 0))
        #expect(try resolve(["distill": .string("at"), "beta": .integer(10), "alpha": .double(0.5), "gamma": .double(0.25)]).lossWeights
                == (0.25, 0.5, 10))
        #expect(TrainConfig().lossWeights == (1, 0, 0))
        #expect(Recipe.fpTeacher.defaults(distill: .none) == TrainConfig())
        // Invalid weights are one line naming the key.
        #expect(throws: ConfigError.self) { try resolve(["distill": .string("at"), "beta": .integer(-1)]) }
        do {
            _ = try resolve(["distill": .string("vid"), "gamma": .integer(0), "beta": .integer(0)])
            Issue.record("all-zero weights accepted")
        } catch {
            #expect("\(error)".contains("'distill'") && "\(error)".contains("every loss weight at 0"), "\(error)")
        }
    }

    /// The features each method reads, as the authors' indices into `forward(is_feat=True)` (§6).
    @Test(arguments: ["resnet20", "vgg13"])
    func featureSelection(model: String) throws {
        let student = try ModelZoo.make(model, classes: 10, seed: 1)
        let f = student.featurePaths
        let middle = Array(f[1..<(f.count - 1)])
        let expected: [DistillationMethod: [String]] = [.at: middle, .nst: middle, .vid: middle, .sp: [f[f.count - 2]],
                                                        .rkd: [f.last!], .cc: [f.last!], .fitnet: [f[2]]]
        for (m, paths) in expected {
            var c = TrainConfig()
            c.model = model
            c.distill = m
            let mix = try c.objective(student: student, teacher: student)
            #expect(mix.featurePaths == paths && mix.teacherFeaturePaths == paths, "\(model) \(m)")
        }
        #expect(f == (model == "resnet20" ? ["relu", "layer1", "layer2", "layer3", "flatten"]
                                           : ["layer0", "layer1", "layer2", "layer3", "layer4", "flatten"]))
    }

    /// The taps give the authors' is_feat features on the quantized student: the shapes of §3.1/§3.2
    /// (pre-pool), and the last feature is the spatial mean of the one before (ResNet f4 = pool(f3), VGG
    /// f5 = pool(f4)).
    @Test(arguments: [("resnet20", [[16, 32, 32], [16, 32, 32], [32, 16, 16], [64, 8, 8], [64]]),
                      ("vgg13", [[64, 32, 32], [128, 16, 16], [256, 8, 8], [512, 4, 4], [512, 4, 4], [512]])])
    func quantizedStudentFeatures(model: String, shapes: [[Int]]) throws {
        let m = try ModelZoo.make(model, classes: 10, seed: 1)
        _ = try quantize(model: m, scheme: QuantizerRegistry.scheme(named: "ewgs"), bits: 2, style: .cifar)
        let taps = try m.tapFeatures()
        var rng = RNG(seed: 2)
        let x = Tensor(shape: [2, 3, 32, 32])
        x.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] = rng.normal() } }
        _ = calibrateQuantizers(model: m, firstBatch: x)
        _ = m.forward(x, mode: .train)
        #expect(taps.map { Array($0.output!.shape.dropFirst()) } == shapes)
        #expect(try m.featurePaths.map { try featureShapes(m, [$0], 32, 32, probeItself: false)[$0]! } == shapes)
        let map = taps[taps.count - 2].output!.toLayout(.plain), pooled = taps.last!.output!.toLayout(.plain)
        let c = shapes[shapes.count - 2][0], hw = map.count / (2 * c)
        let mean = (0..<(2 * c)).map { i in map.array[(i * hw)..<((i + 1) * hw)].reduce(0, +) / Float(hw) }
        for (a, b) in zip(pooled.array, mean) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
    }

    /// Each objective's own modules join the model optimizer's group, after the student's parameters, with
    /// its learning rate and weight decay (`utils_distill.py:48-113`); quantizer parameters stay apart.
    @Test(arguments: [DistillationMethod.fitnet, .cc, .vid])
    func modulesTrainInTheModelOptimizer(method: DistillationMethod) throws {
        let teacher = try teacherFile()
        defer { try? FileManager.default.removeItem(at: teacher.deletingLastPathComponent()) }
        let c = try studentConfig(method, teacher: teacher)
        let setup = try TrainingSetup(config: c, classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        let names = try #require(setup.objective.module).parameters().map(\.name)
        let prefix = method == .vid ? "criterion_kd." : "module_list."
        #expect(!names.isEmpty && names.allSatisfy { $0.hasPrefix(prefix) })
        let m = setup.optimizers[0]
        #expect(m.name == "optimizer_m" && m.optimizer.groups[0].weightDecay == c.weightDecay)
        #expect(Array(m.optimizer.groups[0].parameters.map(\.name).suffix(names.count)) == names)
        #expect(!setup.optimizers[1].optimizer.groups[0].parameters.contains { names.contains($0.name) })
    }

    /// `sqakd train --distill METHOD` with a teacher, for every method: a QAT EWGS W2A2 ResNet-20 trains an
    /// epoch with finite losses; the objective's module state is in the training state under the authors'
    /// names, never in the model checkpoint.
    @Test(arguments: [DistillationMethod.kd] + featureMethods)
    func everyMethodTrains(method: DistillationMethod) throws {
        let data = try #require(Self.data)
        let teacher = try teacherFile()
        let dir = temporaryDirectory("kd-\(method.rawValue)")
        defer { for d in [dir, teacher.deletingLastPathComponent()] { try? FileManager.default.removeItem(at: d) } }
        let r = try runTrainer(try studentConfig(method, teacher: teacher), dir, data: data)
        #expect(r.status == "finished" && r.epochs.count == 1 && r.epochs[0].trainLoss.isFinite)
        let model = try SafetensorsKeys(RunDirectory(dir).checkpoint(epoch: 1))
        let state = try SafetensorsKeys(RunDirectory(dir).state(epoch: 1))
        #expect(!model.contains { $0.hasPrefix("module_list") || $0.hasPrefix("criterion_kd") })
        switch method {
        case .fitnet: #expect(state.isSuperset(of: ["module_list.1.conv.weight", "module_list.1.bn.running_var"]))
        case .cc: #expect(state.isSuperset(of: ["module_list.1.linear.weight", "module_list.2.linear.bias"]))
        case .vid: #expect(state.isSuperset(of: ["criterion_kd.0.log_scale", "criterion_kd.2.regressor.4.weight"]))
        default: #expect(!state.contains { $0.hasPrefix("module_list") || $0.hasPrefix("criterion_kd") })
        }
    }

    /// A FitNet run (regressor parameters, BN statistics and their Adam state) interrupted after epoch 1 and
    /// resumed ends bit-identical to an uninterrupted one.
    @Test func fitnetResumeIsBitIdentical() throws {
        let data = try #require(Self.data)
        let teacher = try teacherFile()
        let a = temporaryDirectory("fitnet-straight"), b = temporaryDirectory("fitnet-resumed")
        defer { for d in [a, b, teacher.deletingLastPathComponent()] { try? FileManager.default.removeItem(at: d) } }
        let config = try studentConfig(.fitnet, teacher: teacher, epochs: 2)
        let straight = try runTrainer(config, a, data: data)
        _ = try runTrainer(config, b, data: data, stopAfter: 1)
        let resumed = try runTrainer(config, b, data: data)
        #expect(resumed.epochs.map(\.numbers) == straight.epochs.map(\.numbers))
        for f in ["epoch-0002.safetensors", "epoch-0002.state.safetensors", "best.safetensors"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(f)) == Data(contentsOf: b.appendingPathComponent(f)), "\(f)")
        }
    }
}
