import Foundation
import Training

/// How much of the grid's training a budget does. Budgets change epochs and data size only, so the
/// paper's hyper-parameters stay as they are.
public struct Budget: Equatable, Sendable {
    public var name: String
    public var teacherEpochs: Int?
    public var studentEpochs: Int?
    /// Use only the first N training / test images.
    public var trainLimit: Int?
    public var testLimit: Int?
    /// `init_epochs` of the students whose method has an initialisation stage (fsp, ft); nil = theirs (30).
    public var initEpochs: Int?
    /// `image_size` of every run (tiny-imagenet: train and evaluate at S×S instead of the paper's 224).
    public var imageSize: Int?
    /// `warmup_iterations` of every run (the warm-up of `warmup-cosine`, scaled with a shorter budget).
    public var warmupIterations: Int?

    static let keys = ["teacher_epochs", "student_epochs", "train_limit", "test_limit", "init_epochs", "image_size", "warmup_iterations"]

    init(name: String, _ m: YAMLMapping) throws {
        try m.checkKeys(Self.keys)
        self.name = name
        teacherEpochs = try m.int("teacher_epochs")
        studentEpochs = try m.int("student_epochs")
        trainLimit = try m.int("train_limit")
        testLimit = try m.int("test_limit")
        initEpochs = try m.int("init_epochs")
        imageSize = try m.int("image_size")
        warmupIterations = try m.int("warmup_iterations")
        if let v = imageSize, v < 1 { throw m.error("image_size", "must be ≥ 1") }
        if let v = warmupIterations, v < 0 { throw m.error("warmup_iterations", "must be ≥ 0") }
        if let v = initEpochs, v < 0 { throw m.error("init_epochs", "must be ≥ 0") }
        for (k, v) in [("teacher_epochs", teacherEpochs), ("student_epochs", studentEpochs)] {
            if let v, v < 1 { throw m.error(k, "must be ≥ 1") }
        }
        for (k, v) in [("train_limit", trainLimit), ("test_limit", testLimit)] {
            if let v, v < 1 { throw m.error(k, "must be ≥ 1 (leave it out to use every image)") }
        }
    }

    public init(name: String) { self.name = name }

    /// The budget as the last suite layer of a teacher's or a student's config (`epochs`, `train_limit`,
    /// `test_limit`, `image_size`, `warmup_iterations`, and `init_epochs` for a student with an
    /// initialisation stage: `initStage`).
    public func overlay(teacher: Bool, initStage: Bool = false) -> ConfigOverlay {
        var values: [String: ConfigValue] = [:]
        if let e = teacher ? teacherEpochs : studentEpochs { values["epochs"] = .integer(e) }
        if !teacher, initStage, let e = initEpochs { values["init_epochs"] = .integer(e) }
        if let n = trainLimit { values["train_limit"] = .integer(n) }
        if let n = testLimit { values["test_limit"] = .integer(n) }
        if let n = imageSize { values["image_size"] = .integer(n) }
        if let n = warmupIterations { values["warmup_iterations"] = .integer(n) }
        return ConfigOverlay(values, source: ConfigSource("budget \(name)"))
    }

    /// "4 teacher / 2 student epochs, first 512 training images", for reports.
    public var summary: String {
        var parts: [String] = []
        if teacherEpochs == nil && studentEpochs == nil { parts.append("the suite's epochs") } else {
            parts.append("\(teacherEpochs.map(String.init) ?? "suite") teacher / \(studentEpochs.map(String.init) ?? "suite") student epochs")
        }
        if let n = trainLimit { parts.append("first \(n) training images") }
        if let n = testLimit { parts.append("first \(n) test images") }
        if let n = initEpochs { parts.append("\(n) init-stage epoch\(n == 1 ? "" : "s") (fsp, ft)") }
        if let n = imageSize { parts.append("\(n)×\(n) images") }
        if let n = warmupIterations { parts.append("\(n) warm-up iterations") }
        return parts.joined(separator: ", ")
    }
}
