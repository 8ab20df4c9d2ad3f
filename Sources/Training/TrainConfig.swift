import Datasets
import Foundation
import Models
import Quantization

/// Everything that determines a training run's numbers. Two runs with equal configs and thread counts
/// give bit-identical records.
///
/// Each setting is declared once, here, with its default and a comment. Its on-disk and command-line key
/// is its name in snake_case (`quantizerLR` → `quantizer_lr`), derived from the property (`ConfigSchema`);
/// suites, JSON/YAML config files, `config.json`, `record.json` and `--set key=value` all use that key.
/// Adding a setting = one property here (plus a line in `issues()` when some values are invalid).
///
/// The defaults are the reference's CIFAR FP teacher (reference-implementation.md §4.1): SGD, lr 0.1,
/// momentum 0.9, weight decay 1e-4, cosine annealing stepped per epoch, cross-entropy without smoothing,
/// test batch 100. The reference trains 400 epochs at batch 256; our default epoch count is short because a
/// 2-core CPU trains ~3 epochs of CIFAR an hour. Quantized runs start from another recipe (`Recipe`).
///
/// The synthesized `Codable` (camelCase) is internal plumbing of the decoder; files go through
/// `ConfigOverlay` / `TrainConfig.resolve` and `storedJSON()`.
public struct TrainConfig: Codable, Equatable, Sendable {
    /// Dataset id: cifar10, cifar100, fashion-mnist (3×32×32 CIFAR-style), fashion-mnist-1ch (1×28×28).
    public var dataset: String = "fashion-mnist"
    /// Model id from the zoo (`sqakd models`).
    public var model: String = "resnet20"
    public var epochs: Int = 4
    /// Training batch size.
    public var batchSize: Int = 128
    /// Evaluation batch (reference: 100). Only speed depends on it.
    public var evalBatchSize: Int = 100
    /// QAT: `adam` = the CIFAR recipe (two Adams: model, quantizer), `sgd` = the Tiny-ImageNet one (one SGD
    /// over everything). FP: the one optimizer.
    public var optimizer: OptimizerKind = .sgd
    /// Peak learning rate of the model parameters.
    public var lr: Double = 0.1
    /// SGD momentum.
    public var momentum: Double = 0.9
    /// Nesterov momentum (SGD).
    public var nesterov: Bool = false
    /// Coupled L2 weight decay of the model parameters.
    public var weightDecay: Double = 1e-4
    /// Learning-rate schedule (see `ScheduleKind`).
    public var schedule: ScheduleKind = .cosine
    /// Linear warm-up iterations of `warmup-cosine`.
    public var warmupIterations: Int = 2500
    /// Label smoothing ε of the cross-entropy (target (1−ε)·onehot + ε/C).
    public var labelSmoothing: Double = 0
    /// Reference train augmentation (CIFAR-style: random crop 32 with 4 px zero padding, horizontal flip;
    /// tiny-imagenet: random-resized crop + flip). Off: the evaluation transform.
    public var augment: Bool = true
    /// Training and evaluation resolution S (square); absent = the dataset's (`DatasetKind.defaultImageSize`:
    /// 224 for tiny-imagenet as the paper, whose val pipeline resizes to ⌊S·256/224⌋ and centre-crops S).
    /// Only tiny-imagenet resizes; the other datasets accept only their stored size.
    public var imageSize: Int?
    public var seed: UInt64 = 0
    /// Use only the first N training images (0 = all). For smoke runs and tests.
    public var trainLimit: Int = 0
    /// Use only the first N test images (0 = all).
    public var testLimit: Int = 0
    /// Also evaluate the whole training set (the images trained on, un-augmented, eval mode) after every
    /// epoch, as the reference's logs do (train_quant.py); off by default: it costs a forward pass over it.
    public var evalTrainSet: Bool = false

