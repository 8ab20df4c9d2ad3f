import Foundation
import Training

/// A cell of a suite's table: model × quantizer × bit-width × method, optionally a named variant of the
/// same quantizer (another recipe, a quirk switched off: `cifar-recipe`, `hessian-delta`); teachers:
/// quantizer fp, 32 bits, method fp. Seeds are the repetitions of a cell.
public struct CellKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var model: String
    public var quantizer: String
    public var bits: Int
    public var method: Method
    /// "" for the quantizer as the suite's recipe runs it.
    public var variant: String

    public init(model: String, quantizer: String, bits: Int, method: Method, variant: String = "") {
        self.model = model; self.quantizer = quantizer; self.bits = bits; self.method = method; self.variant = variant
    }

    public var isTeacher: Bool { method == .fp }
    public var precision: String { isTeacher ? "FP" : "W\(bits)A\(bits)" }
    /// The table column: the quantizer and its variant.
    public var column: Column { Column(quantizer: quantizer, variant: variant) }
    public var description: String { isTeacher ? "\(model) FP teacher" : "\(model) \(column) \(precision) \(method.title)" }
    public static func < (a: CellKey, b: CellKey) -> Bool {
        (a.model, a.quantizer, a.variant, a.bits, a.method.rawValue) < (b.model, b.quantizer, b.variant, b.bits, b.method.rawValue)
    }

    /// The same (model, column, bits) with another method.
    public func with(_ method: Method) -> CellKey {
        CellKey(model: model, quantizer: quantizer, bits: bits, method: method, variant: variant)
    }
}

/// A student-table column: a quantizer, or a named variant of it ("pact (cifar-recipe)").
public struct Column: Hashable, Sendable, CustomStringConvertible {
    public var quantizer: String
    public var variant: String

    public init(quantizer: String, variant: String = "") { self.quantizer = quantizer; self.variant = variant }

    public var description: String { variant.isEmpty ? quantizer : "\(quantizer) (\(variant))" }
    /// File-name form: "pact" or "pact-cifar-recipe".
    public var slug: String { variant.isEmpty ? quantizer : "\(quantizer)-\(variant)" }

    public func cell(model: String, bits: Int, method: Method) -> CellKey {
        CellKey(model: model, quantizer: quantizer, bits: bits, method: method, variant: variant)
    }
}

/// One run of a sweep: a cell, a seed, its resolved config, its directory (named by the run id = hash of
/// the resolved config) and the teacher run it needs.
public struct PlannedRun: Sendable {
    public var cell: CellKey
    public var seed: UInt64
    public var config: TrainConfig
    public var directory: URL
    public var teacherID: String?

    public var id: String { config.runID }
    /// "resnet20/ewgs/W2A2/sqakd/seed1"; a variant comes after the precision ("resnet20/pact/W4A4/cifar-recipe/baseline/seed0").
    public var label: String {
        if cell.isTeacher { return "\(cell.model)/fp/teacher/seed\(seed)" }
        let variant = cell.variant.isEmpty ? "" : "/\(cell.variant)"
        return "\(cell.model)/\(cell.quantizer)/\(cell.precision)\(variant)/\(cell.method.rawValue)/seed\(seed)"
    }
    public var runDirectory: RunDirectory { RunDirectory(directory) }
}

/// A suite expanded at one budget: teachers first (seed 0, shared by every student of the model), then the
/// students seed by seed (every cell's first seed before any cell's second), each seed in grid order.
public struct Plan: Sendable {
    public var suite: Suite
    public var budget: Budget
    public var seeds: Int
    public var runsDirectory: URL
    public var runs: [PlannedRun]

    public var teachers: [PlannedRun] { runs.filter(\.cell.isTeacher) }
    public var students: [PlannedRun] { runs.filter { !$0.cell.isTeacher } }

