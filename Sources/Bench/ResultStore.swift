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
    /// Last-epoch test top-1 over seeds.
    public var last: Summary { Summary(records.compactMap(\.lastTop1)) }
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
    public var strays: Int
    public var runsDirectory: URL

    public static let budgetPreference = ["paper", "reduced", "smoke"]

    /// Reads `runsDirectory` (default `<resultsRoot>/<suite>/runs`).
    public static func load(suite: Suite, resultsRoot: URL, runsDirectory: URL? = nil, budget: String? = nil) throws -> SuiteResults {
        let runs = runsDirectory ?? Plan.runsDirectory(suite: suite.name, resultsRoot: resultsRoot)
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
        return SuiteResults(suite: suite, cells: cells, order: order, strays: byKey.count - matched.count, runsDirectory: runs)
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

    /// The paper's top-1 for a cell, when transcribed.
    public func paper(_ cell: CellKey) -> Double? {
        suite.paper.first {
            $0.metric == "top1" && $0.model == cell.model && $0.method == cell.method
                && (cell.isTeacher ? $0.method == .fp : ($0.quantizer == cell.quantizer && $0.bits == cell.bits))
        }?.value
    }

    /// SQAKD − baseline for a (model, quantizer, bits), when both have runs.
    public func difference(model: String, quantizer: String, bits: Int, last: Bool = false) -> Difference? {
        guard let b = cells[CellKey(model: model, quantizer: quantizer, bits: bits, method: .baseline)],
              let s = cells[CellKey(model: model, quantizer: quantizer, bits: bits, method: .sqakd)] else { return nil }
        return last ? Difference(s.last, minus: b.last) : Difference(s.best, minus: b.best)
    }

    /// (model, bits) rows and quantizer columns of the student table, in grid order.
    public var rows: [(model: String, bits: Int)] {
        var out: [(String, Int)] = []
        for c in studentCells where !out.contains(where: { $0 == (c.model, c.bits) }) { out.append((c.model, c.bits)) }
        return out
    }

    public var quantizers: [String] {
        var out: [String] = []
        for c in studentCells where !out.contains(c.quantizer) { out.append(c.quantizer) }
        return out
    }
}
