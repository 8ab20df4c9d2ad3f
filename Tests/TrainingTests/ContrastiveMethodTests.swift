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

/// crd and cktf as runs: config, the features and criteria they build, memory banks in the training state,
/// bit-identical resume, and a student that learns.
@Suite(.serialized) struct ContrastiveMethodTests {
    init() { Threads.set(2) }

    static let data: (train: Dataset, test: Dataset)? = try? smallFashionMNIST()

    func teacherFile() throws -> URL {
        let dir = temporaryDirectory("crd-teacher")
        let url = dir.appendingPathComponent("teacher.safetensors")
        try Checkpoint.saveModel(ModelZoo.make("resnet20", classes: 10, seed: 3), to: url)
        return url
    }

    func config(_ method: DistillationMethod, teacher: URL, epochs: Int = 1, extra: [String: ConfigValue] = [:]) throws -> TrainConfig {
        try TrainConfig.resolve([ConfigOverlay([
            "model": .string("resnet20"), "quantizer": .string("ewgs"), "bits": .integer(2), "distill": .string(method.rawValue),
            "teacher": .string(teacher.path), "epochs": .integer(epochs), "batch_size": .integer(16), "train_limit": .integer(32),
            "test_limit": .integer(10), "seed": .integer(4),
        ].merging(extra) { $1 }, source: ConfigSource("test"))])
    }

    /// §5.2: crd β 0.8, K 16384; cktf β 1, θ 0.8, K 4096; `theta` and `nce_k` override, and are errors
    /// (one line naming the key) where they mean nothing or are out of range.
    @Test func weightsAndNegatives() throws {
        let t = URL(fileURLWithPath: "/runs/t")
        let crd = try config(.crd, teacher: t), cktf = try config(.cktf, teacher: t)
        #expect(crd.lossWeights == (1, 0, 0.8) && crd.resolvedNegatives == 16384)
        #expect(cktf.lossWeights == (1, 0, 1) && cktf.resolvedTheta == 0.8 && cktf.resolvedNegatives == 4096)
        #expect(crd.values["theta"] == nil && crd.values["nce_k"] == nil)
        let set = try config(.cktf, teacher: t, extra: ["theta": .double(0.5), "nce_k": .integer(64)])
        #expect(set.resolvedTheta == 0.5 && set.resolvedNegatives == 64)
        for (method, key, value) in [(DistillationMethod.crd, "theta", ConfigValue.double(1)), (.at, "nce_k", .integer(5)),
                                     (.crd, "nce_k", .integer(0)), (.cktf, "theta", .double(-1))] {
            do {
                _ = try config(method, teacher: t, extra: [key: value])
                Issue.record("\(method) \(key)=\(value) accepted")
            } catch {
                #expect("\(error)".contains("'\(key)'"), "\(error)")
            }
        }
    }

