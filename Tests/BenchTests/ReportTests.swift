import Foundation
import Plotting
import Testing
@testable import Bench
@testable import Training

/// A small suite with paper values, and synthetic finished records for some of its cells: the teacher,
/// EWGS W2A2 baseline and SQAKD over 3 seeds, PACT W4A4 baseline over 1 seed (its SQAKD cell not run).
private func fixture() throws -> (SuiteResults, URL) {
    let dir = tempDir("report")
    writeText("table,dataset,model,quantizer,bits,method,metric,value,source\n"
              + "9,fashion-mnist,resnet20,ewgs,2,sqakd,top1,90.00,test value\n"
              + "9,fashion-mnist,resnet20,fp,32,fp,top1,92.50,test value\n"
              + "8,fashion-mnist,resnet20,pact,4,baseline,top1,11.00,another table\n", dir.appendingPathComponent("paper.csv"))
    let yaml = """
        name: golden
        title: "Golden suite"
        dataset: fashion-mnist
        seeds: 3
        grid:
          - model: resnet20
            quantizers: [ewgs]
            bits: [2]
          - model: resnet20
            quantizers: [pact]
            bits: [4]
        budgets:
          reduced: {teacher_epochs: 3, student_epochs: 2}
        paper: {table: "9", results: paper.csv}

        """
    writeText(yaml, dir.appendingPathComponent("golden.yaml"))
    let suite = try Suite.load(dir.appendingPathComponent("golden.yaml"))
    let plan = try Plan(suite: suite, budget: "reduced", resultsRoot: dir.appendingPathComponent("results"))
    let curves: [String: [Double]] = [
        "resnet20/fp/teacher/seed0": [80, 88, 91.5],
        "resnet20/ewgs/W2A2/baseline/seed0": [88.0, 89.0], "resnet20/ewgs/W2A2/baseline/seed1": [88.5, 88.25],
        "resnet20/ewgs/W2A2/baseline/seed2": [87.0, 88.5],
        "resnet20/ewgs/W2A2/sqakd/seed0": [89.5, 90.0], "resnet20/ewgs/W2A2/sqakd/seed1": [89.75, 90.25],
        "resnet20/ewgs/W2A2/sqakd/seed2": [90.0, 90.5],
        "resnet20/pact/W4A4/baseline/seed0": [90.0, 89.0],
    ]
    for r in plan.runs {
        guard let c = curves[r.label] else { continue }
        try r.runDirectory.create()
        try r.runDirectory.writeRecord(syntheticRecord(r, curve: c))
    }
    return (try SuiteResults.load(suite: suite, resultsRoot: dir.appendingPathComponent("results")), dir)
}

/// Replaces the temporary paths so the text can be compared with a golden file.
private func normalised(_ s: String, _ dir: URL) -> String {
    s.replacingOccurrences(of: dir.appendingPathComponent("results/golden/runs").path, with: "RUNS")
        .replacingOccurrences(of: dir.appendingPathComponent("golden.yaml").path, with: "SUITE")
}

private func checkGolden(_ text: String, _ name: String) throws {
    let url = repoRoot.appendingPathComponent("Tests/BenchTests/Golden/\(name)")
    if ProcessInfo.processInfo.environment["SQAKD_UPDATE_GOLDEN"] == "1" { try text.write(to: url, atomically: true, encoding: .utf8) }
    let golden = try String(contentsOf: url, encoding: .utf8)
    #expect(text == golden, "\(name) differs from its golden file; actual:\n\(text)")
}