    // Quantization-aware training (reference §4.2). `fp` trains a full-precision model.
    /// Quantizer scheme from `sqakd quantizer list`.
    public var quantizer: String = "fp"
    /// Weight and activation bit-width (W = A), ignored for `fp`.
    public var bits: Int = 32
    /// Which layers are quantized (see `QuantizationStyle`).
    public var style: QuantizationStyle = .cifar
    /// Per-scheme settings over the scheme's defaults (`--set quantizer_settings.delta=0` for EWGS's δ).
    public var quantizerSettings: [String: Double] = [:]
    /// Learning rate of the quantizer parameters' own Adam (reference lr_q; no weight decay).
    public var quantizerLR: Double = 1e-5
    /// `ewgs` only: set δ from the Hessian trace (the EWGS paper's δ, `EWGSDeltaEstimator`) before epochs
    /// N, 2N, … (upstream EWGS N = 10). 0 = never: δ stays `quantizer_settings.delta` (0), as the released
    /// SQAKD code trains (reference §2.2.5). The values go to the run's log.
    public var ewgsDeltaUpdateEvery: Int = 0
    /// How the δ estimator draws Hutchinson samples: `per-tensor` (the authors' loop, one chain per Q) or
    /// `joint` (all Q at once: same expectation, more variance, 1/#tensors of the cost; `HutchinsonTrace`).
    public var ewgsDeltaProbe: HutchinsonTrace.Mode = .perTensor
    /// `style: tiny-imagenet` only: leave the first and last conv/linear layer (weights and inputs) in full
    /// precision instead of the "32-bit" form of the same quantizer (MQBench still fake-quantizes them, and
    /// DoReFa applies tanh to the input image; reference §8.10).
    public var fpEdgeLayers: Bool = false
    /// `style: tiny-imagenet` only: one activation fake-quantizer on each conv/linear input, the identity
    /// branches of residual adds reading the unquantized tensor (this project's form before MQBench's graph
    /// was matched), instead of MQBench's one quantizer per tensor, shared by every reader of the tensor,
    /// identity branches included (`shareActivationQuantizers`, reference §2.3.1).
    public var perLayerActivationQuantizers: Bool = false
    /// FP checkpoint (safetensors file or run directory) the student starts from; defaults to the teacher.
    public var initFrom: String?
    /// Quantized runs only: start from the model's random initialisation instead of `init_from` / the teacher's
    /// weights (the authors' Tiny-ImageNet VGG-11 W3A3 SQAKD row, run "withoutPretrain", reference §5.3).
    public var randomInit: Bool = false
    /// How the student learns from the teacher (see `DistillationMethod`).
    public var distill: DistillationMethod = .none
    /// The frozen FP teacher (safetensors file or run directory).
    public var teacher: String?
    /// Weight α of the soft-target term KL_T in γ·CE + α·KL_T + β·L_kd (`train_quant.py:422`). The recipes
    /// start it at the method's default (`DistillationMethod.defaultAlpha`: 1 for sqakd and kd, 0 for the
    /// feature methods, as the authors' Table 7 scripts).
    public var alpha: Double = 1
    /// Distillation temperature T.
    public var temperature: Double = 4
    /// Weight γ of the cross-entropy term; absent = the method's (0 for sqakd, 1 otherwise; §5.2).
    public var gamma: Double?
    /// Weight β of the method's own term L_kd; absent = the method's §5.2 default (`defaultBeta`:
    /// at 1000, nst 50, sp 3000, rkd 1, fitnet 100, cc 0.02, vid 1, ft 200, crd 0.8, cktf 1; fsp has no main-stage term).
    public var beta: Double?
    /// Epochs of the method's initialisation stage, which runs before epoch 1 (fsp: the student's feature
    /// modules on the FSP loss alone; ft: the Paraphraser on reconstructing the teacher's feature; see
    /// `InitStage`); absent = the authors' `--init_epochs` 30 (`train_quant.py:114`; no Table 7 script sets it).
    /// Only fsp and ft have one.
    public var initEpochs: Int?
    /// `cktf` only: weight θ of its intermediate CRD terms, L = γ·CE + α·KL_T + β·CRD(feat[-1]) +
    /// θ·Σ CRD(intermediates) (`--kd_theta`, `train_quant.py:417-419`); absent = 0.8, the Table 7 scripts'.
    public var theta: Double?
    /// `crd` and `cktf`: negatives per sample K (`--nce_k`); absent = the method's (`defaultNegatives`:
    /// crd 16384, `train_quant.py:102`; cktf 4096, the scripts' `--nce_k 4096`).
    public var nceK: Int?

