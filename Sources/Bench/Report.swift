import Datasets
import Foundation
import Tensors
import Training

/// `sqakd report`: rebuilds every suite's tables and plots and the root `REPORT.md` from the run records.
public struct Report {
    public var suites: [Suite]
    public var resultsRoot: URL
    /// Where REPORT.md goes (nil: not written).
    public var reportFile: URL?
    public var budget: String?

    public init(suites: [Suite], resultsRoot: URL, reportFile: URL?, budget: String? = nil) {
        self.suites = suites
        self.resultsRoot = resultsRoot
        self.reportFile = reportFile
        self.budget = budget
    }

    /// Writes the files and returns their paths.
    @discardableResult
    public func write() throws -> [URL] {
        var written: [URL] = []
        var all: [SuiteResults] = []
        var labelled: [String: [SuiteResults]] = [:]
        for s in suites {
            let r = try SuiteResults.load(suite: s, resultsRoot: resultsRoot, budget: budget)
            all.append(r)
            if budget == nil { labelled[s.name] = try SuiteResults.labelledBudgets(suite: s, resultsRoot: resultsRoot) }
            guard !r.isEmpty || !(labelled[s.name] ?? []).isEmpty else { continue }
            written += try Self.writeSuiteFiles(r, to: resultsRoot.appendingPathComponent(s.name))
        }
        // Labelled budgets (kept for comparison) get their own folder: <suite>/<budget>/{table.md,…,plots/}.
        for s in suites {
            for r in labelled[s.name] ?? [] {
                let dir = resultsRoot.appendingPathComponent(s.name).appendingPathComponent(r.budgetsUsed[0])
                written += try Self.writeSuiteFiles(r, to: dir)
            }
        }
        if let file = reportFile {
            // Paper tables with transcribed numbers (in the CSVs the suites name) that no suite covers yet.
            let covered = Set(suites.compactMap(\.paperTable))
            var uncovered: [(table: String, numbers: Int, source: String)] = []
            for csv in Set(suites.compactMap(\.paperResults)).sorted(by: { $0.path < $1.path }) {
                let counts = Dictionary(grouping: try PaperValue.load(csv).filter { !covered.contains($0.table) }, by: \.table)
                let source = Self.relative(csv, to: file.deletingLastPathComponent())
                uncovered += counts.sorted { $0.key < $1.key }.map { (table: $0.key, numbers: $0.value.count, source: source) }
            }
            let text = Self.document(all, labelled: labelled, reportDirectory: file.deletingLastPathComponent(), resultsRoot: resultsRoot, uncoveredPaperTables: uncovered)
            try atomicWrite(Data(text.utf8), to: file)
            written.append(file)
        }
        return written
    }

