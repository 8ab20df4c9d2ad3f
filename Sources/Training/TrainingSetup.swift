import Distillation
import Foundation
import Models
import NN
import Quantization
import Tensors

/// The objects of one run: the student (FP or quantized), the frozen teacher, the optimizers with their
/// schedules. Built the same way for a fresh run and a resumed one.
///
/// FP (reference train_fp.py): one optimizer (`config.optimizer`) over every parameter, BN included.
/// QAT: the student is the zoo model initialised from an FP checkpoint, then quantized (`style`).
/// - `optimizer: adam` (reference CIFAR train_quant.py §4.2): two Adams — model parameters (conv/linear
///   weights and biases, BN affine) at `lr` with coupled L2 weight decay, quantizer parameters at
///   `quantizerLR` without decay — each with its own schedule.
/// - `optimizer: sgd` (reference Tiny-ImageNet main.py §4.3): one SGD (momentum, `nesterov`) over every
///   parameter, quantizer parameters included, weight decay on all of them.
/// Schedules: per-epoch cosine, or (`warmup-cosine`) the per-iteration warm-up + cosine of §4.3.
/// The objective (`TrainConfig.objective`) is built here; its own trainable modules (FitNet's regressor,
/// VID's regressors, CC's and CRD's embeddings) join the model parameters' group, after the student's, as the
/// authors append them to `model_params` (`utils_distill.py:48-113`): same learning rate, schedule and
/// weight decay.
final class TrainingSetup {
    let config: TrainConfig
    let student: any Model
    let teacher: (any Model)?
    /// γ·CE + α·KL_T + β·L_kd for these networks.
    let objective: LossMix
    /// The objective's trainable modules (state names as the authors'), or nil.
    var auxiliary: Layer? { objective.module }
    /// (optimizer, schedule, state-name prefix)
    let optimizers: [(optimizer: Optimizer, schedule: LRSchedule, name: String)]
    let checkpointMetadata: [String: String]

    /// `inputHeight`, `inputWidth`: the training images' size (sizes the objective's modules);
    /// `trainingLabels`: the training set's labels in dataset order (crd and cktf: memory banks, negatives).
    init(config: TrainConfig, classes: Int, inputChannels: Int, inputHeight: Int = 32, inputWidth: Int = 32,
         iterationsPerEpoch: Int, trainingLabels: [Int32] = []) throws {
        self.config = config
        let student = try ModelZoo.make(config.model, classes: classes, inputChannels: inputChannels, seed: config.seed)
        var meta = [String: String]()
        if !config.randomInit, let from = config.initFrom ?? (config.isQuantized ? config.teacher : nil) {
            let url = try resolveCheckpoint(from)
            let file = try SafetensorsFile.read(url)
            do { try student.load(stateDict: file.tensors, strict: true) } catch {
                throw ConfigError("cannot start \(config.model) from \(url.path): \(error)")
            }
            meta["init_from"] = url.path
        }
        if config.isQuantized {
            let scheme = try QuantizerRegistry.scheme(named: config.quantizer)
            _ = try quantize(model: student, scheme: scheme, bits: config.bits, settings: config.quantizerSettings,
                             style: config.style, fullPrecisionEdges: config.fpEdgeLayers,
                             perLayerActivations: config.perLayerActivationQuantizers)
            meta["style"] = config.style.rawValue
            meta["quantizer"] = config.quantizer
            meta["bits"] = "\(config.bits)"
            // Only variants write these, so released-form checkpoints keep their metadata.
            if config.fpEdgeLayers { meta["fp_edge_layers"] = "true" }
            if config.style == .tinyImageNet {
                meta["activation_quantizers"] = config.perLayerActivationQuantizers ? "per-layer" : "shared"
            }
            if !config.quantizerSettings.isEmpty { meta["quantizer_settings"] = Checkpoint.settingsText(config.quantizerSettings) }
        }
        self.student = student
        if config.isDistilled, let t = config.teacher {
            let url = try resolveCheckpoint(t)
            let teacher = try Checkpoint.loadModel(from: url)
            guard teacher.classes == classes else {
                throw ConfigError("teacher \(url.path) has \(teacher.classes) classes, the dataset \(classes)")
            }
            self.teacher = teacher
            meta["teacher"] = url.path
        } else {
            self.teacher = nil
        }
        checkpointMetadata = meta
        objective = try config.objective(student: student, teacher: teacher, inputHeight: inputHeight, inputWidth: inputWidth,
                                         trainingLabels: trainingLabels)

        let auxiliaryParameters = objective.trainableModule?.parameters() ?? []
        // Quantizer parameters trained like weights (PACT's learned α): model optimizer, own decay, own group
        // after the model group (none in the released schemes, whose groups are unchanged).
        let decayed = decayedQuantizerParameters(of: student)
        let decayedIDs = Set(decayed.map { ObjectIdentifier($0.parameter) })
        let decays = decayed.map(\.weightDecay).reduce(into: [Double]()) { if !$0.contains($1) { $0.append($1) } }
        let decayedGroups = decays.map { wd in
            ParameterGroup(parameters: decayed.filter { $0.weightDecay == wd }.map { ($0.name, $0.parameter) },
                           lr: config.lr, weightDecay: wd)
        }
        let named = student.parameters().filter { !decayedIDs.contains(ObjectIdentifier($0.parameter)) }
        func schedule(_ base: Double) -> LRSchedule {
            switch config.schedule {
            case .cosine: return CosineAnnealingLR(baseLR: base, epochs: config.epochs)
            case .warmupCosine:
                return WarmupCosineLR(peakLR: base, iterationsPerEpoch: iterationsPerEpoch, epochs: config.epochs,
                                      warmupIterations: config.warmupIterations)
            case .constant: return ConstantLR(lr: base)
            }
        }
        if config.isQuantized && config.optimizer == .adam {
            // The reference's split (train_quant.py:231-269): quantizer parameters (EWGS: lW, uW, lA, uA,
            // lA_t, uA_t, output_scale) to their own Adam, everything else (conv / linear weights and
            // biases, BN affine) to the model's.
            let owned = Set(quantizerParameters(of: student).map { ObjectIdentifier($0.parameter) })
            let isQuantizer = { (p: (name: String, parameter: Parameter)) in owned.contains(ObjectIdentifier(p.parameter)) }
            let m = Adam(groups: [ParameterGroup(parameters: named.filter { !isQuantizer($0) } + auxiliaryParameters,
                                                 lr: config.lr, weightDecay: config.weightDecay)] + decayedGroups)
            let q = Adam(groups: [ParameterGroup(parameters: named.filter(isQuantizer), lr: config.quantizerLR, weightDecay: 0)])
            optimizers = [(m, schedule(config.lr), "optimizer_m"), (q, schedule(config.quantizerLR), "optimizer_q")]
        } else {
            let groups = [ParameterGroup(parameters: named + auxiliaryParameters, lr: config.lr, weightDecay: config.weightDecay)] + decayedGroups
            let o: Optimizer = config.optimizer == .adam
                ? Adam(groups: groups)
                : SGD(groups: groups, momentum: config.momentum, nesterov: config.nesterov)
            optimizers = [(o, schedule(config.lr), "optimizer")]
        }
    }