    public init() {}

    public var isQuantized: Bool { quantizer != "fp" }
    /// Epochs of the initialisation stage this run trains before epoch 1 (0 for methods without one).
    public var initStageEpochs: Int { distill.hasInitStage ? initEpochs ?? DistillationMethod.defaultInitEpochs : 0 }
    /// θ of `cktf` as the run uses it.
    public var resolvedTheta: Double { theta ?? 0.8 }
    /// K of `crd` / `cktf` as the run uses it (0 for the other methods).
    public var resolvedNegatives: Int { nceK ?? distill.defaultNegatives }
    public var isDistilled: Bool { distill != .none }

    /// γ, α, β of γ·CE + α·KL_T + β·L_kd as the run uses them (`distill: none` is γ = 1 alone).
    public var lossWeights: (gamma: Double, alpha: Double, beta: Double) {
        if distill == .none { return (1, 0, 0) }
        let b = distill.readsFeatures && distill != .fsp ? beta ?? distill.defaultBeta : 0
        return (gamma ?? distill.defaultGamma, alpha, b)
    }

    /// What is wrong with the values, one issue per key (empty when valid): ranges, and names that must exist
    /// in the quantizer registry, the model zoo and the dataset registry.
    public func issues() -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        func check(_ ok: Bool, _ key: String, _ message: @autoclosure () -> String) {
            if !ok { out.append(ConfigIssue(key: key, message: message())) }
        }
        func positive(_ v: Double, _ key: String) { check(v > 0 && v.isFinite, key, "must be a positive number, got \(v)") }
        check((try? DatasetKind(id: dataset)) != nil, "dataset",
              "names an unknown dataset '\(dataset)'; known: \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))")
        check(ModelZoo.names.contains(model), "model", "names an unknown model '\(model)'; the zoo has: \(ModelZoo.names.joined(separator: ", "))")
        check(epochs >= 1, "epochs", "must be ≥ 1, got \(epochs)")
        check(batchSize >= 1, "batch_size", "must be ≥ 1, got \(batchSize)")
        check(evalBatchSize >= 1, "eval_batch_size", "must be ≥ 1, got \(evalBatchSize)")
        positive(lr, "lr")
        check(momentum >= 0, "momentum", "must be ≥ 0, got \(momentum)")
        check(!nesterov || momentum > 0 || optimizer != .sgd, "nesterov", "needs momentum > 0 (SGD), got momentum \(momentum)")
        check(weightDecay >= 0 && weightDecay.isFinite, "weight_decay", "must be ≥ 0, got \(weightDecay)")
        check(warmupIterations == 0 || warmupIterations >= 2, "warmup_iterations", "must be 0 or ≥ 2, got \(warmupIterations)")
        check((0..<1).contains(labelSmoothing), "label_smoothing", "must be in [0, 1), got \(labelSmoothing)")
        check(trainLimit >= 0, "train_limit", "must be ≥ 0 (0 = every image), got \(trainLimit)")
        check(testLimit >= 0, "test_limit", "must be ≥ 0 (0 = every image), got \(testLimit)")
        if let imageSize, let kind = try? DatasetKind(id: dataset) {
            if kind.isResizable {
                check((8...1024).contains(imageSize), "image_size", "must be in 8…1024, got \(imageSize)")
            } else {
                check(imageSize == kind.info.height, "image_size",
                      "is \(imageSize), but \(dataset) trains at its stored \(kind.info.height)×\(kind.info.width) only (omit image_size or give \(kind.info.height); only tiny-imagenet resizes)")
            }
        }
        do {
            let scheme = try QuantizerRegistry.scheme(named: quantizer)
            if isQuantized {
                do { try QuantizerRegistry.validate(scheme, bits: bits) } catch { out.append(ConfigIssue(key: "bits", message: "\(error)")) }
            }
            do { _ = try QuantizerRegistry.resolve(scheme, settings: quantizerSettings) } catch {
                out.append(ConfigIssue(key: "quantizer_settings", message: "\(error)"))
            }
        } catch {
            out.append(ConfigIssue(key: "quantizer", message: "\(error)"))
        }
        positive(quantizerLR, "quantizer_lr")
        check(ewgsDeltaUpdateEvery >= 0, "ewgs_delta_update_every", "must be ≥ 0 (0 = never), got \(ewgsDeltaUpdateEvery)")
        check(ewgsDeltaUpdateEvery == 0 || quantizer == "ewgs", "ewgs_delta_update_every",
              "sets the δ of EWGS quantizers; quantizer '\(quantizer)' has none (use 0)")
        check(!fpEdgeLayers || (isQuantized && style == .tinyImageNet), "fp_edge_layers",
              "applies to quantized runs of style tiny-imagenet (style cifar keeps the stem and classifier in full precision already)")
        check(!perLayerActivationQuantizers || (isQuantized && style == .tinyImageNet), "per_layer_activation_quantizers",
              "applies to quantized runs of style tiny-imagenet (style cifar quantizes each conv's input in the conv, as the authors' CIFAR code)")
        check(!randomInit || (isQuantized && initFrom == nil), "random_init",
              "applies to quantized runs without 'init_from' (an FP run always starts from random weights)")
        check(!isDistilled || teacher != nil, "distill", "\(distill.rawValue) needs a 'teacher' (an FP run directory or .safetensors file)")
        check(alpha >= 0 && alpha.isFinite, "alpha", "must be ≥ 0, got \(alpha)")
        if let gamma { check(gamma >= 0 && gamma.isFinite, "gamma", "must be ≥ 0, got \(gamma)") }
        if let beta { check(beta >= 0 && beta.isFinite, "beta", "must be ≥ 0, got \(beta)") }
        check(beta == nil || distill != .fsp, "beta",
              "fsp has no main-stage term (the authors' L_kd is 0 after its initialisation stage, utils_distill.py:207-209)")
        if let initEpochs {
            check(initEpochs >= 0, "init_epochs", "must be ≥ 0, got \(initEpochs)")
            check(distill.hasInitStage, "init_epochs", "applies to fsp and ft (the methods with an initialisation stage), not \(distill.rawValue)")
        }
        if let theta {
            check(distill == .cktf, "theta", "weights cktf's intermediate terms; distill \(distill.rawValue) has none")
            check(theta >= 0 && theta.isFinite, "theta", "must be ≥ 0, got \(theta)")
        }
        if let nceK {
            check(distill.defaultNegatives > 0, "nce_k", "sets the negatives of crd and cktf; distill \(distill.rawValue) draws none")
            check(nceK >= 1, "nce_k", "must be ≥ 1, got \(nceK)")
        }
        check(distill == .none || lossWeights.gamma > 0 || lossWeights.alpha > 0 || lossWeights.beta > 0, "distill",
              "\(distill.rawValue) has every loss weight at 0 (gamma, alpha, beta)")
        if distill == .sqakd { positive(alpha, "alpha") }
        positive(temperature, "temperature")
        return out
    }

    /// Throws the first of `issues()` as one line ("'epochs' must be ≥ 1, got 0").
    public func validate() throws {
        if let i = issues().first { throw ConfigError("'\(i.key)' \(i.message)") }
    }
}

