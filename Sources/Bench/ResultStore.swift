import Datasets
import Foundation
import Training

/// A cell's finished runs at one budget, from their records alone.
public struct CellResult: Sendable {
    public var cell: CellKey
    public var budget: String
    public var epochs: Int
    /// Seeds the suite asks for at this budget.
    public var plannedSeeds: Int
    public var records: [RunRecord]

    public var seeds: [UInt64] { records.map(\.config.seed) }
    /// Best-epoch test top-1 (selected on the test set, the paper's convention) over seeds.
    public var best: Summary { Summary(records.compactMap(\.bestTop1)) }
    /// Best-epoch test top-5 over seeds, the best of its own (TinyImageNet/main.py:464 keeps
    /// `best_prec5 = max(prec5, best_prec5)`, not the top-5 of the best top-1 epoch).
    public var bestTop5: Summary { Summary(records.compactMap { $0.epochs.map(\.testTop5).max() }) }
    /// Last-epoch test top-1 over seeds.
    public var last: Summary { Summary(records.compactMap(\.lastTop1)) }
    /// Mean test top-1 of each seed's last five epochs (fewer when it ran fewer), over seeds: the figure the
    /// authors log beside best and last.
    public var lastFive: Summary {
        Summary(records.compactMap { r in
            let tail = r.epochs.suffix(5).map(\.testTop1)
            return tail.isEmpty ? nil : tail.reduce(0, +) / Double(tail.count)
        })
    }
    /// Test top-1 gained over the last five epochs (the last epoch's minus the sixth-last's), over the seeds
    /// that ran six epochs or more: how flat a teacher's curve has become.
    public var lastFiveGain: Summary {
        Summary(records.compactMap { r in r.epochs.count > 5 ? r.epochs[r.epochs.count - 1].testTop1 - r.epochs[r.epochs.count - 6].testTop1 : nil })
    }
    /// Test top-1 per epoch, one array per seed.
    public var curves: [[Double]] { records.map { $0.epochs.map(\.testTop1) } }
    public var wallSeconds: Double { records.reduce(0) { $0 + $1.wallSeconds } }
}

/// A suite's results: for each cell of its grid, the finished runs of the largest budget that has any
/// (paper, then reduced, then smoke) unless a budget is forced. Runs are matched to cells by their
/// resolved config, with teacher paths reduced to the teacher's run id, so a results folder can be moved.
public struct SuiteResults: Sendable {
    public var suite: Suite
    public var cells: [CellKey: CellResult]
    /// Every cell of the grid, in table order (teachers first).
    public var order: [CellKey]
    /// Records in the runs folder that match no cell of the suite at any budget (old hyper-parameters).
    public var strays: Int { strayKeys.count }
    /// The match keys of those records (suites sharing a runs folder subtract each other's).
    public var strayKeys: Set<String>
    /// The match keys of the finished records that belong to a cell of this suite at any budget.
    public var matchedKeys: Set<String>
    public var runsDirectory: URL

    /// The budgets a report shows when none is forced, largest first. Labelled budgets (any other name) are
    /// shown on their own (`labelledBudgets`).
    public static let budgetPreference = ["paper", "reduced", "smoke"]

    /// The suite's labelled budgets that have finished runs, each as its own results.
    public static func labelledBudgets(suite: Suite, resultsRoot: URL) throws -> [SuiteResults] {
        try suite.budgets.map(\.name).filter { !budgetPreference.contains($0) }.compactMap { b in
            let r = try load(suite: suite, resultsRoot: resultsRoot, budget: b)
            return r.isEmpty ? nil : r
        }
    }

