import Foundation
import Tensors

/// A cell's stored or new numbers, for the regression gate.
public struct CellNumbers: Sendable {
    public var cell: CellKey
    public var budget: String
    public var epochs: Int
    public var best: Summary
    public var last: Summary
}

/// `sqakd check`: compares a suite's new results with stored ones (a results folder or a `cells.csv`) and
/// fails, naming the cells, when a new mean falls outside the stored spread: |new − stored| > max(k·σ, floor),
/// σ = the stored seeds' standard deviation (0 for one seed, so the floor applies).
public struct RegressionCheck {
    public var sigmas: Double = 2
    public var floor: Double = 0.5

    public init(sigmas: Double = 2, floor: Double = 0.5) {
        self.sigmas = sigmas
        self.floor = floor
    }

    public struct Outcome: Sendable {
        public var lines: [String]
        public var failed: [CellKey]
        public var compared: Int
        public var passed: Bool { failed.isEmpty && compared > 0 }
    }

    public static func numbers(_ r: SuiteResults) -> [CellNumbers] {
        r.order.compactMap { k in r.cells[k].map { CellNumbers(cell: k, budget: $0.budget, epochs: $0.epochs, best: $0.best, last: $0.last) } }
    }

    /// Stored numbers from `path`: a `cells.csv`, a suite results folder (with `runs/` or `cells.csv`), or a
    /// results root holding `<suite>/`.
    public static func stored(_ path: String, suite: Suite, budget: String?) throws -> [CellNumbers] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw SuiteError("--against \(path): no such file or folder") }
        let url = URL(fileURLWithPath: path)
        if !isDir.boolValue { return try readCSV(url, suite: suite) }
        for folder in [url, url.appendingPathComponent(suite.name)] {
            let runs = folder.appendingPathComponent("runs")
            if fm.fileExists(atPath: runs.path) {
                let r = try SuiteResults.load(suite: suite, resultsRoot: folder.deletingLastPathComponent(), runsDirectory: runs, budget: budget)
                return numbers(r)
            }
            let csv = folder.appendingPathComponent("cells.csv")
            if fm.fileExists(atPath: csv.path) { return try readCSV(csv, suite: suite) }
        }
        throw SuiteError("--against \(path): found neither runs/ nor cells.csv for suite \(suite.name)")
    }

    static func readCSV(_ url: URL, suite: Suite) throws -> [CellNumbers] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw SuiteError("cannot read \(url.path): \(fileErrorReason(error))") }
        let rows = CSV.parse(text)
        guard let head = rows.first, head == Tables.cellsHeader || head == Tables.cellsHeaderV1 else {
            throw SuiteError("\(url.relativePathForDisplay) is not a cells.csv written by `sqakd report` (header: \(Tables.cellsHeader.joined(separator: ",")))")
        }
        func col(_ name: String) -> Int { head.firstIndex(of: name)! }
        /// Top-1 accuracies in percent: finite and in [0, 100] (a value like 1e308 would make the spread,
        /// and so the tolerance, infinite).
        func values(_ s: String, _ name: String, line: Int) throws -> [Double]? {
            if s.isEmpty { return [] }
            let parsed = s.split(separator: ";").map { Double($0) }
            guard parsed.allSatisfy({ $0 != nil }) else { return nil }
            if let bad = parsed.compactMap({ $0 }).first(where: { !(0...100).contains($0) }) {
                throw SuiteError("\(url.relativePathForDisplay):\(line): \(name) holds \(bad), not a top-1 accuracy in [0, 100]")
            }
            return parsed.map { $0! }
        }
        return try rows.dropFirst().enumerated().compactMap { i, r in
            guard r.count == head.count, let bits = Int(r[col("bits")]), let method = Method(rawValue: r[col("method")]),
                  let epochs = Int(r[col("epochs")]), let best = try values(r[col("best_values")], "best_values", line: i + 2),
                  let last = try values(r[col("last_values")], "last_values", line: i + 2) else {
                throw SuiteError("\(url.relativePathForDisplay):\(i + 2): malformed row")
            }
            guard r[col("suite")] == suite.name else { return nil }
            // The check reads the per-seed values; a mean or count that disagrees with them means a hand-edited file,
            // whose table would show one number while the check tests another.
            for (name, v) in [("best", best), ("last", last)] {
                guard let stated = Double(r[col("\(name)_mean")]), !v.isEmpty else { continue }
                let mean = v.reduce(0, +) / Double(v.count)
                if abs(stated - mean) > 0.005 + 1e-9 {
                    throw SuiteError("\(url.relativePathForDisplay):\(i + 2): \(name)_mean \(r[col("\(name)_mean")]) is not the mean of "
                                     + "\(name)_values (\(Tables.f(mean))): the file was edited by hand; regenerate it with `sqakd report`")
                }
            }
            if let n = Int(r[col("n")]), n != best.count {
                throw SuiteError("\(url.relativePathForDisplay):\(i + 2): n \(n) but \(best.count) best_values: the file was edited by hand; "
                                 + "regenerate it with `sqakd report`")
            }
            let variant = head.contains("variant") ? r[col("variant")] : ""
            return CellNumbers(cell: CellKey(model: r[col("model")], quantizer: r[col("quantizer")], bits: bits, method: method, variant: variant),
                               budget: r[col("budget")], epochs: epochs, best: Summary(best), last: Summary(last))
        }
    }

    public func compare(new: [CellNumbers], stored: [CellNumbers]) -> Outcome {
        var lines: [String] = [], failed: [CellKey] = [], compared = 0
        let width = max(30, new.map { $0.cell.description.count }.max() ?? 0)
        for n in new {
            let name = n.cell.description.padding(toLength: width, withPad: " ", startingAt: 0)
            guard let s = stored.first(where: { $0.cell == n.cell }) else {
                lines.append("  new   \(name)  no stored result to compare with")
                continue
            }
            guard s.budget == n.budget, s.epochs == n.epochs else {
                lines.append("  skip  \(name)  stored at budget \(s.budget) (\(s.epochs) epochs), new at \(n.budget) (\(n.epochs) epochs)")
                continue
            }
            compared += 1
            var bad = false
            var parts: [String] = []
            for (what, a, b) in [("best", n.best, s.best), ("last", n.last, s.last)] {
                let tol = max(sigmas * (b.n > 1 ? b.std : 0), floor)
                let d = a.mean - b.mean
                let out = !(abs(d) <= tol) || !tol.isFinite
                bad = bad || out
                parts.append(String(format: "%@ %.2f vs %.2f (Δ %+.2f, tolerance ±%.2f)%@", what, a.mean, b.mean, d, tol, out ? " OUTSIDE" : ""))
            }
            if bad { failed.append(n.cell) }
            lines.append("  \(bad ? "FAIL" : "ok  ")  \(name)  " + parts.joined(separator: "; "))
        }
        for s in stored where !new.contains(where: { $0.cell == s.cell }) {
            lines.append("  miss  \(s.cell.description.padding(toLength: width, withPad: " ", startingAt: 0))  stored, but no new result")
        }
        return Outcome(lines: lines, failed: failed, compared: compared)
    }
}