    /// crd reads feat[-1]; cktf every feature (f0 pooled, the groups batch-normalised and pooled, feat[-1]
    /// as it is) with criteria criterion_kd.1 … .5 in the authors' order and embedding inputs of 256, 256,
    /// 128, 64, 64 (AvgPool2d(8) on 32×32 inputs); both train their embeddings in the model optimizer.
    @Test func featuresCriteriaAndOptimizer() throws {
        let teacher = try teacherFile()
        defer { try? FileManager.default.removeItem(at: teacher.deletingLastPathComponent()) }
        let labels = (0..<50).map { Int32($0 % 10) }
        let crd = try TrainingSetup(config: config(.crd, teacher: teacher), classes: 10, inputChannels: 3, iterationsPerEpoch: 1,
                                    trainingLabels: labels)
        #expect(crd.objective.featurePaths == ["flatten"] && crd.objective.usesSamples)
        let crdNames = try #require(crd.objective.module).namedTensors().map(\.name)
        #expect(crdNames == ["criterion_kd.embed_s.linear.weight", "criterion_kd.embed_s.linear.bias", "criterion_kd.embed_t.linear.weight",
                             "criterion_kd.embed_t.linear.bias", "criterion_kd.contrast.params", "criterion_kd.contrast.memory_v1",
                             "criterion_kd.contrast.memory_v2"])

        let cktf = try TrainingSetup(config: config(.cktf, teacher: teacher), classes: 10, inputChannels: 3, iterationsPerEpoch: 1,
                                     trainingLabels: labels)
        let mix = cktf.objective
        #expect(mix.featurePaths == ["flatten", "relu", "layer1", "layer2", "layer3"])
        #expect(mix.terms.map(\.weight) == [1, 1, 0.8])
        let module = try #require(mix.module)
        let weights = module.parameters().filter { $0.name.hasSuffix("embed_s.linear.weight") }
        #expect(weights.map(\.name) == [5, 1, 2, 3, 4].map { "criterion_kd.\($0).embed_s.linear.weight" })
        let inputs = Dictionary(uniqueKeysWithValues: weights.map { ($0.name, $0.parameter.shape[1]) })
        #expect((1...5).map { inputs["criterion_kd.\($0).embed_s.linear.weight"]! } == [256, 256, 128, 64, 64])
        let memory = module.buffers().first { $0.name == "criterion_kd.3.contrast.memory_v2" }?.buffer.value
        #expect(memory?.shape == [50, 128])
        #expect(module.buffers().first { $0.name == "criterion_kd.1.contrast.params" }?.buffer.value.array == [4096, 0.1, -1, -1, 0.5])
        for setup in [crd, cktf] {
            let names = setup.objective.module!.parameters().map(\.name)
            #expect(Array(setup.optimizers[0].optimizer.groups[0].parameters.map(\.name).suffix(names.count)) == names)
        }
        #expect(throws: ConfigError.self) {
            _ = try TrainingSetup(config: config(.crd, teacher: teacher), classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        }
    }

    /// A run of each method trains an epoch; its memory banks and Z are in the training state, not in the
    /// model; interrupted after epoch 1 and resumed, it ends bit-identical to an uninterrupted run.
    @Test(arguments: [DistillationMethod.crd, .cktf])
    func resumeIsBitIdentical(method: DistillationMethod) throws {
        let data = try #require(Self.data)
        let teacher = try teacherFile()
        let a = temporaryDirectory("\(method.rawValue)-straight"), b = temporaryDirectory("\(method.rawValue)-resumed")
        defer { for d in [a, b, teacher.deletingLastPathComponent()] { try? FileManager.default.removeItem(at: d) } }
        let c = try config(method, teacher: teacher, epochs: 2, extra: ["nce_k": .integer(48)])
        let straight = try runTrainer(c, a, data: data)
        #expect(straight.status == "finished" && straight.epochs.allSatisfy { $0.trainLoss.isFinite })
        _ = try runTrainer(c, b, data: data, stopAfter: 1)
        let state = try SafetensorsFile.read(RunDirectory(b).state(epoch: 1))
        let prefix = method == .crd ? "criterion_kd." : "criterion_kd.5."
        let params = try #require(state.tensors[prefix + "contrast.params"])
        #expect(params[2] > 0 && params[3] > 0, "Z not set: \(params.array)")
        #expect(state.tensors[prefix + "contrast.memory_v1"]?.shape == [32, 128])
        #expect(try !SafetensorsKeys(RunDirectory(b).checkpoint(epoch: 1)).contains { $0.hasPrefix("criterion_kd") })
        let resumed = try runTrainer(c, b, data: data)
        #expect(resumed.epochs.map(\.numbers) == straight.epochs.map(\.numbers))
        for f in ["epoch-0002.safetensors", "epoch-0002.state.safetensors", "best.safetensors"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(f)) == Data(contentsOf: b.appendingPathComponent(f)), "\(f)")
        }
    }

    /// An EWGS W2A2 ResNet-20 student with the CRD term alone (γ 0) on one generated batch: ten steps lower
    /// it, the memory rows of the batch become unit vectors and Z stays what the first step set.
    @Test func crdLossGoesDown() throws {
        let teacher = try teacherFile()
        defer { try? FileManager.default.removeItem(at: teacher.deletingLastPathComponent()) }
        let c = try config(.crd, teacher: teacher, extra: ["gamma": .integer(0), "nce_k": .integer(256), "lr": .double(1e-2)])
        var rng = RNG(seed: 8)
        let n = 512, batch = 32
        let labels = (0..<n).map { _ in Int32(rng.below(10)) }
        let setup = try TrainingSetup(config: c, classes: 10, inputChannels: 3, iterationsPerEpoch: 1, trainingLabels: labels)
        let x = Tensor(shape: [batch, 3, 32, 32])
        x.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] = rng.normal() } }
        setup.calibrate(x)
        setup.setLearningRates(epoch: 0)
        let step = try TrainingStep(setup: setup, objective: setup.objective)
        let samples = BatchSamples(indices: Array(100..<(100 + batch)), epoch: 0)
        var losses: [Double] = []
        for _ in 0..<10 { losses.append(step(x, labels: Array(labels[100..<(100 + batch)]), samples: samples).loss) }
        #expect(losses.allSatisfy { $0.isFinite })
        #expect(losses.last! < 0.9 * losses.first!, "\(losses)")
        let memory = try #require(setup.objective.module?.buffers().first { $0.name == "criterion_kd.contrast.memory_v1" }?.buffer.value)
        let rows = memory.array
        for i in [100, 131] {
            let norm = (0..<128).map { Double(rows[i * 128 + $0]) }.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }
}
