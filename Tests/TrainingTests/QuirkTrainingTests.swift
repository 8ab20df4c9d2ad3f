import Foundation
import Kernels
import Models
import NN
import Quantization
import Tensors
import Testing
@testable import Training

// The quirk variants wired into training (issue 13): config keys `ewgs_delta_update_every`,
// `ewgs_delta_probe`, `fp_edge_layers`; `pact-learnable`'s α in the model optimizer with its own decay;
// variant checkpoints reload with their settings.

@Suite("Quirk variants in training", .serialized)
struct QuirkTrainingTests {
    init() { Threads.set(2) }

    @Test("config keys: defaults change no run id; invalid combinations are one issue per key")
    func configKeys() throws {
        let base = TrainConfig()
        #expect(base.ewgsDeltaUpdateEvery == 0 && base.ewgsDeltaProbe == .perTensor && !base.fpEdgeLayers)
        #expect(base.changedValues.isEmpty)
        let c = try TrainConfig.decode(ConfigOverlay.assignments(["ewgs_delta_update_every=1", "ewgs_delta_probe=joint",
                                                                  "quantizer=ewgs", "bits=2"]), onto: TrainConfig())
        #expect(c.ewgsDeltaUpdateEvery == 1 && c.ewgsDeltaProbe == .joint && c.issues().isEmpty)
        var bad = TrainConfig()
        bad.quantizer = "pact"
        bad.bits = 4
        bad.ewgsDeltaUpdateEvery = 2
        #expect(bad.issues().map(\.key) == ["ewgs_delta_update_every"])
        bad.ewgsDeltaUpdateEvery = 0
        bad.fpEdgeLayers = true
        #expect(bad.issues().map(\.key) == ["fp_edge_layers"])
        bad.style = .tinyImageNet
        #expect(bad.issues().isEmpty)
        #expect(throws: ConfigError.self) {
            try TrainConfig.decode(ConfigOverlay.assignments(["ewgs_delta_probe=all"]), onto: TrainConfig())
        }
    }

    @Test("pact-learnable: α in a model-optimizer group of its own (lr = model lr, decay λ_α), under both recipes")
    func learnableAlphaGroups() throws {
        for optimizer in [OptimizerKind.sgd, .adam] {
            var c = Recipe.tinyImageNetQAT.defaults()
            c.quantizer = "pact-learnable"
            c.bits = 4
            c.optimizer = optimizer
            c.quantizerSettings = ["alpha_decay": 1e-3]
            let setup = try TrainingSetup(config: c, classes: 10, inputChannels: 3, iterationsPerEpoch: 10)
            let model = setup.optimizers[0].optimizer
            #expect(model.groups.count == 2, "\(optimizer)")
            #expect(model.groups[1].weightDecay == 1e-3 && model.groups[1].parameters.count == 18)
            #expect(model.groups[1].parameters.allSatisfy { $0.name.hasSuffix("input_fake_quant.alpha") })
            #expect(!model.groups[0].parameters.contains { $0.name.hasSuffix(".alpha") })
            setup.setLearningRates(epoch: 0, iteration: 5)
            #expect(model.groups[1].lr == model.groups[0].lr)
            if optimizer == .adam {
                #expect(!setup.optimizers[1].optimizer.groups[0].parameters.contains { $0.name.hasSuffix(".alpha") })
            }
        }
        // The released schemes keep one group.
        var r = Recipe.tinyImageNetQAT.defaults()
        r.quantizer = "pact"
        r.bits = 4
        #expect(try TrainingSetup(config: r, classes: 10, inputChannels: 3, iterationsPerEpoch: 10).optimizers[0].optimizer.groups.count == 1)
    }

    /// Hutchinson capped at 3 samples per tensor to keep the test short (the authors' 50 is the default).
    @Test("ewgs_delta_update_every = 1: δ set before epoch 2 and logged per layer")
    func ewgsDeltaInTraining() throws {
        let dir = temporaryDirectory("ewgs-delta")
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = Recipe.cifarQAT.defaults()
        c.dataset = "fashion-mnist"
        c.quantizer = "ewgs"
        c.bits = 2
        c.epochs = 2
        c.batchSize = 8
        c.trainLimit = 16
        c.testLimit = 16
        c.seed = 3
        c.ewgsDeltaUpdateEvery = 1
        c.ewgsDeltaProbe = .joint
        let trainer = quietTrainer(c, dir)
        trainer.ewgsDeltaMaxIterations = 3
        let record = try trainer.train()
        #expect(record.status == "finished")
        let log = try String(contentsOf: dir.appendingPathComponent("log.txt"), encoding: .utf8)
        #expect(log.contains("ewgs delta update before epoch 2 (2 batches, joint,"))
        #expect(!log.contains("before epoch 1 "))
        let lines = log.split(separator: "\n").filter { $0.contains("delta_w") }
        #expect(lines.count == 18)
        // 2 batches × at most 3 samples per tensor.
        let samples = lines.compactMap { l in l.components(separatedBy: "samples_w ").last?.split(separator: " ").first.flatMap { Int($0) } }
        #expect(samples.count == 18 && samples.allSatisfy { (4...6).contains($0) }, "\(samples)")
        let model = try Checkpoint.loadModel(from: RunDirectory(dir).checkpoint(epoch: 2))
        let deltas = quantizedLayers(in: model).map { ($0.layer.weightQuantizer as! EWGSQuantizer).delta }
        #expect(deltas.count == 18 && deltas.allSatisfy { $0 >= 0 } && deltas.contains { $0 > 0 })
    }

    @Test("dorefa W4A4 tiny-imagenet with unsigned grids and FP edges trains one epoch; its checkpoint reloads with the variant")
    func variantCheckpointReloads() throws {
        let dir = temporaryDirectory("quirk-variant")
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = Recipe.tinyImageNetQAT.defaults()
        c.dataset = "fashion-mnist"
        c.quantizer = "dorefa"
        c.bits = 4
        c.epochs = 1
        c.batchSize = 32
        c.trainLimit = 64
        c.testLimit = 32
        c.warmupIterations = 0
        c.quantizerSettings = ["unsigned_activations": 1]
        c.fpEdgeLayers = true
        let record = try quietTrainer(c, dir).train()
        #expect(record.status == "finished")
        let model = try Checkpoint.loadModel(from: dir.appendingPathComponent("best.safetensors"))
        // 18 quantized convs; the blocks' inputs are read through 9 shared quantizers (the blocks' conv1 have none).
        let layers = quantizedLayers(in: model)
        #expect(layers.filter { !($0.layer is QuantizedActivation) }.count == 18 && model.layer(at: "conv1") is Conv2d)
        let readers = layers.filter { $0.layer.inputQuantizer != nil }
        #expect(readers.count == 18 && readers.allSatisfy { ($0.layer.inputQuantizer as? DoReFaQuantizer)?.signed?.value[0] == 0 })
    }
}