    /// Reads `runsDirectory` (default `<resultsRoot>/<suite>/runs`).
    public static func load(suite: Suite, resultsRoot: URL, runsDirectory: URL? = nil, budget: String? = nil) throws -> SuiteResults {
        let runs = runsDirectory ?? Plan.runsDirectory(suite: suite.runsOf ?? suite.name, resultsRoot: resultsRoot)
        let records = readRecords(runs)
        var byKey: [String: RunRecord] = [:]
        for r in records where r.status == "finished" && r.epochs.count >= r.config.epochs { byKey[r.config.runID] = r }
        // Seeds beyond the suite's that have finished runs are shown too (up to the planner's limit).
        let maxSeed = records.map { $0.config.seed }.filter { $0 < UInt64(Plan.maximumSeeds) }.max() ?? 0
        let seedsToScan = max(suite.seeds, Int(maxSeed) + 1)

        let budgets = budget.map { [$0] } ?? budgetPreference.filter { n in suite.budgets.contains { $0.name == n } }
        var cells: [CellKey: CellResult] = [:]
        var order: [CellKey] = []
        var matched = Set<String>()
        for b in budgets {
            let plan = try Plan(suite: suite, budget: b, seeds: seedsToScan, resultsRoot: resultsRoot)
            for (cell, planned) in plan.cells {
                if !order.contains(cell) { order.append(cell) }
                let found = planned.compactMap { byKey[$0.config.runID] }
                matched.formUnion(found.map(\.config.runID))
                guard cells[cell] == nil, !found.isEmpty else { continue }
                let planSeeds = cell.isTeacher ? 1 : suite.seeds
                cells[cell] = CellResult(cell: cell, budget: b, epochs: planned[0].config.epochs, plannedSeeds: planSeeds,
                                         records: found.sorted { $0.config.seed < $1.config.seed })
            }
        }
        // Runs of the other budgets (labelled ones such as `reduced-4ep-teacher`) are reported on their own, not as strays.
        for b in suite.budgets.map(\.name) where !budgets.contains(b) {
            let plan = try Plan(suite: suite, budget: b, seeds: seedsToScan, resultsRoot: resultsRoot)
            for (_, planned) in plan.cells { matched.formUnion(planned.map(\.config.runID).filter { byKey[$0] != nil }) }
        }
        return SuiteResults(suite: suite, cells: cells, order: order, strayKeys: Set(byKey.keys).subtracting(matched),
                            matchedKeys: matched, runsDirectory: runs)
    }

    static func readRecords(_ dir: URL) -> [RunRecord] {
        let fm = FileManager.default
        guard let ids = try? fm.contentsOfDirectory(atPath: dir.path) else { return [] }
        return ids.sorted().compactMap { try? RunDirectory(dir.appendingPathComponent($0)).readRecord() }
    }

    public var teacherCells: [CellKey] { order.filter(\.isTeacher) }
    public var studentCells: [CellKey] { order.filter { !$0.isTeacher } }
    public var isEmpty: Bool { cells.isEmpty }

    /// Budgets the shown cells ran at.
    public var budgetsUsed: [String] {
        let used = Set(cells.values.map(\.budget))
        return Self.budgetPreference.filter(used.contains) + used.subtracting(Self.budgetPreference).sorted()
    }

    /// The paper's top-1 (or `metric`) for a cell, when transcribed.
    public func paper(_ cell: CellKey, metric: String = "top1") -> Double? {
        let model = suite.paperModel(cell.model)
        return suite.paper.first {
            $0.metric == metric && $0.model == model && $0.method == cell.method
                && (cell.isTeacher ? $0.method == .fp : ($0.quantizer == cell.quantizer && $0.bits == cell.bits))
        }?.value
    }

    /// Whether tables show top-5 beside top-1: the paper reports it for Tiny-ImageNet (Table 6 gives it).
    public var showsTopFive: Bool { suite.dataset == "tiny-imagenet" || suite.paper.contains { $0.metric == "top5" } }

    /// SQAKD − baseline for a (model, column, bits), when both have runs.
    public func difference(model: String, column: Column, bits: Int, last: Bool = false) -> Difference? {
        guard let b = cells[column.cell(model: model, bits: bits, method: .baseline)],
              let s = cells[column.cell(model: model, bits: bits, method: .sqakd)] else { return nil }
        return last ? Difference(s.last, minus: b.last) : Difference(s.best, minus: b.best)
    }

    /// Whether the suite compares distillation methods (Table 7): its `methods` hold one besides baseline and SQAKD.
    public var isMethodComparison: Bool { suite.methods.contains { $0 != .baseline && $0 != .sqakd } }

    /// A student cell's method − the baseline of the same (model, column, bits), best (or last) test top-1,
    /// when both have runs; nil for baseline cells.
    public func methodDifference(_ cell: CellKey, last: Bool = false) -> Difference? {
        guard cell.method != .baseline, !cell.isTeacher, let m = cells[cell], let b = cells[cell.with(.baseline)] else { return nil }
        return last ? Difference(m.last, minus: b.last) : Difference(m.best, minus: b.best)
    }

    /// The paper's method − its baseline for a cell, when both are transcribed.
    public func paperDifference(_ cell: CellKey) -> Double? {
        guard cell.method != .baseline, let p = paper(cell), let b = paper(cell.with(.baseline)) else { return nil }
        return p - b
    }

    /// Every (model, column, bits) of the grid, in grid order, whether run or not.
    public var cellGroupsInGrid: [(model: String, column: Column, bits: Int)] {
        var out: [(model: String, column: Column, bits: Int)] = []
        for c in studentCells where !out.contains(where: { $0.model == c.model && $0.column == c.column && $0.bits == c.bits }) {
            out.append((c.model, c.column, c.bits))
        }
        return out
    }