/// The optimizer of the model parameters.
public enum OptimizerKind: String, ConfigChoice {
    case sgd, adam
}

/// Learning-rate schedules of the reference.
public enum ScheduleKind: String, ConfigChoice {
    /// Cosine annealing to 0, stepped per epoch (reference CIFAR, §4.1/§4.2).
    case cosine
    /// Linear warm-up from 1e-4 over `warmupIterations`, then cosine to 0, set every iteration
    /// (reference Tiny-ImageNet, §4.3).
    case warmupCosine = "warmup-cosine"
    case constant
}

/// How a student learns from its teacher: the authors' `--distill` (reference §6) with its weights in
/// γ·CE + α·KL_T + β·L_kd (`TrainConfig.lossWeights`). The feature methods (at … cktf) read intermediate
/// features of the student and teacher (`Model.featurePaths`, the authors' `feat` list).
public enum DistillationMethod: String, ConfigChoice {
    /// No teacher: cross-entropy with the labels.
    case none
    /// SQAKD: loss = α·T²·KL(teacher ‖ student) at temperature T, no labels (reference train_quant.py, γ = β = 0).
    case sqakd
    /// Hinton KD: γ·CE + α·KL_T with labels (`--distill kd`, L_kd = 0, `utils_distill.py:155-156`).
    case kd
    /// Attention transfer on feat[1:-1] (`attention`).
    case at
    /// Neuron selectivity transfer on feat[1:-1] (`nst`).
    case nst
    /// Similarity-preserving KD on feat[-2] (`similarity`).
    case sp
    /// Relational KD (distance + angle) on feat[-1] (`rkd`).
    case rkd
    /// FitNet hints on feat[2] through a ConvReg (`hint`, hint_layer 2).
    case fitnet
    /// Correlation congruence on feat[-1] with two linear embeddings (`correlation`).
    case cc
    /// Variational information distillation on feat[1:-1] (`vid`).
    case vid
    /// FSP matrices between consecutive features of feat[:-1] (`fsp`), in an initialisation stage only;
    /// the main stage is γ·CE + α·KL_T (`utils_distill.py:131-140,207-209`).
    case fsp
    /// Factor transfer on feat[-2] (`factor`): Paraphraser trained in an initialisation stage, then frozen;
    /// Translator trained with the student (`utils_distill.py:114-129,210-213`).
    case ft
    /// Contrastive representation distillation on feat[-1] (`crd`: memory banks, K other-class negatives).
    case crd
    /// CRD on f0, every group's last block and feat[-1], the authors' CKTF (`crdst`).
    case cktf