    /// `resultsRoot`/<suite>/runs holds the run directories. `seeds` overrides the suite's count; `only`
    /// keeps the students whose label ("resnet20/ewgs/W2A2/sqakd/seed1") contains one of the patterns,
    /// and their teachers.
    public init(suite: Suite, budget: String? = nil, seeds: Int? = nil, resultsRoot: URL, only: [String] = []) throws {
        self.suite = suite
        self.budget = try suite.budget(budget)
        self.seeds = seeds ?? suite.seeds
        guard (1...Self.maximumSeeds).contains(self.seeds) else { throw SuiteError("--seeds must be in 1...\(Self.maximumSeeds), got \(self.seeds)") }
        runsDirectory = Self.runsDirectory(suite: suite.runsOf ?? suite.name, resultsRoot: resultsRoot)

        var teachers: [String: PlannedRun] = [:]   // model → teacher
        var teacherOrder: [PlannedRun] = []
        var students: [PlannedRun] = []
        var seen = Set<String>()
        var cellEntry: [CellKey: Int] = [:]   // cell → index of the grid entry that defines it
        var runCell: [String: CellKey] = [:]
        let dataset = ConfigOverlay(["dataset": .string(suite.dataset)], source: suite.datasetSource)
        for entry in suite.grid {
            let cell = ConfigOverlay(["model": .string(entry.model)], source: entry.source)
            let fixed = ConfigOverlay(["seed": .integer(0)], source: ConfigSource("plan"))
            let t = try Self.resolve([dataset, cell, suite.teacher, entry.teacher, self.budget.overlay(teacher: true), fixed],
                                     what: "\(entry.model) teacher")
            let teacher = PlannedRun(cell: CellKey(model: entry.model, quantizer: "fp", bits: 32, method: .fp), seed: 0, config: t,
                                     directory: runsDirectory.appendingPathComponent(t.runID), teacherID: nil)
            if let existing = teachers[entry.model] {
                guard existing.id == teacher.id else {
                    throw SuiteError("\(suite.file.relativePathForDisplay): grid entries for \(entry.model) give its teacher different hyper-parameters; one model has one teacher")
                }
            } else {
                teachers[entry.model] = teacher
                teacherOrder.append(teacher)
            }
        }
        for seed in 0..<UInt64(self.seeds) {
            for (entryIndex, entry) in suite.grid.enumerated() {
                let teacher = teachers[entry.model]!
                let teacherPath = teacher.directory.relativePathForDisplay
                for q in entry.quantizers {
                    for b in entry.bits {
                        for method in suite.methods {
                            let cell = ConfigOverlay(["model": .string(entry.model), "quantizer": .string(q), "bits": .integer(b)],
                                                     source: entry.source)
                            var layers = [dataset, cell, suite.student, entry.student]
                            layers += entry.overrides.filter { $0.matches(quantizer: q, bits: b, method: method) }.map(\.set)
                            var fixed: [String: ConfigValue] = ["seed": .integer(Int(seed))]
                            if let distill = method.distillation {
                                fixed["distill"] = .string(distill.rawValue)
                                fixed["teacher"] = .string(teacherPath)
                            }
                            layers.append(self.budget.overlay(teacher: false, initStage: method.distillation?.hasInitStage ?? false))
                            let key = CellKey(model: entry.model, quantizer: q, bits: b, method: method, variant: entry.variant)
                            // Every QAT run starts from the FP teacher (reference --load_pretrain True), except a
                            // `random_init` cell (the VGG-11 W3A3 SQAKD row of Table 5, "withoutPretrain").
                            let probe = try Self.resolve(layers + [ConfigOverlay(fixed, source: ConfigSource("plan"))], what: key.description)
                            if !probe.randomInit { fixed["init_from"] = .string(teacherPath) }
                            layers.append(ConfigOverlay(fixed, source: ConfigSource("plan")))
                            if let other = cellEntry[key], other != entryIndex {
                                throw SuiteError("\(entry.source): \(key) is also defined by the grid entry at \(suite.grid[other].source); give one of them a 'variant'")
                            }
                            cellEntry[key] = entryIndex
                            let c = try Self.resolve(layers, what: key.description)
                            let run = PlannedRun(cell: key, seed: seed, config: c, directory: Self.directory(of: c, in: runsDirectory),
                                                 teacherID: teacher.id)
                            if let other = runCell[run.id], other != key {
                                throw SuiteError("\(entry.source): \(key) resolves to the same runs as \(other); a variant must change a setting")
                            }
                            runCell[run.id] = key
                            if seen.insert(run.id).inserted { students.append(run) }
                        }
                    }
                }
            }
        }
        if !only.isEmpty {
            students = students.filter { s in only.contains { s.label.contains($0) } }
            let needed = Set(students.compactMap(\.teacherID))
            teacherOrder = teacherOrder.filter { t in needed.contains(t.id) || only.contains { t.label.contains($0) } }
            guard !students.isEmpty || !teacherOrder.isEmpty else {
                throw SuiteError("--only \(only.joined(separator: " ")) matches no run; labels look like resnet20/ewgs/W2A2/sqakd/seed1")
            }
        }
        runs = teacherOrder + students
    }

    /// The most seeds a plan takes: a table of a few seeds per cell is the use; a count like 2e9 would only
    /// hang the planner (every seed is a run).
    public static let maximumSeeds = 1000

    public static func runsDirectory(suite: String, resultsRoot: URL) -> URL {
        resultsRoot.appendingPathComponent(suite).appendingPathComponent("runs")
    }

    /// `TrainConfig.resolve` over a run's layers; errors name the key, its file and line, and the run.
    static func resolve(_ layers: [ConfigOverlay], what: String) throws -> TrainConfig {
        do { return try TrainConfig.resolve(layers) } catch {
            throw SuiteError("\(error) (\(what))")
        }
    }

    /// A run's folder: `<runs>/<run id>`, or the folder named by its id of before (`TrainConfig.pathRunID`,
    /// which hashed the teacher's path) when only that one exists, so results not yet renamed by
    /// `sqakd results migrate` are found, resumed and reported where they are.
    static func directory(of config: TrainConfig, in runs: URL) -> URL {
        let current = runs.appendingPathComponent(config.runID)
        let old = runs.appendingPathComponent(config.pathRunID)
        let fm = FileManager.default
        return config.pathRunID != config.runID && !fm.fileExists(atPath: current.path) && fm.fileExists(atPath: old.path) ? old : current
    }

    /// Planned runs in a folder named by their id of before (see `directory(of:in:)`).
    public var unmigrated: [PlannedRun] { runs.filter { $0.directory.lastPathComponent != $0.id } }

    /// Every cell of the plan in table order, with its planned runs.
    public var cells: [(CellKey, [PlannedRun])] {
        var order: [CellKey] = []
        var by: [CellKey: [PlannedRun]] = [:]
        for r in runs {
            if by[r.cell] == nil { order.append(r.cell) }
            by[r.cell, default: []].append(r)
        }
        return order.map { ($0, by[$0]!.sorted { $0.seed < $1.seed }) }
    }
}