    /// The FP teacher's results for a model.
    public func teacher(_ model: String) -> CellResult? { cells[CellKey(model: model, quantizer: "fp", bits: 32, method: .fp)] }

    /// (model, bits) rows and quantizer columns of the student table, in grid order.
    public var rows: [(model: String, bits: Int)] {
        var out: [(String, Int)] = []
        for c in studentCells where !out.contains(where: { $0 == (c.model, c.bits) }) { out.append((c.model, c.bits)) }
        return out
    }

    public var columns: [Column] {
        var out: [Column] = []
        for c in studentCells where !out.contains(c.column) { out.append(c.column) }
        return out
    }

    /// A variant cell against the same cell of its released column (a quirk switched on or off, another recipe).
    public struct VariantComparison: Sendable {
        public var variant: CellResult
        public var released: CellResult
        /// What the variant changes: its variant name, or "pact-learnable vs pact" for a `compare_to` column.
        public var change: String
        public var difference: Difference { Difference(variant.best, minus: released.best) }
        /// Variant − released best top-1, paired by seed (the same data order and initialisation).
        public var seedDeltas: [Double] { SuiteResults.pairedDeltas(variant, minus: released) }
    }

    /// One change (a quirk switched off, another recipe) over every cell it was measured in.
    public struct VariantSummary: Sendable {
        public var change: String
        public var comparisons: [VariantComparison]

        /// The comparisons with a t-test (two seeds or more a side) and those that came out significant.
        public var tested: [VariantComparison] { comparisons.filter { $0.difference.significant != nil } }
        public var significant: [VariantComparison] { comparisons.filter { $0.difference.significant == true } }

        /// The significant cells, e.g. "lsq baseline +1.92".
        public var significantCells: String {
            significant.map { "\($0.variant.cell.column.quantizer) \($0.variant.cell.method.title) \(Tables.signed($0.difference.delta))" }
                .joined(separator: ", ")
        }

        /// Short form for the report's summary: whether the change moves best top-1 significantly, and where.
        public var verdict: String {
            if tested.isEmpty { return "no verdict yet (no cell has two seeds a side)" }
            let all = tested.count == 1 ? "the one tested cell" : tested.count == 2 ? "both tested cells" : "all \(tested.count) tested cells"
            if significant.isEmpty { return "no significant move (n.s. in \(all))" }
            return "moves best top-1 significantly in " + (significant.count == tested.count ? all
                : "\(significant.count) of \(Tables.count(tested.count, "tested cell"))") + " (\(significantCells))"
        }

        /// One line of words: how far the change moved best top-1, and where significantly.
        public var sentence: String {
            var places: [String] = [], methods: [String] = []
            for c in comparisons {
                let place = "\(c.variant.cell.column.quantizer) W\(c.variant.cell.bits)A\(c.variant.cell.bits)"
                if !places.contains(place) { places.append(place) }
                if !methods.contains(c.variant.cell.method.title) { methods.append(c.variant.cell.method.title) }
            }
            let deltas = comparisons.map(\.difference.delta)
            var out = "**\(change)** (\(places.joined(separator: ", ")); \(methods.joined(separator: " and "))): Δ "
                + (deltas.count == 1 ? Tables.signed(deltas[0]) : "from \(Tables.signed(deltas.min()!)) to \(Tables.signed(deltas.max()!))")
                + " over \(Tables.count(comparisons.count, "cell")); " + verdict + "."
            let untested = comparisons.count - tested.count
            if untested > 0 && !tested.isEmpty { out += " \(Tables.count(untested, "cell")) still \(untested == 1 ? "lacks" : "lack") two seeds a side." }
            let disagree = comparisons.filter { SuiteResults.signsDisagree($0.seedDeltas) }.count
            if disagree > 0 { out += " In \(Tables.count(disagree, "cell")) the seeds disagree about the sign." }
            return out
        }
    }

    /// The variant comparisons grouped by what they change, in table order.
    public var variantSummaries: [VariantSummary] {
        var out: [VariantSummary] = []
        for c in variantComparisons {
            if let i = out.firstIndex(where: { $0.change == c.change }) { out[i].comparisons.append(c) }
            else { out.append(VariantSummary(change: c.change, comparisons: [c])) }
        }
        return out
    }