@Suite("Report")
struct ReportTests {
    @Test func statistics() {
        let a = Summary([90.0, 90.25, 90.5]), b = Summary([88.0, 88.5, 88.25])
        #expect(abs(a.mean - 90.25) < 1e-12 && abs(a.std - 0.25) < 1e-12 && a.n == 3)
        let d = Difference(a, minus: b)
        #expect(abs(d.delta - 2.0) < 1e-12)
        // Equal variances, n = 3 each: t = 2 / sqrt(2·0.0625/3) = 9.798, df = 4 → significant.
        #expect(abs(d.t! - 9.797958971) < 1e-6 && abs(d.df! - 4) < 1e-9 && d.significant == true)
        let close = Difference(Summary([90.0, 91.0]), minus: Summary([90.2, 90.9]))
        #expect(close.significant == false && close.mark == "n.s.")
        #expect(Difference(Summary([90.0]), minus: Summary([89.0, 90.0])).mark == "n<2")
        #expect(abs(Difference.tCritical95(df: 4) - 2.776) < 1e-9 && Difference.tCritical95(df: 1000) < 1.99)
        #expect(Summary([89.46]).formatted == "89.46 (n=1)")
    }

    @Test func tablesMatchGoldenText() throws {
        let (r, dir) = try fixture()
        #expect(r.cells.count == 4 && r.strays == 0)
        #expect(r.paper(CellKey(model: "resnet20", quantizer: "ewgs", bits: 2, method: .sqakd)) == 90.0)
        #expect(r.paper(CellKey(model: "resnet20", quantizer: "pact", bits: 4, method: .baseline)) == nil, "table 8 is not this suite's")
        try checkGolden(normalised(Tables.markdown(r), dir), "table.md")
        try checkGolden(Tables.wideCSV(r), "table.csv")
        try checkGolden(Tables.cellsCSV(r), "cells.csv")
    }

