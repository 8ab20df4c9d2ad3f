import Foundation
import Training
import Yams

/// Training hyper-parameters as a suite states them (snake_case keys). Every field is optional: a
/// suite's `teacher`/`student` blocks, a grid entry's blocks and an override layer over one another, the
/// later one winning, and the result is applied to a `TrainConfig`.
public struct HyperParameters: Equatable, Sendable {
    public var epochs: Int?
    public var batchSize: Int?
    public var evalBatchSize: Int?
    public var optimizer: String?
    public var lr: Double?
    public var momentum: Double?
    public var nesterov: Bool?
    public var weightDecay: Double?
    public var schedule: String?
    public var warmupIterations: Int?
    public var labelSmoothing: Double?
    public var augment: Bool?
    public var quantizerLR: Double?
    public var alpha: Double?
    public var temperature: Double?
    public var style: String?
    public var settings: [String: Double]?

    public init() {}

    static let keys = ["epochs", "batch_size", "eval_batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
                       "schedule", "warmup_iterations", "label_smoothing", "augment", "quantizer_lr", "alpha", "temperature",
                       "style", "settings"]

    init(_ m: YAMLMapping, extraKeys: [String] = []) throws {
        try m.checkKeys(Self.keys + extraKeys)
        epochs = try m.int("epochs")
        batchSize = try m.int("batch_size")
        evalBatchSize = try m.int("eval_batch_size")
        optimizer = try m.string("optimizer")
        lr = try m.double("lr")
        momentum = try m.double("momentum")
        nesterov = try m.bool("nesterov")
        weightDecay = try m.double("weight_decay")
        schedule = try m.string("schedule")
        warmupIterations = try m.int("warmup_iterations")
        labelSmoothing = try m.double("label_smoothing")
        augment = try m.bool("augment")
        quantizerLR = try m.double("quantizer_lr")
        alpha = try m.double("alpha")
        temperature = try m.double("temperature")
        style = try m.string("style")
        if let s = try m.mapping("settings") {
            var d = [String: Double]()
            for (k, _) in s.pairs { d[k] = try s.double(k) }
            settings = d
        }
        // Values a suite can get wrong are checked here, where the line is known.
        if let e = epochs, e < 1 { throw m.error("epochs", "must be ≥ 1") }
        if let b = batchSize, b < 1 { throw m.error("batch_size", "must be ≥ 1") }
        if let b = evalBatchSize, b < 1 { throw m.error("eval_batch_size", "must be ≥ 1") }
        if let o = optimizer, !["sgd", "adam"].contains(o) { throw m.error("optimizer", "must be sgd or adam, got '\(o)'") }
        if let s = schedule, !["cosine", "warmup-cosine", "constant"].contains(s) {
            throw m.error("schedule", "must be cosine, warmup-cosine or constant, got '\(s)'")
        }
        if let s = style, !["cifar", "tiny-imagenet"].contains(s) { throw m.error("style", "must be cifar or tiny-imagenet, got '\(s)'") }
        for (key, v) in [("lr", lr), ("quantizer_lr", quantizerLR), ("alpha", alpha), ("temperature", temperature)] {
            if let v, !(v > 0) { throw m.error(key, "must be positive, got \(v)") }
        }
        if let w = weightDecay, w < 0 { throw m.error("weight_decay", "must be ≥ 0") }
    }

    /// `other`'s set fields over these.
    public func overridden(by other: HyperParameters) -> HyperParameters {
        var r = self
        r.epochs = other.epochs ?? epochs
        r.batchSize = other.batchSize ?? batchSize
        r.evalBatchSize = other.evalBatchSize ?? evalBatchSize
        r.optimizer = other.optimizer ?? optimizer
        r.lr = other.lr ?? lr
        r.momentum = other.momentum ?? momentum
        r.nesterov = other.nesterov ?? nesterov
        r.weightDecay = other.weightDecay ?? weightDecay
        r.schedule = other.schedule ?? schedule
        r.warmupIterations = other.warmupIterations ?? warmupIterations
        r.labelSmoothing = other.labelSmoothing ?? labelSmoothing
        r.augment = other.augment ?? augment
        r.quantizerLR = other.quantizerLR ?? quantizerLR
        r.alpha = other.alpha ?? alpha
        r.temperature = other.temperature ?? temperature
        r.style = other.style ?? style
        if let s = other.settings { r.settings = (settings ?? [:]).merging(s) { _, b in b } }
        return r
    }

    public func apply(to c: inout TrainConfig) {
        if let v = epochs { c.epochs = v }
        if let v = batchSize { c.batchSize = v }
        if let v = evalBatchSize { c.evalBatchSize = v }
        if let v = optimizer { c.optimizer = v }
        if let v = lr { c.lr = v }
        if let v = momentum { c.momentum = v }
        if let v = nesterov { c.nesterov = v }
        if let v = weightDecay { c.weightDecay = v }
        if let v = schedule { c.schedule = v }
        if let v = warmupIterations { c.warmupIterations = v }
        if let v = labelSmoothing { c.labelSmoothing = v }
        if let v = augment { c.augment = v }
        if let v = quantizerLR { c.quantizerLR = v }
        if let v = alpha { c.alpha = v }
        if let v = temperature { c.temperature = v }
        if let v = style { c.style = v }
        if let v = settings { c.quantizerSettings = v }
    }
}

/// How much of the grid's training a budget does. Budgets change epochs and data size only, so the
/// paper's hyper-parameters stay as they are.
public struct Budget: Equatable, Sendable {
    public var name: String
    public var teacherEpochs: Int?
    public var studentEpochs: Int?
    /// Use only the first N training / test images.
    public var trainLimit: Int?
    public var testLimit: Int?

    static let keys = ["teacher_epochs", "student_epochs", "train_limit", "test_limit"]

    init(name: String, _ m: YAMLMapping) throws {
        try m.checkKeys(Self.keys)
        self.name = name
        teacherEpochs = try m.int("teacher_epochs")
        studentEpochs = try m.int("student_epochs")
        trainLimit = try m.int("train_limit")
        testLimit = try m.int("test_limit")
        for (k, v) in [("teacher_epochs", teacherEpochs), ("student_epochs", studentEpochs)] {
            if let v, v < 1 { throw m.error(k, "must be ≥ 1") }
        }
        for (k, v) in [("train_limit", trainLimit), ("test_limit", testLimit)] {
            if let v, v < 1 { throw m.error(k, "must be ≥ 1 (leave it out to use every image)") }
        }
    }

    public init(name: String) { self.name = name }

    func apply(to c: inout TrainConfig, teacher: Bool) {
        if let e = teacher ? teacherEpochs : studentEpochs { c.epochs = e }
        if let n = trainLimit { c.trainLimit = n }
        if let n = testLimit { c.testLimit = n }
    }

    /// "4 teacher / 2 student epochs, first 512 training images", for reports.
    public var summary: String {
        var parts: [String] = []
        if teacherEpochs == nil && studentEpochs == nil { parts.append("the suite's epochs") } else {
            parts.append("\(teacherEpochs.map(String.init) ?? "suite") teacher / \(studentEpochs.map(String.init) ?? "suite") student epochs")
        }
        if let n = trainLimit { parts.append("first \(n) training images") }
        if let n = testLimit { parts.append("first \(n) test images") }
        return parts.joined(separator: ", ")
    }
}
