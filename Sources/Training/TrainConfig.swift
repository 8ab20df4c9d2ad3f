import Foundation

/// Everything that determines a training run's numbers. Two runs with equal configs and thread counts
/// give bit-identical records; the run id is a hash of this struct's canonical JSON.
///
/// Defaults are the reference's CIFAR FP teacher settings (reference-implementation.md §4.1): SGD, lr 0.1,
/// momentum 0.9, weight decay 1e-4, cosine annealing stepped per epoch, cross-entropy without smoothing,
/// test batch 100. The reference trains 400 epochs at batch 256; our default epoch count is short because a
/// 2-core CPU trains ~3 epochs of CIFAR an hour.
public struct TrainConfig: Codable, Equatable, Sendable {
    /// Dataset id: cifar10, cifar100, fashion-mnist (3×32×32 CIFAR-style), fashion-mnist-1ch (1×28×28).
    public var dataset: String = "fashion-mnist"
    /// Model id from the zoo (`sqakd models`).
    public var model: String = "resnet20"
    public var epochs: Int = 4
    public var batchSize: Int = 128
    /// Evaluation batch (reference: 100). Only speed depends on it.
    public var evalBatchSize: Int = 100
    /// "sgd" or "adam".
    public var optimizer: String = "sgd"
    public var lr: Double = 0.1
    public var momentum: Double = 0.9
    public var nesterov: Bool = false
    public var weightDecay: Double = 1e-4
    /// "cosine" (per epoch, to 0; reference CIFAR), "warmup-cosine" (linear warm-up from 1e-4 over
    /// `warmupIterations`, then cosine per iteration; reference Tiny-ImageNet §4.3) or "constant".
    public var schedule: String = "cosine"
    public var warmupIterations: Int = 2500
    public var labelSmoothing: Double = 0
    /// Reference train augmentation (random crop 32 with 4 px zero padding, horizontal flip).
    public var augment: Bool = true
    public var seed: UInt64 = 0
    /// Use only the first N training / test images (0 = all). For smoke runs and tests.
    public var trainLimit: Int = 0
    public var testLimit: Int = 0

    // Quantization-aware training (reference §4.2). `fp` trains a full-precision model.
    /// Quantizer scheme from `sqakd quantizer list`.
    public var quantizer: String = "fp"
    /// Weight and activation bit-width (W = A), ignored for `fp`.
    public var bits: Int = 32
    /// Which layers are quantized: "cifar" (reference §2.2.4: inner convs; stem and classifier FP) or
    /// "tiny-imagenet" (§2.3.1: every conv and linear, first and last at 32 bits of the same quantizer).
    public var style: String = "cifar"
    /// Per-scheme settings (`--set key=value`, e.g. EWGS's delta).
    public var quantizerSettings: [String: Double] = [:]
    /// Learning rate of the quantizer parameters' own Adam (reference lr_q; no weight decay).
    public var quantizerLR: Double = 1e-5
    /// FP checkpoint (safetensors file or run directory) the student starts from; defaults to the teacher.
    public var initFrom: String?
    /// "none" or "sqakd": loss = α·T²·KL(teacher ‖ student), no labels.
    public var distill: String = "none"
    /// The frozen FP teacher (safetensors file or run directory).
    public var teacher: String?
    public var alpha: Double = 1
    public var temperature: Double = 4

    public init() {}

    /// The reference's CIFAR QAT defaults (train_quant.py): Adam lr_m 1e-3, Adam lr_q 1e-5, wd 1e-4,
    /// both cosine per epoch.
    public static func quantizationDefaults() -> TrainConfig {
        var c = TrainConfig()
        c.optimizer = "adam"
        c.lr = 1e-3
        c.quantizerLR = 1e-5
        c.weightDecay = 1e-4
        return c
    }

    public var isQuantized: Bool { quantizer != "fp" }
    public var isDistilled: Bool { distill != "none" }

