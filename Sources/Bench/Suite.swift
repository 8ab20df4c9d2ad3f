import Datasets
import Foundation
import Tensors
import Models
import Quantization
import Training
import Yams

/// How a student is trained: `baseline` = the QAT method alone with labels (cross-entropy), `sqakd` = the
/// same QAT method trained by SQAKD (α·T²·KL to the FP teacher, no labels). `fp` marks the teachers. The
/// other cases are the paper's Table 7 distillation methods (reference §5.2, §6), each the
/// `DistillationMethod` of the same name with its §5.2 weights: a suite whose `methods` list them compares
/// them (`SuiteResults.isMethodComparison`). A new method = one case here (its name is the
/// `DistillationMethod`'s) and its name in a suite's `methods`.
public enum Method: String, Codable, CaseIterable, Sendable, Comparable {
    case fp, baseline, sqakd
    case kd, at, nst, sp, rkd, fitnet, cc, vid, fsp, ft, crd, cktf

    public var title: String {
        switch self {
        case .fp, .baseline: return rawValue
        case .sqakd: return "SQAKD"
        case .fitnet: return "FitNet"
        default: return rawValue.uppercased()
        }
    }

    /// The run's `distill` (nil for teachers and baselines).
    public var distillation: DistillationMethod? {
        self == .fp || self == .baseline ? nil : DistillationMethod(rawValue: rawValue)
    }

    public static func < (a: Method, b: Method) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// One row group of a suite's grid: a model, its quantizers and bit-widths, and per-model hyper-parameters
/// (config layers over the suite's).
public struct GridEntry: Sendable {
    public var model: String
    public var quantizers: [String]
    public var bits: [Int]
    public var teacher: ConfigOverlay
    public var student: ConfigOverlay
    public var overrides: [Override]
    /// "" for the suite's recipe; otherwise the label of the cells this entry defines (`cifar-recipe`), shown
    /// beside the quantizer in tables so that one quantizer can be run under several recipes or quirks.
    public var variant: String
    /// The quantizer whose plain column this entry's cells are measured against in the variants table
    /// (`compare_to`); defaults to the entry's own quantizer when it has a variant.
    public var compareTo: String?
    /// Where the entry starts (`suites/x.yaml:31`), the source of its model, quantizer and bits.
    public var source: ConfigSource
    /// The model's name in the paper's numbers (`paper_model`: the CSV's `vgg11` for the zoo's `vgg11_bn`);
    /// nil = the zoo name.
    public var paperModel: String?

    /// Hyper-parameters for the students that match every condition given (e.g. α = 100 for SQAKD at 4 bits).
    public struct Override: Sendable {
        public var quantizer: String?
        public var bits: Int?
        public var method: Method?
        public var set: ConfigOverlay

        func matches(quantizer q: String, bits b: Int, method m: Method) -> Bool {
            (quantizer ?? q) == q && (bits ?? b) == b && (method ?? m) == m
        }
    }
}

/// A suite: one YAML file per paper table (or one of our own), expanded by `Plan` into runs.
public struct Suite: Sendable {
    public var name: String
    public var title: String
    public var description: String?
    public var file: URL
    public var dataset: String
    public var seeds: Int
    public var methods: [Method]
    /// Config layers (snake_case `TrainConfig` keys) of every teacher and every student.
    public var teacher: ConfigOverlay
    public var student: ConfigOverlay
    public var grid: [GridEntry]
    public var budgets: [Budget]
    public var defaultBudget: String
    /// The paper's table number and its numbers for this suite's dataset (empty when not transcribed).
    public var paperTable: String?
    public var paper: [PaperValue]
    /// The CSV of the paper's numbers that the suite names (`paper.results`), resolved against the suite's folder.
    public var paperResults: URL?
    /// Where `dataset` is set.
    public var datasetSource: ConfigSource
    /// Another suite whose runs folder this one shares (`runs_of`): runs with the same config are trained
    /// once and shown by both (a quirks suite reuses the main suite's released cells).
    public var runsOf: String?

    /// The model's name in the paper's numbers (`paper_model` of its grid entries, else the zoo name).
    public func paperModel(_ model: String) -> String {
        grid.first { $0.model == model }?.paperModel ?? model
    }