    /// γ when `gamma` is absent: the Table 7 scripts' kd_gamma (0 for SQAKD, 1 for every other method, §5.2).
    public var defaultGamma: Double { self == .sqakd ? 0 : 1 }

    /// α the recipes start from: kd_alpha of the scripts (1 for SQAKD; 0 for the feature methods, §5.2;
    /// 1 for `kd`, whose only use in the scripts is kd_alpha 1).
    public var defaultAlpha: Double { readsFeatures ? 0 : 1 }

    /// β when `beta` is absent: kd_beta of `run_cifar10_resnet20_EWGS+KDs.sh` (§5.2). fsp's 50 multiplies
    /// L_kd = 0 there (`utils_distill.py:207-209`), so the run uses no β term (`lossWeights`).
    public var defaultBeta: Double {
        switch self {
        case .none, .sqakd, .kd: return 0
        case .at: return 1000
        case .nst: return 50
        case .sp: return 3000
        case .rkd: return 1
        case .fitnet: return 100
        case .cc: return 0.02
        case .vid: return 1
        case .fsp: return 50
        case .ft: return 200
        case .crd: return 0.8
        case .cktf: return 1
        }
    }

    /// Negatives per sample K of the contrastive methods (`--nce_k`: default 16384, `train_quant.py:102`;
    /// CKTF's script rows 4096), 0 for the others.
    public var defaultNegatives: Int {
        switch self {
        case .crd: return 16384
        case .cktf: return 4096
        default: return 0
        }
    }