    @Test func reportWritesReadablePlotsAndDocument() throws {
        let (r, dir) = try fixture()
        let files = try Report(suites: [r.suite], resultsRoot: dir.appendingPathComponent("results"),
                               reportFile: dir.appendingPathComponent("REPORT.md")).write()
        let pngs = files.filter { $0.pathExtension == "png" }
        #expect(Set(pngs.map(\.lastPathComponent)) == ["sqakd-gain.png", "curves-resnet20-ewgs-w2a2.png",
                                                      "curves-resnet20-pact-w4a4.png", "teacher-resnet20.png"])
        for png in pngs {
            let c = try Canvas.readPNG(from: png)
            #expect(c.width == 900 && c.height == 560, "\(png.lastPathComponent)")
            var colours = Set<Int>()
            for i in stride(from: 0, to: c.pixels.count, by: 3) {
                colours.insert(Int(c.pixels[i]) << 16 | Int(c.pixels[i + 1]) << 8 | Int(c.pixels[i + 2]))
            }
            let inked = stride(from: 0, to: c.pixels.count, by: 3).filter { c.pixels[$0] < 200 || c.pixels[$0 + 1] < 200 || c.pixels[$0 + 2] < 200 }.count
            // Antialiasing leaves many intermediate shades; ink covers more than 1% of the image.
            #expect(colours.count > 30 && inked * 100 > c.width * c.height, "\(png.lastPathComponent) looks blank: \(colours.count) colours, \(inked) inked pixels")
        }
        // The curves show both methods' colours; the gain chart the "SQAKD above" colour.
        let curves = try Canvas.readPNG(from: pngs.first { $0.lastPathComponent == "curves-resnet20-ewgs-w2a2.png" }!)
        let px = stride(from: 0, to: curves.pixels.count, by: 3).map { Color(curves.pixels[$0], curves.pixels[$0 + 1], curves.pixels[$0 + 2]) }
        #expect(px.contains(ReportPlots.baselineColor) && px.contains(ReportPlots.sqakdColor))
        let doc = try String(contentsOf: dir.appendingPathComponent("REPORT.md"), encoding: .utf8)
        #expect(doc.contains("our runs **agree** with the paper's claim: SQAKD is above its baseline in the one cell compared (significantly in 1)"))
        #expect(doc.contains("resnet20 pact W4A4 SQAKD: not run"))
        #expect(doc.contains("![golden: SQAKD − baseline, best test top-1 per cell](results/golden/plots/sqakd-gain.png)"))
        #expect(doc.contains("Against the paper's numbers: 2 cells"))
    }

    /// "agree" needs a significant Δ in every cell; all above with fewer significant is agreement in direction only.
    @Test func verdictWording() {
        var c = Report.ClaimSummary()
        c.compared = 3; c.higher = 3; c.significantlyHigher = 3
        #expect(c.verdict == "**agree** with the paper's claim: SQAKD is above its baseline in all 3 cells (significantly in 3)")
        c.significantlyHigher = 1
        #expect(c.verdict == "**agree in direction** with the paper's claim: SQAKD is above its baseline in all 3 cells, significantly in only 1")
        c.significantlyHigher = 0
        #expect(c.verdict == "**agree in direction** with the paper's claim: SQAKD is above its baseline in all 3 cells, none significantly")
        c.higher = 1; c.lower = 2; c.significantlyLower = 1
        #expect(c.verdict.hasPrefix("**disagree** with the paper's claim: SQAKD is below its baseline in 2 of 3 cells (significantly in 1)"))
    }

    @Test func checkPassesOnIdenticalResultsAndFailsOnADoctoredBaseline() throws {
        let (r, dir) = try fixture()
        let new = RegressionCheck.numbers(r)
        let csv = dir.appendingPathComponent("stored/cells.csv")
        writeText(Tables.cellsCSV(r), csv)
        let gate = RegressionCheck(sigmas: 2, floor: 0.5)
        let same = gate.compare(new: new, stored: try RegressionCheck.stored(csv.path, suite: r.suite, budget: nil))
        #expect(same.passed && same.compared == 4)
        // Also against the records folder itself.
        #expect(gate.compare(new: new, stored: try RegressionCheck.stored(dir.appendingPathComponent("results").path, suite: r.suite, budget: nil)).passed)

        // Doctor the stored EWGS W2A2 SQAKD seeds upwards by 1.5 points: outside max(2σ = 0.5, 0.5). Values alone
        // disagree with the file's best_mean: refused as hand-edited, naming the line.
        let original = try String(contentsOf: csv, encoding: .utf8)
        writeText(original.replacingOccurrences(of: "90.0000;90.2500;90.5000", with: "91.5000;91.7500;92.0000"), csv)
        #expect {
            try RegressionCheck.stored(csv.path, suite: r.suite, budget: nil)
        } throws: { "\($0)".contains("best_mean 90.25 is not the mean of best_values (91.75): the file was edited by hand") }
        // The mean alone edited: refused too.
        writeText(original.replacingOccurrences(of: ",90.25,", with: ",95.25,"), csv)
        #expect(throws: SuiteError.self) { try RegressionCheck.stored(csv.path, suite: r.suite, budget: nil) }
        // Values and means doctored together (a consistent file): the check compares and fails the cell.
        var rows = CSV.parse(original)
        let head = rows[0]
        for i in rows.indices.dropFirst() where rows[i][head.firstIndex(of: "best_values")!] == "90.0000;90.2500;90.5000" {
            for name in ["best", "last"] where rows[i][head.firstIndex(of: "\(name)_values")!] == "90.0000;90.2500;90.5000" {
                rows[i][head.firstIndex(of: "\(name)_values")!] = "91.5000;91.7500;92.0000"
                rows[i][head.firstIndex(of: "\(name)_mean")!] = "91.75"
            }
        }
        writeText(rows.map { CSV.line($0) }.joined(), csv)
        let doctored = gate.compare(new: new, stored: try RegressionCheck.stored(csv.path, suite: r.suite, budget: nil))
        #expect(!doctored.passed && doctored.failed == [CellKey(model: "resnet20", quantizer: "ewgs", bits: 2, method: .sqakd)])
        #expect(doctored.lines.contains { $0.hasPrefix("  FAIL  resnet20 ewgs W2A2 SQAKD") })
        // A wider floor lets it pass; a single-seed cell uses the floor.
        #expect(RegressionCheck(sigmas: 2, floor: 2).compare(new: new, stored: try RegressionCheck.stored(csv.path, suite: r.suite, budget: nil)).passed)
        #expect(throws: SuiteError.self) { try RegressionCheck.stored(dir.appendingPathComponent("nowhere").path, suite: r.suite, budget: nil) }
    }
}