    /// `dir`/{table.md,table.csv,cells.csv,plots/*.png}; PNGs in `plots/` that these results no longer give
    /// (a cell that has moved to another budget) are removed, so the folder never shows stale plots.
    static func writeSuiteFiles(_ r: SuiteResults, to dir: URL) throws -> [URL] {
        var written: [URL] = []
        let plots = dir.appendingPathComponent("plots")
        try FileManager.default.createDirectory(at: plots, withIntermediateDirectories: true)
        for (name, text) in [("table.md", Tables.markdown(r)), ("table.csv", Tables.wideCSV(r)), ("cells.csv", Tables.cellsCSV(r))] {
            let url = dir.appendingPathComponent(name)
            try atomicWrite(Data(text.utf8), to: url)
            written.append(url)
        }
        if r.isMethodComparison {
            let url = dir.appendingPathComponent("methods.csv")
            try atomicWrite(Data(Tables.methodsCSV(r).utf8), to: url)
            written.append(url)
        }
        if r.hasVariantColumns {
            let url = dir.appendingPathComponent("variants.csv")
            try atomicWrite(Data(Tables.variantsCSV(r).utf8), to: url)
            written.append(url)
        }
        written += try ReportPlots.write(r, to: plots)
        let keep = Set(ReportPlots.files(r).map(\.name))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: plots.path)) ?? [] where name.hasSuffix(".png") && !keep.contains(name) {
            try FileManager.default.removeItem(at: plots.appendingPathComponent(name))
        }
        return written
    }

    /// The verdict on the paper's claim (SQAKD improves its QAT baseline) for one suite's cells.
    public struct ClaimSummary: Sendable {
        public var compared = 0, higher = 0, significantlyHigher = 0, lower = 0, significantlyLower = 0, ties = 0
        public var lines: [String] = []

        public var verdict: String {
            guard compared > 0 else { return "no cell has both a baseline and an SQAKD run yet" }
            let allCells = compared == 1 ? "the one cell compared" : "all \(compared) cells"
            if significantlyLower == 0 && higher == compared {
                // Only a significant Δ in every cell is agreement; otherwise the direction agrees and the budget's
                // seeds cannot tell SQAKD from its baseline in the other cells.
                if significantlyHigher == compared {
                    return "**agree** with the paper's claim: SQAKD is above its baseline in \(allCells) (significantly in \(compared))"
                }
                return "**agree in direction** with the paper's claim: SQAKD is above its baseline in \(allCells), "
                    + (significantlyHigher > 0 ? "significantly in only \(significantlyHigher)" : "none significantly")
            }
            let tied = ties > 0 ? ", equal in \(ties)" : ""
            if ties == compared { return "are **inconclusive**: SQAKD equals its baseline in \(allCells)" }
            if lower > higher || significantlyLower > 0 {
                return "**disagree** with the paper's claim: SQAKD is below its baseline in \(lower) of \(compared) cells"
                    + (significantlyLower > 0 ? " (significantly in \(significantlyLower))" : " (none significantly)")
                    + " and above in \(higher)" + (significantlyHigher > 0 ? " (significantly in \(significantlyHigher))" : "") + tied
            }
            return "**partly agree**: SQAKD is above its baseline in \(higher) of \(compared) cells"
                + " (significantly in \(significantlyHigher)) and below in \(lower) (none significantly)" + tied
        }
    }

    public static func claim(_ r: SuiteResults) -> ClaimSummary {
        var c = ClaimSummary()
        for row in r.rows {
            for q in r.columns {
                guard let d = r.difference(model: row.model, column: q, bits: row.bits) else { continue }
                c.compared += 1
                if d.delta > 0 { c.higher += 1 } else if d.delta < 0 { c.lower += 1 } else { c.ties += 1 }
                if d.significant == true { if d.delta > 0 { c.significantlyHigher += 1 } else { c.significantlyLower += 1 } }
                let b = r.cells[q.cell(model: row.model, bits: row.bits, method: .baseline)]!
                let s = r.cells[q.cell(model: row.model, bits: row.bits, method: .sqakd)]!
                let teacher = r.teacher(row.model).map { String(format: "; teacher %.2f", $0.best.mean) } ?? ""
                let split = SuiteResults.signsDisagree(r.seedDeltas(q.cell(model: row.model, bits: row.bits, method: .sqakd)))
                    ? "; seeds disagree on the sign" : ""
                c.lines.append("\(row.model) \(q) W\(row.bits)A\(row.bits): SQAKD \(String(format: "%.2f", s.best.mean)) vs baseline "
                               + "\(String(format: "%.2f", b.best.mean)), Δ \(Tables.signed(d.delta)) (\(d.mark); n = \(s.best.n)/\(b.best.n)\(teacher)\(split))")
            }
        }
        return c
    }

    /// For a method-comparison suite (Table 7), one line per (model, quantizer, bits): where SQAKD ranks among
    /// the methods with runs by mean best test top-1 (the quantizer alone included), and the paper's rank
    /// over the same methods when it gives them all; then which methods beat the quantizer alone.
    public static func methodRanking(_ r: SuiteResults) -> [String] {
        guard r.isMethodComparison else { return [] }
        var lines: [String] = []
        for g in r.cellGroupsInGrid {
            let runs = r.suite.methods.compactMap { m -> (method: Method, cell: CellKey, best: Double)? in
                let k = g.column.cell(model: g.model, bits: g.bits, method: m)
                return r.cells[k].map { (m, k, $0.best.mean) }
            }
            guard runs.count >= 2 else { continue }
            let ranked = runs.sorted { $0.best > $1.best }
            var line = "\(g.model) \(g.column) W\(g.bits)A\(g.bits), methods by best top-1: "
                + ranked.map { "\(Tables.methodName($0.method, g.column)) \(String(format: "%.2f", $0.best))" }.joined(separator: " > ")
            if let i = ranked.firstIndex(where: { $0.method == .sqakd }) {
                line += "; SQAKD ranks \(i + 1) of \(ranked.count)"
                let paper = runs.compactMap { run in r.paper(run.cell).map { (run.method, $0) } }
                if paper.count == runs.count, let p = paper.sorted(by: { $0.1 > $1.1 }).firstIndex(where: { $0.0 == .sqakd }) {
                    line += " (the paper's rank over the same methods: \(p + 1))"
                }
            }
            let diffs = runs.compactMap { run in r.methodDifference(run.cell).map { (run.method, $0) } }
            let above = diffs.filter { $0.1.delta > 0 }
            let significant = above.filter { $0.1.significant == true }.map { $0.0.title }
            line += "; above \(g.column) alone: \(above.count) of \(diffs.count)"
                + (significant.isEmpty ? " (none significantly)" : " (significantly: \(significant.joined(separator: ", ")))")
            lines.append(line)
        }
        return lines
    }

    /// The root REPORT.md: every suite with results (budget, tables, plots, what was not run) and a
    /// paper-vs-ours summary; suites without results are listed with the reason.
    public static func document(_ all: [SuiteResults], labelled: [String: [SuiteResults]] = [:], reportDirectory: URL, resultsRoot: URL,
                                uncoveredPaperTables: [(table: String, numbers: Int, source: String)] = []) -> String {
        var out = "# SQAKDBench report\n\n"
        out += "Generated by `sqakd report` from the run records under `\(relative(resultsRoot, to: reportDirectory))/`; do not edit by hand "
            + "(rerun `sqakd report`).\n"
        out += "Accuracies are test top-1 %, mean ± std over seeds (n): **best** = the best epoch's test accuracy, selected on the "
            + "test set as the paper does; **last** = the last epoch's. Δ = SQAKD − baseline, tested with Welch's t over seeds.\n\n"
        out += "## Paper vs ours\n\n"
        out += "The paper's claim: a QAT method trained with SQAKD (KL to the FP teacher, no labels) beats the same method trained "
            + "alone with labels, for every quantizer, bit-width and model it reports.\n\n"
        func shown(_ r: SuiteResults) -> Bool { !r.isEmpty || !(labelled[r.suite.name] ?? []).isEmpty }
        for r in all where shown(r) {
            let claim = claim(r)
            let budgets = r.budgetsUsed.compactMap { b in r.suite.budgets.first { $0.name == b } }
            let budgetText = budgets.isEmpty ? "`\(r.suite.defaultBudget)`, not run yet" : budgets.map { "`\($0.name)`: \($0.summary)" }.joined(separator: "; ")
            out += "- **\(r.suite.name)** (budget \(budgetText)): our runs "
                + claim.verdict + ".\n"
            for l in claim.lines { out += "  - \(l)\n" }
            for l in methodRanking(r) { out += "  - \(l).\n" }
            let flags = r.flags
            if !flags.isEmpty { out += "  - \(flags.count) flag(s) on these cells (listed under the suite's table): read their Δ with care.\n" }
            for v in r.variantSummaries { out += "  - Variant **\(v.change)** against the released behaviour: \(v.verdict).\n" }
            for lr in labelled[r.suite.name] ?? [] {
                let lb = lr.suite.budgets.first { $0.name == lr.budgetsUsed[0] }!
                let lc = Self.claim(lr)
                out += "  - Kept for comparison, budget `\(lb.name)` (\(lb.summary)): our runs \(lc.verdict).\n"
                for l in lc.lines { out += "    - \(l)\n" }
            }
            let paperCells = r.order.compactMap { k -> (CellKey, Double, Double)? in
                guard let p = r.paper(k), let c = r.cells[k] else { return nil }
                return (k, p, c.best.mean)
            }
            if paperCells.isEmpty {
                out += "  - Our numbers cannot be set beside the paper's for this suite: "
                    + (r.suite.paperTable == nil ? "the paper does not report it.\n" : "the paper's Table \(r.suite.paperTable!) numbers are not transcribed.\n")
            } else {
                let mad = paperCells.map { abs($0.2 - $0.1) }.reduce(0, +) / Double(paperCells.count)
                out += String(format: "  - Against the paper's numbers: %d cells, mean |ours − paper| = %.2f points.\n", paperCells.count, mad)
            }
        }
        let empty = all.filter { !shown($0) }
        if !empty.isEmpty {
            out += "- Not run yet: " + empty.map { "`\($0.suite.name)`" }.joined(separator: ", ") + " (see the end of this report).\n"
        }
        for t in uncoveredPaperTables {
            out += "- The paper's Table \(t.table) (\(t.numbers) transcribed numbers in `\(t.source)`) has no suite yet: its models or KD baselines are not built yet.\n"
        }
        out += "\nThe budgets that fit this 2-core CPU are far below the paper's (hundreds of epochs on GPUs); read every verdict "
            + "above as a statement about that budget only.\n"

        for r in all where shown(r) {
            // The suite's tables and plots are in results/<suite>/ (`write`); its runs may be another suite's (`runs_of`).
            let rel = relative(resultsRoot.appendingPathComponent(r.suite.name), to: reportDirectory)
            let runs = relative(r.runsDirectory, to: reportDirectory)
            out += "\n---\n\n"
            out += Tables.markdown(r, level: 2)
            let wall = r.cells.values.reduce(0) { $0 + $1.wallSeconds }
            let finished = r.cells.values.reduce(0) { $0 + $1.records.count }
            out += "\n\(finished) finished runs, \(formatDuration(wall)) of training in all (sum of the runs' wall times). "
                + "Files: [`table.md`](\(rel)/table.md), [`table.csv`](\(rel)/table.csv), [`cells.csv`](\(rel)/cells.csv)"
                + (r.isMethodComparison ? ", [`methods.csv`](\(rel)/methods.csv)" : "")
                + (r.hasVariantColumns ? ", [`variants.csv`](\(rel)/variants.csv)" : "") + ", run records in `\(runs)/`.\n"
            var missing: [String] = []
            for k in r.order {
                if let c = r.cells[k] {
                    if c.records.count < c.plannedSeeds { missing.append("\(k.description): \(c.records.count) of \(c.plannedSeeds) seeds") }
                } else {
                    missing.append("\(k.description): not run")
                }
            }
            out += "\n**Not run yet:** " + (missing.isEmpty ? "nothing; every cell has all its seeds.\n" : "\n\n" + missing.map { "- \($0)\n" }.joined())
            // A shared runs folder (`runs_of`) holds the other suites' runs too: those are not strays.
            let sharing = all.filter { $0.runsDirectory.standardizedFileURL == r.runsDirectory.standardizedFileURL && $0.suite.name != r.suite.name }
            let strays = sharing.reduce(r.strayKeys) { $0.subtracting($1.matchedKeys) }
            if !strays.isEmpty {
                out += "\n\(strays.count) finished run(s) in the runs folder belong to no cell of the current suite file"
                    + (sharing.isEmpty ? "" : " (nor of \(sharing.map { "`\($0.suite.name)`" }.joined(separator: ", ")), which share it)")
                    + " and are not shown.\n"
            }
            out += "\n### Plots\n\n"
            let plots = ReportPlots.files(r)
            for p in plots { out += "![\(p.title)](\(rel)/plots/\(p.name))\n\n" }
            for lr in labelled[r.suite.name] ?? [] {
                let b = lr.budgetsUsed[0]
                out += "\n### Kept for comparison: budget `\(b)`\n\n"
                    + "The same suite at an earlier budget, kept so that its effect is visible beside the current one. Files: "
                    + "[`\(b)/table.md`](\(rel)/\(b)/table.md), [`\(b)/cells.csv`](\(rel)/\(b)/cells.csv), plots in `\(rel)/\(b)/plots/`.\n\n"
                out += Tables.markdown(lr, level: 4, brief: true)
                if ReportPlots.files(lr).contains(where: { $0.name == "sqakd-gain.png" }) {
                    out += "\n![\(b): SQAKD − baseline](\(rel)/\(b)/plots/sqakd-gain.png)\n"
                }
            }
        }
        if !empty.isEmpty {
            out += "\n---\n\n## Suites without results\n\n"
            for r in empty {
                let cells = r.order.count
                let data = (try? DatasetKind(id: r.suite.dataset).verify())?.complete ?? false
                out += "- **\(r.suite.name)** (`\(r.suite.file.relativePathForDisplay)`): \(r.suite.title). \(cells) cells × \(r.suite.seeds) seeds; "
                    + (data ? "its data is present but no run has finished yet.\n" : "its dataset (`\(r.suite.dataset)`) is not on this machine.\n")
            }
        }
        return out
    }

    static func relative(_ url: URL, to base: URL) -> String {
        let p = url.standardizedFileURL.path, b = base.standardizedFileURL.path + "/"
        return p.hasPrefix(b) ? String(p.dropFirst(b.count)) : p
    }
}