    /// The standard budgets; a suite may add labelled ones (`reduced-4ep-teacher`) that keep an earlier
    /// budget's results reportable beside the current ones.
    public static let budgetNames = ["paper", "reduced", "smoke"]

    /// A suite name names a results folder: letters, digits, '-', '_'.
    static func isSuiteName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
    }

    static func isLabel(_ name: String) -> Bool {
        !name.isEmpty && name.first!.isLetter
            && name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    }
    static let keys = ["name", "title", "description", "dataset", "seeds", "methods", "teacher", "student", "grid", "budgets",
                       "default_budget", "paper", "runs_of"]

    public func budget(_ name: String?) throws -> Budget {
        let n = name ?? defaultBudget
        guard let b = budgets.first(where: { $0.name == n }) else {
            throw SuiteError("suite '\(self.name)' has no budget '\(n)'; it defines: \(budgets.map(\.name).joined(separator: ", "))")
        }
        return b
    }

    /// Reads and validates a suite file. Every error is one line with the file, line and key.
    public static func load(_ url: URL) throws -> Suite {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SuiteError("cannot read suite \(url.path): \(fileErrorReason(error))")
        }
        return try parse(text, file: url)
    }

    /// Finds a suite by path, or by name under `suites/` ("fashion-mnist" → suites/fashion-mnist.yaml).
    public static func locate(_ nameOrPath: String) throws -> URL {
        let fm = FileManager.default
        if fm.fileExists(atPath: nameOrPath) { return URL(fileURLWithPath: nameOrPath) }
        for candidate in ["suites/\(nameOrPath).yaml", "suites/\(nameOrPath)"] where fm.fileExists(atPath: candidate) {
            return URL(fileURLWithPath: candidate)
        }
        let known = ((try? fm.contentsOfDirectory(atPath: "suites")) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        throw SuiteError("no suite '\(nameOrPath)'" + (known.isEmpty ? "" : "; suites/ holds: \(known.joined(separator: ", "))"))
    }

    public static func parse(_ text: String, file: URL) throws -> Suite {
        let display = file.relativePathForDisplay
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: text) else { throw SuiteError("\(display): the suite file is empty") }
            root = n
        } catch let e as SuiteError { throw e } catch let e as YamlError {
            throw SuiteError("\(display): not valid YAML: \(String(describing: e).split(separator: "\n").first ?? "")")
        } catch {
            throw SuiteError("\(display): not valid YAML: \(error)")
        }
        let m = try YAMLMapping(file: display, path: "", node: root)
        try m.checkKeys(keys)

        let name = try m.string("name") ?? file.deletingPathExtension().lastPathComponent
        guard Self.isSuiteName(name) else {
            throw m.error("name", "may hold only letters, digits, '-' and '_' (it names the results folder)")
        }
        let dataset = try m.string("dataset") ?? { throw SuiteError("\(display): missing key 'dataset'") }()
        guard (try? DatasetKind(id: dataset)) != nil else {
            throw m.error("dataset", "names an unknown dataset '\(dataset)'; known: \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let seeds = try m.int("seeds") ?? 1
        guard (1...Plan.maximumSeeds).contains(seeds) else { throw m.error("seeds", "must be in 1...\(Plan.maximumSeeds), got \(seeds)") }
        let methodNames = try m.strings("methods") ?? ["baseline", "sqakd"]
        var methods: [Method] = []
        for s in methodNames {
            guard let method = Method(rawValue: s), method != .fp else {
                throw m.error("methods", "holds an unknown method '\(s)'; use baseline, sqakd or a distillation method "
                                + "(\(Method.allCases.filter { $0.distillation != nil && $0 != .sqakd }.map(\.rawValue).joined(separator: ", ")))")
            }
            if !methods.contains(method) { methods.append(method) }
        }
        guard !methods.isEmpty else { throw m.error("methods", "must name at least one method") }
        let datasetSource = ConfigSource(m.value("dataset").map(m.location) ?? display)
        func block(_ key: String) throws -> ConfigOverlay { try m.mapping(key).map { try hyperParameters($0, dataset: dataset) } ?? ConfigOverlay() }
        let teacher = try block("teacher"), student = try block("student")

        guard let gridNodes = try m.mappings("grid"), !gridNodes.isEmpty else {
            throw SuiteError("\(display): missing or empty 'grid' (a list of {model, quantizers, bits})")
        }
        let grid = try gridNodes.map { try parseGridEntry($0, dataset: dataset) }
        for (i, e) in grid.enumerated() {
            if let other = grid[..<i].first(where: { $0.model == e.model && $0.paperModel != e.paperModel }) {
                throw SuiteError("\(e.source): paper_model of \(e.model) is '\(e.paperModel ?? e.model)', but the entry at \(other.source) "
                                 + "says '\(other.paperModel ?? other.model)'; one model has one name in the paper")
            }
        }

        var budgets: [Budget] = []
        if let b = try m.mapping("budgets") {
            for (key, _) in b.pairs {
                guard budgetNames.contains(key) || Self.isLabel(key) else {
                    throw SuiteError("\(b.keyNode(key).map(b.location) ?? display): budget name '\(key)' must be paper, reduced, smoke or a label of lower-case letters, digits and '-'")
                }
                let node = b.value(key)!
                if node.scalar?.string.isEmpty ?? false || node.null != nil {
                    budgets.append(Budget(name: key))
                } else {
                    budgets.append(try Budget(name: key, try YAMLMapping(file: display, path: "budgets.\(key)", node: node)))
                }
            }
        }
        if !budgets.contains(where: { $0.name == "paper" }) { budgets.insert(Budget(name: "paper"), at: 0) }
        let defaultBudget = try m.string("default_budget") ?? (budgets.contains { $0.name == "reduced" } ? "reduced" : "paper")
        guard budgets.contains(where: { $0.name == defaultBudget }) else {
            throw m.error("default_budget", "names '\(defaultBudget)', which the suite does not define")
        }

        var paperTable: String?
        var paper: [PaperValue] = []
        var paperResults: URL?
        if let p = try m.mapping("paper") {
            try p.checkKeys(["table", "results"])
            paperTable = try p.string("table")
            if let csv = try p.string("results") {
                let url = URL(fileURLWithPath: csv, relativeTo: file.deletingLastPathComponent()).standardizedFileURL
                paperResults = url
                paper = try PaperValue.load(url).filter { $0.dataset == dataset && (paperTable == nil || $0.table == paperTable) }
            }
        }

        let runsOf = try m.string("runs_of")
        if let r = runsOf, !isSuiteName(r) { throw m.error("runs_of", "must be a suite name (letters, digits, '-', '_'), got '\(r)'") }
        return Suite(name: name, title: try m.string("title") ?? name, description: try m.string("description"), file: file,
                     dataset: dataset, seeds: seeds, methods: methods, teacher: teacher, student: student, grid: grid,
                     budgets: budgets, defaultBudget: defaultBudget, paperTable: paperTable, paper: paper,
                     paperResults: paperResults, datasetSource: datasetSource, runsOf: runsOf)
    }

    /// Keys a suite's hyper-parameter blocks may not set: the plan sets them for each run.
    static let planKeys = ["dataset", "model", "quantizer", "bits", "seed", "init_from", "teacher", "distill"]

    /// A `teacher` / `student` / override block as a config layer, checked key by key where its lines are
    /// known (unknown key, wrong type, invalid value).
    /// `context` holds the plan keys the block will run with where they are known (a grid entry's first
    /// quantizer and bit-width), so settings that only apply to some quantizers are checked against one.
    static func hyperParameters(_ m: YAMLMapping, dataset: String, skipping: [String] = [],
                                context: [String: ConfigValue] = [:]) throws -> ConfigOverlay {
        let layer = try m.overlay(skipping: skipping)
        for key in layer.order {
            let top = String(key.split(separator: ".")[0])
            if planKeys.contains(top) {
                throw m.error(top, "is set by the plan for each run (grid, seeds, methods), not in a hyper-parameter block")
            }
        }
        // Quantizer settings depend on the quantizer: the plan checks them per run.
        var alone = ConfigOverlay()
        for key in layer.order where !key.hasPrefix("quantizer_settings.") { alone.set(key, layer[key]!.value, layer[key]!.source) }
        let known = ConfigOverlay(context.merging(["dataset": .string(dataset)]) { a, _ in a }, source: ConfigSource("suite"))
        do { _ = try TrainConfig.resolve([known, alone]) } catch {
            throw SuiteError("\(error)")
        }
        return layer
    }

    static func parseGridEntry(_ g: YAMLMapping, dataset: String) throws -> GridEntry {
        try g.checkKeys(["model", "paper_model", "quantizers", "bits", "variant", "compare_to", "teacher", "student", "overrides"])
        let compareTo = try g.string("compare_to")
        if let c = compareTo, !QuantizerRegistry.names.contains(c) || c == "fp" {
            throw g.error("compare_to", "names '\(c)', which is not a registered quantizer")
        }
        let variant = try g.string("variant") ?? ""
        guard variant.isEmpty || isLabel(variant) else {
            throw g.error("variant", "must be a label of lower-case letters, digits and '-', got '\(variant)'")
        }
        guard let model = try g.string("model") else { throw SuiteError("\(g.location(g.node)): missing key '\(g.keyPath("model"))'") }
        guard ModelZoo.names.contains(model) else {
            throw g.error("model", "names an unknown model '\(model)'; the zoo has: \(ModelZoo.names.joined(separator: ", "))")
        }
        guard let quantizers = try g.strings("quantizers"), !quantizers.isEmpty else {
            throw SuiteError("\(g.location(g.node)): missing key '\(g.keyPath("quantizers"))'")
        }
        guard let bits = try g.ints("bits"), !bits.isEmpty else {
            throw SuiteError("\(g.location(g.node)): missing key '\(g.keyPath("bits"))'")
        }
        for q in quantizers {
            guard q != "fp" else { throw g.error("quantizers", "must not list fp: every model's FP teacher is trained anyway") }
            let scheme: any QuantizationScheme
            do { scheme = try QuantizerRegistry.scheme(named: q) } catch {
                throw g.error("quantizers", "names an unknown quantizer '\(q)'; registered: \(QuantizerRegistry.names.filter { $0 != "fp" }.joined(separator: ", "))")
            }
            for b in bits {
                do { try QuantizerRegistry.validate(scheme, bits: b) } catch {
                    throw g.error("bits", "has \(b), which \(q) does not support (\(error))")
                }
            }
        }
        let teacher = try g.mapping("teacher").map { try hyperParameters($0, dataset: dataset) } ?? ConfigOverlay()
        let student = try g.mapping("student").map {
            try hyperParameters($0, dataset: dataset, context: ["quantizer": .string(quantizers[0]), "bits": .integer(bits[0])])
        } ?? ConfigOverlay()
        var overrides: [GridEntry.Override] = []
        for o in try g.mappings("overrides") ?? [] {
            let context: [String: ConfigValue] = ["quantizer": .string(try o.string("quantizer") ?? quantizers[0]),
                                                  "bits": .integer(try o.int("bits") ?? bits[0])]
            let set = try hyperParameters(o, dataset: dataset, skipping: ["quantizer", "bits", "method"], context: context)
            var method: Method?
            if let s = try o.string("method") {
                guard let mm = Method(rawValue: s), mm != .fp else { throw o.error("method", "must be baseline, sqakd or a distillation method, got '\(s)'") }
                method = mm
            }
            overrides.append(.init(quantizer: try o.string("quantizer"), bits: try o.int("bits"), method: method, set: set))
        }
        let paperModel = try g.string("paper_model")
        if let p = paperModel, p.isEmpty { throw g.error("paper_model", "must not be empty") }
        return GridEntry(model: model, quantizers: quantizers, bits: bits, teacher: teacher, student: student, overrides: overrides,
                         variant: variant, compareTo: compareTo, source: ConfigSource(g.location(g.node), keyPath: g.path),
                         paperModel: paperModel)
    }
}

extension URL {
    /// The path relative to the working directory when it lies below it.
    var relativePathForDisplay: String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        let p = standardizedFileURL.path
        return p.hasPrefix(cwd) ? String(p.dropFirst(cwd.count)) : p
    }
}
