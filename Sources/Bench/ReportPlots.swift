import Foundation
import Plotting

/// The PNG plots of a suite's report: test top-1 per epoch for each cell (baseline against SQAKD, and every
/// other method of a method comparison: mean line with a ±1 std band over seeds, the FP teacher as a
/// reference line), each teacher's curve, a chart of SQAKD's gain over its baseline per cell, and for a
/// method comparison (Table 7) a chart of each method's Δ to its baseline (`methods-delta.png`), for a suite
/// with variant columns a chart of each variant's Δ to the released behaviour (`variants-delta.png`).
public enum ReportPlots {
    public struct PlotFile: Sendable {
        public var name: String
        public var title: String
    }

    static let baselineColor = Color(0, 114, 178)
    static let sqakdColor = Color(213, 94, 0)
    static let teacherColor = Color(90, 90, 90)
    static let gainColor = Color(0, 158, 115)
    static let lossColor = Color(204, 121, 167)

    static func slug(_ s: String) -> String { s.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined() }

    static func pairs(_ r: SuiteResults) -> [(model: String, column: Column, bits: Int)] {
        var out: [(model: String, column: Column, bits: Int)] = []
        for c in r.studentCells where !out.contains(where: { $0.model == c.model && $0.column == c.column && $0.bits == c.bits }) {
            let any = r.suite.methods.contains { r.cells[c.with($0)] != nil }
            if any { out.append((c.model, c.column, c.bits)) }
        }
        return out
    }

    static func curvesFile(_ p: (model: String, column: Column, bits: Int)) -> String {
        "curves-\(slug(p.model))-\(slug(p.column.slug))-w\(p.bits)a\(p.bits).png"
    }

    /// The plots a suite's results give, in report order.
    public static func files(_ r: SuiteResults) -> [PlotFile] {
        var out: [PlotFile] = []
        if r.rows.contains(where: { row in r.columns.contains { r.difference(model: row.model, column: $0, bits: row.bits) != nil } }) {
            out.append(PlotFile(name: "sqakd-gain.png", title: "\(r.suite.name): SQAKD − baseline, best test top-1 per cell"))
        }
        if r.isMethodComparison, r.studentCells.contains(where: { r.methodDifference($0) != nil }) {
            out.append(PlotFile(name: "methods-delta.png", title: "\(r.suite.name): each method − the quantizer alone, best test top-1"))
        }
        if !r.variantComparisons.isEmpty {
            out.append(PlotFile(name: "variants-delta.png", title: "\(r.suite.name): each variant − the released behaviour, best test top-1"))
        }
        for p in pairs(r) {
            out.append(PlotFile(name: curvesFile(p), title: "\(p.model) \(p.column) W\(p.bits)A\(p.bits): test top-1 per epoch, baseline vs SQAKD"))
        }
        for t in r.teacherCells where r.cells[t] != nil {
            out.append(PlotFile(name: "teacher-\(slug(t.model)).png", title: "\(t.model) FP teacher: test top-1 per epoch"))
        }
        return out
    }

    /// Mean and std per epoch over the seeds (each seed's curve as long as the cell's epoch count).
    static func meanCurve(_ c: CellResult) -> (points: [(x: Double, y: Double)], band: [(x: Double, lower: Double, upper: Double)]) {
        let curves = c.curves.filter { $0.count == c.epochs }
        var points: [(x: Double, y: Double)] = [], band: [(x: Double, lower: Double, upper: Double)] = []
        guard !curves.isEmpty else { return ([], []) }
        for e in 0..<c.epochs {
            let s = Summary(curves.map { $0[e] })
            points.append((Double(e + 1), s.mean))
            if s.n > 1 { band.append((Double(e + 1), s.mean - s.std, s.mean + s.std)) }
        }
        return (points, band)
    }

    static func series(_ label: String, _ c: CellResult, color: Color, marker: Marker) -> Series {
        let (points, band) = meanCurve(c)
        return Series(label: "\(label) (n=\(c.records.count))", points: points, color: color, band: band, marker: marker)
    }

    static func teacherLine(_ r: SuiteResults, model: String) -> [(y: Double, label: String, color: Color)] {
        guard let t = r.cells[CellKey(model: model, quantizer: "fp", bits: 32, method: .fp)] else { return [] }
        return [(t.best.mean, String(format: "FP teacher, best %.2f", t.best.mean), teacherColor)]
    }

    public static func write(_ r: SuiteResults, to dir: URL) throws -> [URL] {
        var written: [URL] = []
        let dataset = r.suite.dataset
        for file in files(r) {
            let url = dir.appendingPathComponent(file.name)
            if file.name == "sqakd-gain.png" {
                try gainChart(r).writePNG(to: url)
            } else if file.name == "methods-delta.png" {
                try methodsChart(r).writePNG(to: url)
            } else if file.name == "variants-delta.png" {
                try variantsChart(r).writePNG(to: url)
            } else if file.name.hasPrefix("teacher-") {
                let t = r.teacherCells.first { "teacher-\(slug($0.model)).png" == file.name }!
                let c = r.cells[t]!
                let plot = LinePlot(title: "\(t.model) FP teacher on \(dataset) (\(c.budget) budget)", xLabel: "epoch",
                                    yLabel: "test top-1 (%)", series: [series("FP teacher", c, color: teacherColor, marker: .diamond)])
                try plot.writePNG(to: url)
            } else {
                let p = pairs(r).first { curvesFile($0) == file.name }!
                var list: [Series] = []
                var budget = ""
                for m in r.suite.methods {
                    guard let c = r.cells[p.column.cell(model: p.model, bits: p.bits, method: m)] else { continue }
                    switch m {
                    case .baseline, .sqakd:
                        list.append(series(m == .sqakd ? "SQAKD" : "baseline", c, color: m == .sqakd ? sqakdColor : baselineColor,
                                           marker: m == .sqakd ? .square : .circle))
                    default:
                        let i = list.count
                        list.append(series(m.title, c, color: methodPalette[i % methodPalette.count], marker: methodMarkers[i % methodMarkers.count]))
                    }
                    budget = c.budget
                }
                var plot = LinePlot(title: "\(p.model) \(p.column) W\(p.bits)A\(p.bits) on \(dataset) (\(budget) budget)", xLabel: "epoch",
                                    yLabel: "test top-1 (%), mean ± std over seeds", series: list)
                plot.referenceLines = teacherLine(r, model: p.model)
                try plot.writePNG(to: url)
            }
            written.append(url)
        }
        return written
    }