    /// Whether the method trains something before epoch 1 (`utils_distill.py:123,138`).
    public var hasInitStage: Bool { self == .fsp || self == .ft }

    /// The authors' `--init_epochs` (`train_quant.py:114`).
    public static let defaultInitEpochs = 30

    /// Whether the method has a term of its own on intermediate features (β·L_kd).
    public var readsFeatures: Bool { defaultBeta != 0 }
}

extension QuantizationStyle: ConfigChoice {}
extension HutchinsonTrace.Mode: ConfigChoice {}

/// A closed set of values spelled by their raw value on disk and on the command line.
public protocol ConfigChoice: Codable, Sendable, CaseIterable, RawRepresentable where RawValue == String {}

extension ConfigChoice {
    /// Every valid spelling, in declaration order.
    public static var spellings: [String] { allCases.map(\.rawValue) }
}

/// One invalid value of a config, by key.
public struct ConfigIssue: Sendable, Equatable {
    /// The snake_case key ("batch_size").
    public var key: String
    public var message: String
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// The reference's training recipes: the defaults a run starts from before any file or flag is applied.
/// Chosen once, by `Recipe(quantizer:style:)`, from the merged settings, whichever entry point builds the
/// config (`sqakd train`, a suite's plan, `sqakd bench`).
public enum Recipe: String, Sendable, CaseIterable {
    /// §4.1 (train_fp.py): SGD lr 0.1, momentum 0.9, wd 1e-4, per-epoch cosine, plain cross-entropy
    /// (the `TrainConfig()` defaults).
    case fpTeacher = "fp-teacher"
    /// §4.2 (train_quant.py): two Adams, model lr 1e-3 with coupled wd 1e-4, quantizer lr 1e-5 without
    /// decay, both per-epoch cosine.
    case cifarQAT = "cifar-qat"
    /// §4.3 (TinyImageNet/main.py, FP): one SGD (momentum 0.9, Nesterov) over every parameter, warm-up +
    /// cosine set every iteration (2,500 warm-up iterations), label smoothing 0.1 without a teacher;
    /// lr 0.05, wd 5e-4 as the FP rows of §5.3.
    case tinyImageNetFP = "tiny-imagenet-fp"
    /// §4.3 (main.py, QAT): as `tinyImageNetFP`, quantizer parameters in the same SGD; lr 5e-4, wd 5e-4
    /// as most QAT rows of §5.3.
    case tinyImageNetQAT = "tiny-imagenet-qat"

    /// FP runs (`quantizer` fp) train a teacher; the style picks the dataset family's recipe.
    public init(quantizer: String, style: QuantizationStyle) {
        switch (quantizer == "fp", style) {
        case (true, .cifar): self = .fpTeacher
        case (false, .cifar): self = .cifarQAT
        case (true, .tinyImageNet): self = .tinyImageNetFP
        case (false, .tinyImageNet): self = .tinyImageNetQAT
        }
    }

    /// The recipe's settings; `distill` sets α (`DistillationMethod.defaultAlpha`) and the Tiny-ImageNet label
    /// smoothing (baselines only).
    public func defaults(distill: DistillationMethod = .none) -> TrainConfig {
        var c = TrainConfig()
        switch self {
        case .fpTeacher:
            break
        case .cifarQAT:
            c.optimizer = .adam
            c.lr = 1e-3
            c.quantizerLR = 1e-5
            c.weightDecay = 1e-4
        case .tinyImageNetFP, .tinyImageNetQAT:
            c.style = .tinyImageNet
            c.optimizer = .sgd
            c.momentum = 0.9
            c.nesterov = true
            c.schedule = .warmupCosine
            c.warmupIterations = 2500
            c.labelSmoothing = distill == .none ? 0.1 : 0
            c.lr = self == .tinyImageNetFP ? 0.05 : 5e-4
            c.weightDecay = 5e-4
        }
        c.alpha = distill.defaultAlpha
        return c
    }
}