    /// The released column a column is measured against: the `compare_to` quantizer (or its own) without
    /// variant; nil for a plain column without `compare_to`.
    public func releasedColumn(of column: Column) -> Column? {
        let entry = suite.grid.first { $0.variant == column.variant && $0.quantizers.contains(column.quantizer) }
        guard let entry, !column.variant.isEmpty || entry.compareTo != nil else { return nil }
        let base = Column(quantizer: entry.compareTo ?? column.quantizer)
        return base == column ? nil : base
    }

    /// True when some column is measured against a released one (a variant or a `compare_to`).
    public var hasVariantColumns: Bool { columns.contains { releasedColumn(of: $0) != nil } }

    /// Every variant cell with runs whose released cell has runs too, in table order.
    public var variantComparisons: [VariantComparison] {
        studentCells.compactMap { k in
            guard let base = releasedColumn(of: k.column), let v = cells[k],
                  let r = cells[base.cell(model: k.model, bits: k.bits, method: k.method)] else { return nil }
            return VariantComparison(variant: v, released: r,
                                     change: k.variant.isEmpty ? "\(k.quantizer) vs \(base.quantizer)" : k.variant)
        }
    }

    /// `a` − `b` best top-1 for every seed that both have, in seed order.
    static func pairedDeltas(_ a: CellResult, minus b: CellResult) -> [Double] {
        let other = Dictionary(b.records.compactMap { r in r.bestTop1.map { (r.config.seed, $0) } }, uniquingKeysWith: { a, _ in a })
        return a.records.sorted { $0.config.seed < $1.config.seed }
            .compactMap { r in r.bestTop1.flatMap { v in other[r.config.seed].map { v - $0 } } }
    }

    /// The cell's best top-1 minus its column's quantizer alone (the baseline) of the same seed, for every seed
    /// that both have, in seed order: the paired Δs whose signs say whether the seeds agree.
    public func seedDeltas(_ cell: CellKey) -> [Double] {
        guard cell.method != .baseline, !cell.isTeacher, let m = cells[cell], let b = cells[cell.with(.baseline)] else { return [] }
        return Self.pairedDeltas(m, minus: b)
    }

    /// True when paired Δs have both signs.
    public static func signsDisagree(_ deltas: [Double]) -> Bool {
        deltas.contains(where: { $0 > 0 }) && deltas.contains(where: { $0 < 0 })
    }

    /// Test top-1 % of guessing: 100 / the dataset's class count; nil for a dataset the registry does not know.
    public var chanceTop1: Double? { (try? DatasetKind(id: suite.dataset)).map { 100 / Double($0.info.classCount) } }

    /// What a reader must know before trusting a cell, in words: students that stayed near chance (below
    /// twice the guessing rate: the quantizer did not learn at this budget, and Δ compares two failures), a
    /// label-trained baseline that beats the teacher its SQAKD twin distils from (the teacher is then a
    /// weaker signal than the labels), and seeds that disagree about the sign of Δ (the method − the baseline,
    /// paired by seed; every method of a method comparison, SQAKD elsewhere).
    public var flags: [String] {
        var out: [String] = []
        for row in rows {
            for col in columns {
                let b = cells[col.cell(model: row.model, bits: row.bits, method: .baseline)]
                let name = "\(row.model) \(col) W\(row.bits)A\(row.bits)"
                if let chance = chanceTop1 {
                    let low = suite.methods.compactMap { m -> String? in
                        guard let c = cells[col.cell(model: row.model, bits: row.bits, method: m)], c.best.n > 0,
                              c.best.mean < 2 * chance else { return nil }
                        return String(format: "%@ %.2f", m.title, c.best.mean)
                    }
                    if !low.isEmpty {
                        out.append("\(name): near chance (\(low.joined(separator: ", ")); guessing gives "
                                   + String(format: "%.2f", chance) + "): the student did not learn at this budget, so its Δ compares failures.")
                    }
                }
                if let b, let t = teacher(row.model), b.best.n > 0, t.best.n > 0, b.best.mean > t.best.mean {
                    out.append(String(format: "%@: the baseline (%.2f) beats its FP teacher (%.2f), so SQAKD distils from a signal weaker "
                                      + "than the labels; Δ here says more about the teacher than about SQAKD.", name, b.best.mean, t.best.mean))
                }
                for m in suite.methods where m != .baseline {
                    let deltas = seedDeltas(col.cell(model: row.model, bits: row.bits, method: m))
                    if Self.signsDisagree(deltas) {
                        out.append("\(name)\(isMethodComparison ? " \(m.title)" : ""): the seeds disagree about the sign of Δ (per seed: "
                                   + deltas.map { Tables.signed($0) }.joined(separator: ", ") + "); the mean Δ is not a verdict.")
                    }
                }
            }
        }
        return out
    }
}