    /// Colours and markers of the other methods' curves (after baseline and SQAKD's own).
    static let methodPalette = [Color(0, 158, 115), Color(204, 121, 167), Color(86, 180, 233), Color(230, 159, 0),
                                Color(240, 228, 66), Color(0, 0, 0), Color(150, 75, 0), Color(120, 120, 200)]
    static let methodMarkers: [Marker] = [.diamond, .triangle, .circle, .square]

    /// Δ = method − the quantizer alone (best test top-1) per method and cell, whiskers ±1 s.e. of the
    /// difference over seeds (both sides need two seeds), * where Welch's t gives p < 0.05.
    static func methodsChart(_ r: SuiteResults) -> BarChart {
        var bars: [Bar] = []
        let groups = r.cellGroupsInGrid
        for g in groups {
            for m in r.suite.methods where m != .baseline {
                let cell = g.column.cell(model: g.model, bits: g.bits, method: m)
                guard let d = r.methodDifference(cell), let b = r.cells[cell.with(.baseline)], let c = r.cells[cell] else { continue }
                let label = groups.count == 1 ? m.title : "\(g.model) \(g.column) W\(g.bits)A\(g.bits) \(m.title)"
                bars.append(deltaBar(label, d, c.best, minus: b.best))
            }
        }
        let baseline = groups.count == 1 ? "\(groups[0].column) W\(groups[0].bits)A\(groups[0].bits) alone" : "the quantizer alone"
        return BarChart(title: "\(r.suite.name): method − \(baseline) (best test top-1)",
                        xLabel: "method (whiskers: ±1 s.e. over seeds; * p<0.05)", yLabel: "Δ top-1 (points)", bars: bars,
                        legend: [("above the quantizer alone", gainColor), ("below", lossColor)])
    }

    /// A bar of Δ = `a` − `b`: whiskers ±1 s.e. of the difference (both sides need two seeds), coloured by its
    /// sign, annotated with * where Welch's t gives p < 0.05.
    static func deltaBar(_ label: String, _ d: Difference, _ a: Summary, minus b: Summary) -> Bar {
        let se: Double? = a.n > 1 && b.n > 1 ? (a.sem * a.sem + b.sem * b.sem).squareRoot() : nil
        return Bar(label: label, value: d.delta, errorLow: se.map { d.delta - $0 }, errorHigh: se.map { d.delta + $0 },
                   color: d.delta >= 0 ? gainColor : lossColor, annotation: String(format: "%+.2f", d.delta) + (d.significant == true ? "*" : ""))
    }

    /// Δ = variant − released (best test top-1) per variant cell, whiskers ±1 s.e. of the difference over
    /// seeds (both sides need two seeds), * where Welch's t gives p < 0.05.
    static func variantsChart(_ r: SuiteResults) -> BarChart {
        let comparisons = r.variantComparisons
        let oneModel = Set(comparisons.map(\.variant.cell.model)).count == 1
        let bars = comparisons.map { c -> Bar in
            let k = c.variant.cell
            return deltaBar((oneModel ? "" : "\(k.model) ") + "\(k.column) W\(k.bits)A\(k.bits) \(k.method.title)", c.difference,
                            c.variant.best, minus: c.released.best)
        }
        return BarChart(title: "\(r.suite.name): variant − released behaviour (best test top-1)",
                        xLabel: "variant cell (whiskers: ±1 s.e. over seeds; * p<0.05)", yLabel: "Δ top-1 (points)", bars: bars,
                        legend: [("variant above the released code", gainColor), ("below", lossColor)])
    }

    static func gainChart(_ r: SuiteResults) -> BarChart {
        var bars: [Bar] = []
        for row in r.rows {
            for q in r.columns {
                guard let d = r.difference(model: row.model, column: q, bits: row.bits) else { continue }
                let b = r.cells[q.cell(model: row.model, bits: row.bits, method: .baseline)]!
                let s = r.cells[q.cell(model: row.model, bits: row.bits, method: .sqakd)]!
                let label = r.rows.map(\.model).allSatisfy({ $0 == row.model }) ? "\(q) W\(row.bits)A\(row.bits)" : "\(row.model) \(q) W\(row.bits)A\(row.bits)"
                bars.append(deltaBar(label, d, s.best, minus: b.best))
            }
        }
        return BarChart(title: "\(r.suite.name): SQAKD − baseline (best test top-1)", xLabel: "cell (whiskers: ±1 s.e. over seeds; * p<0.05)",
                        yLabel: "Δ top-1 (points)", bars: bars,
                        legend: [("SQAKD above baseline", gainColor), ("SQAKD below baseline", lossColor)])
    }
}