    /// Unknown keys are errors (style.md rule 8).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(Self.keys)
        for k in c.allKeys where !known.contains(k.stringValue) {
            throw ConfigError("unknown config key '\(k.stringValue)'; valid keys: \(Self.keys.joined(separator: ", "))")
        }
        var d = TrainConfig()
        func get<T: Decodable>(_ k: String, _ v: inout T) throws {
            if let x = try c.decodeIfPresent(T.self, forKey: AnyKey(k)) { v = x }
        }
        try get("dataset", &d.dataset); try get("model", &d.model); try get("epochs", &d.epochs)
        try get("batchSize", &d.batchSize); try get("evalBatchSize", &d.evalBatchSize)
        try get("optimizer", &d.optimizer); try get("lr", &d.lr); try get("momentum", &d.momentum)
        try get("nesterov", &d.nesterov); try get("weightDecay", &d.weightDecay); try get("schedule", &d.schedule)
        try get("warmupIterations", &d.warmupIterations)
        try get("labelSmoothing", &d.labelSmoothing); try get("augment", &d.augment); try get("seed", &d.seed)
        try get("trainLimit", &d.trainLimit); try get("testLimit", &d.testLimit)
        try get("quantizer", &d.quantizer); try get("bits", &d.bits); try get("quantizerSettings", &d.quantizerSettings)
        try get("style", &d.style)
        try get("quantizerLR", &d.quantizerLR); try get("initFrom", &d.initFrom); try get("distill", &d.distill)
        try get("teacher", &d.teacher); try get("alpha", &d.alpha); try get("temperature", &d.temperature)
        self = d
    }

    static let keys = ["dataset", "model", "epochs", "batchSize", "evalBatchSize", "optimizer", "lr", "momentum",
                       "nesterov", "weightDecay", "schedule", "warmupIterations", "labelSmoothing", "augment", "seed", "trainLimit", "testLimit",
                       "quantizer", "bits", "style", "quantizerSettings", "quantizerLR", "initFrom", "distill", "teacher", "alpha",
                       "temperature"]

    /// Checks values a user can get wrong; throws one clear line.
    public func validate() throws {
        if epochs < 1 { throw ConfigError("epochs must be ≥ 1, got \(epochs)") }
        if batchSize < 1 { throw ConfigError("batch size must be ≥ 1, got \(batchSize)") }
        if evalBatchSize < 1 { throw ConfigError("eval batch size must be ≥ 1, got \(evalBatchSize)") }
        if !["sgd", "adam"].contains(optimizer) { throw ConfigError("unknown optimizer '\(optimizer)'; use sgd or adam") }
        if !["cosine", "warmup-cosine", "constant"].contains(schedule) {
            throw ConfigError("unknown schedule '\(schedule)'; use cosine, warmup-cosine or constant")
        }
        if warmupIterations < 0 || warmupIterations == 1 { throw ConfigError("warm-up iterations must be 0 or ≥ 2, got \(warmupIterations)") }
        if !(lr > 0 && lr.isFinite) { throw ConfigError("learning rate must be a positive number, got \(lr)") }
        if weightDecay < 0 { throw ConfigError("weight decay must be ≥ 0, got \(weightDecay)") }
        if !(0..<1).contains(labelSmoothing) { throw ConfigError("label smoothing must be in [0, 1), got \(labelSmoothing)") }
        if trainLimit < 0 || testLimit < 0 { throw ConfigError("subset limits must be ≥ 0") }
        if !["cifar", "tiny-imagenet"].contains(style) { throw ConfigError("unknown quantization style '\(style)'; use cifar or tiny-imagenet") }
        if !["none", "sqakd"].contains(distill) { throw ConfigError("unknown distillation '\(distill)'; use none or sqakd") }
        if isDistilled && teacher == nil { throw ConfigError("--distill \(distill) needs --teacher RUN_DIR_OR_FILE") }
        if !(quantizerLR > 0 && quantizerLR.isFinite) { throw ConfigError("quantizer learning rate must be positive, got \(quantizerLR)") }
        if !(alpha > 0 && alpha.isFinite) { throw ConfigError("alpha must be positive, got \(alpha)") }
        if !(temperature > 0 && temperature.isFinite) { throw ConfigError("temperature must be positive, got \(temperature)") }
    }

    /// Canonical JSON (sorted keys): what the run id hashes and what `config.json` holds.
    public func canonicalJSON() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? e.encode(self)) ?? Data()
    }

    /// 16 hex digits of FNV-1a-64 over the canonical JSON.
    public var runID: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in canonicalJSON() { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension TrainConfig {
    /// Reads a JSON config file; unknown keys and malformed values are one-line errors.
    public static func load(_ path: String) throws -> TrainConfig {
        try JSON.decode(TrainConfig.self, from: URL(fileURLWithPath: path))
    }
}