    /// Whether the learning rate changes every iteration (else once per epoch).
    var perIterationSchedule: Bool { config.schedule == .warmupCosine }

    /// Sets each optimizer's learning rate for (`epoch`, `iteration`); returns them (model optimizer first).
    @discardableResult
    func setLearningRates(epoch: Int, iteration: Int = 0) -> [Double] {
        optimizers.map { o in
            let lr = o.schedule.learningRate(epoch: epoch, iteration: iteration)
            o.optimizer.setLearningRate(lr)
            return lr
        }
    }

    func zeroGrad() { for o in optimizers { o.optimizer.zeroGrad() } }
    func step() { for o in optimizers { o.optimizer.step() } }

    /// Reference §2.2.3: one train-mode forward of the first batch initialises every quantizer in order.
    func calibrate(_ firstBatch: Tensor) {
        _ = calibrateQuantizers(model: student, firstBatch: firstBatch)
    }

    func exportOptimizers() -> [String: OptimizerState] {
        Dictionary(uniqueKeysWithValues: optimizers.map { ($0.name, $0.optimizer.exportState()) })
    }

    /// The objective's module state (parameters and buffers by name; empty without modules).
    func exportAuxiliary() -> [(name: String, tensor: Tensor, isInteger: Bool)] {
        auxiliary?.namedTensors().map { ($0.name, $0.tensor.copy(), $0.isInteger) } ?? []
    }

    func restore(model state: [String: Tensor], optimizers states: [String: OptimizerState],
                 auxiliary auxiliaryState: [String: Tensor] = [:]) throws {
        // Quantizers read their calibration from the loaded state (EWGS: a non-empty interval).
        try student.load(stateDict: state, strict: true)
        if let auxiliary {
            do { try auxiliary.load(stateDict: auxiliaryState, strict: true) } catch {
                throw ConfigError("the training state does not fit distill \(config.distill.rawValue)'s modules: \(error)")
            }
        } else if let name = auxiliaryState.keys.sorted().first {
            throw ConfigError("the training state holds '\(name)', which no module of distill \(config.distill.rawValue) has")
        }
        for o in optimizers {
            guard let s = states[o.name] else { throw ConfigError("the training state has no \(o.name)") }
            try o.optimizer.importState(s)
        }
    }
}

/// A run directory means its `best.safetensors` (the reference's teachers are best-on-test checkpoints).
func resolveCheckpoint(_ path: String) throws -> URL {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw ConfigError("checkpoint \(path) does not exist (give a .safetensors file or a run directory)")
    }
    if isDir.boolValue {
        let best = URL(fileURLWithPath: path).appendingPathComponent("best.safetensors")
        guard FileManager.default.fileExists(atPath: best.path) else {
            throw ConfigError("run directory \(path) has no best.safetensors yet")
        }
        return best
    }
    return URL(fileURLWithPath: path)
}
