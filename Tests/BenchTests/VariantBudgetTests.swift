import Foundation
import Testing
@testable import Bench
@testable import Training

/// A suite with a variant column (PACT under a second recipe) and a labelled budget kept for comparison,
/// and synthetic records: at `reduced`, a teacher below the variant's baselines and seeds that disagree on
/// the sign of Δ; at `reduced-old`, a full grid of its own.
private func variantFixture() throws -> (Suite, URL) {
    let dir = tempDir("variants")
    let yaml = """
        name: variants
        dataset: fashion-mnist
        seeds: 2
        grid:
          - model: resnet20
            quantizers: [pact]
            bits: [4]
          - model: resnet20
            variant: cifar-recipe
            quantizers: [pact]
            bits: [4]
            student: {lr: 0.002}
        budgets:
          reduced: {teacher_epochs: 3, student_epochs: 6}
          reduced-old: {teacher_epochs: 1, student_epochs: 2}

        """
    writeText(yaml, dir.appendingPathComponent("variants.yaml"))
    let suite = try Suite.load(dir.appendingPathComponent("variants.yaml"))
    let results = dir.appendingPathComponent("results")
    let now: [String: [Double]] = [
        "resnet20/fp/teacher/seed0": [80, 85, 90],
        "resnet20/pact/W4A4/baseline/seed0": [80, 81, 82, 83, 84, 85], "resnet20/pact/W4A4/baseline/seed1": [80, 81, 82, 83, 84, 86],
        "resnet20/pact/W4A4/sqakd/seed0": [80, 81, 82, 83, 84, 86], "resnet20/pact/W4A4/sqakd/seed1": [80, 81, 82, 83, 84, 85.5],
        "resnet20/pact/W4A4/cifar-recipe/baseline/seed0": [90, 91, 91, 91, 91, 91],
        "resnet20/pact/W4A4/cifar-recipe/baseline/seed1": [90, 91, 91, 91, 91, 92],
        "resnet20/pact/W4A4/cifar-recipe/sqakd/seed0": [88, 89, 89, 89, 89, 89],
        "resnet20/pact/W4A4/cifar-recipe/sqakd/seed1": [88, 89, 89, 89, 89, 89],
    ]
    let old: [String: [Double]] = [
        "resnet20/fp/teacher/seed0": [70],
        "resnet20/pact/W4A4/baseline/seed0": [60, 61], "resnet20/pact/W4A4/sqakd/seed0": [62, 63],
    ]
    for (budget, curves) in [("reduced", now), ("reduced-old", old)] {
        let plan = try Plan(suite: suite, budget: budget, resultsRoot: results)
        for r in plan.runs {
            guard let c = curves[r.label] else { continue }
            try r.runDirectory.create()
            try r.runDirectory.writeRecord(syntheticRecord(r, curve: c))
        }
    }
    return (suite, dir)
}

@Suite("Variants and labelled budgets")
struct VariantBudgetTests {
    @Test func variantCellsHaveTheirOwnLabelsAndColumn() throws {
        let (suite, dir) = try variantFixture()
        let plan = try Plan(suite: suite, resultsRoot: dir.appendingPathComponent("results"))
        let labels = plan.students.map(\.label)
        #expect(labels.contains("resnet20/pact/W4A4/cifar-recipe/sqakd/seed1"))
        #expect(labels.contains("resnet20/pact/W4A4/sqakd/seed1"))
        let variant = plan.students.first { $0.cell.variant == "cifar-recipe" }!
        #expect(variant.config.lr == 0.002 && variant.cell.description == "resnet20 pact (cifar-recipe) W4A4 baseline")
        let only = try Plan(suite: suite, resultsRoot: dir, only: ["W4A4/cifar-recipe"])
        #expect(only.students.count == 4 && only.students.allSatisfy { $0.cell.variant == "cifar-recipe" })
    }

    @Test func aCellDefinedTwiceOrAVariantThatChangesNothingIsAnError() throws {
        let dir = tempDir("variants-bad")
        func plan(_ second: String) throws {
            writeText("""
                name: bad
                dataset: fashion-mnist
                grid:
                  - model: resnet20
                    quantizers: [pact]
                    bits: [4]
                  - model: resnet20
                \(second)
                budgets:
                  reduced: {teacher_epochs: 1, student_epochs: 1}

                """, dir.appendingPathComponent("bad.yaml"))
            _ = try Plan(suite: try Suite.load(dir.appendingPathComponent("bad.yaml")), resultsRoot: dir)
        }
        let twice = #expect(throws: SuiteError.self) { try plan("    quantizers: [pact]\n    bits: [4]\n    student: {lr: 0.5}") }
        #expect(twice?.description.contains("give one of them a 'variant'") == true, "\(twice?.description ?? "")")
        let same = #expect(throws: SuiteError.self) { try plan("    variant: same\n    quantizers: [pact]\n    bits: [4]") }
        #expect(same?.description.contains("a variant must change a setting") == true, "\(same?.description ?? "")")
        let name = #expect(throws: SuiteError.self) { try plan("    variant: Bad_Name\n    quantizers: [pact]\n    bits: [4]") }
        #expect(name?.description.contains("bad.yaml:8") == true, "\(name?.description ?? "")")
    }

    @Test func flagsNameABaselineAboveItsTeacherAndSeedsThatDisagree() throws {
        let (suite, dir) = try variantFixture()
        let r = try SuiteResults.load(suite: suite, resultsRoot: dir.appendingPathComponent("results"))
        #expect(r.columns.map(\.description) == ["pact", "pact (cifar-recipe)"])
        let flags = r.flags
        #expect(flags.count == 2, "\(flags)")
        #expect(flags.contains { $0.hasPrefix("resnet20 pact W4A4: the seeds disagree about the sign of Δ (per seed: +1.00, −0.50)") })
        #expect(flags.contains { $0.hasPrefix("resnet20 pact (cifar-recipe) W4A4: the baseline (91.50) beats its FP teacher (90.00)") })
        let md = Tables.markdown(r)
        #expect(md.contains("| resnet20 | W4A4 | 90.00 |"))
        #expect(md.contains("last-5 mean 83.10 ± 0.14 (n=2)"))   // mean(81…85) = 83.0, mean(81…84, 86) = 83.2
        // The teacher's plateau column: its 3 epochs are too few; a 6-epoch curve gains last − first.
        #expect(md.contains("| resnet20 | reduced | 3 | 90.00 (n=1) | 90.00 (n=1) | — (under 6 epochs) | not in the paper |"), "\(md)")
        let pactBaseline = r.cells[Column(quantizer: "pact").cell(model: "resnet20", bits: 4, method: .baseline)]!
        #expect(pactBaseline.lastFiveGain.values == [5, 6])
        #expect(md.contains("**Flags:**") && md.contains("beats its FP teacher"))
        #expect(r.releasedColumn(of: Column(quantizer: "pact", variant: "cifar-recipe")) == Column(quantizer: "pact"))
        #expect(r.releasedColumn(of: Column(quantizer: "pact")) == nil)
        #expect(md.contains("| resnet20 | W4A4 | baseline | pact (cifar-recipe) vs pact | 91.50 ± 0.71 (n=2) | 85.50 ± 0.71 (n=2) | +6.00 (p<0.05) | +6.00, +6.00 |"), "\(md)")
        #expect(md.contains("| resnet20 | W4A4 | SQAKD | pact (cifar-recipe) vs pact | 89.00 ± 0.00 (n=2) | 85.75 ± 0.35 (n=2) | +3.25 (p<0.05) | +3.00, +3.50 |"), "\(md)")
    }

    /// Per change, one sentence: its Δ range and the cells where it moves best top-1 significantly; a change
    /// whose cells have one seed a side gets no verdict.
    @Test func eachChangeIsSummarisedWithItsSignificantCells() throws {
        let (suite, dir) = try variantFixture()
        let results = dir.appendingPathComponent("results")
        let r = try SuiteResults.load(suite: suite, resultsRoot: results)
        let summaries = r.variantSummaries
        #expect(summaries.map(\.change) == ["cifar-recipe"])
        #expect(summaries[0].sentence == "**cifar-recipe** (pact W4A4; baseline and SQAKD): Δ from +3.25 to +6.00 over 2 cells; moves best top-1 "
                + "significantly in both tested cells (pact baseline +6.00, pact SQAKD +3.25).", "\(summaries[0].sentence)")
        #expect(Tables.markdown(r).contains("**Which change moves accuracy**"))
        try Report(suites: [suite], resultsRoot: results, reportFile: dir.appendingPathComponent("REPORT.md")).write()
        #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent("variants/plots/variants-delta.png").path))
        #expect(ReportPlots.variantsChart(r).bars.map(\.label) == ["pact (cifar-recipe) W4A4 baseline", "pact (cifar-recipe) W4A4 SQAKD"])
        let csv = try String(contentsOf: results.appendingPathComponent("variants/variants.csv"), encoding: .utf8)
        #expect(csv.contains("resnet20,4,baseline,cifar-recipe,pact,cifar-recipe,pact,2,91.50,0.71,2,85.50,0.71,6.00,p<0.05,6.00;6.00\n"), "\(csv)")
        let report = try String(contentsOf: dir.appendingPathComponent("REPORT.md"), encoding: .utf8)
        #expect(report.contains("  - Variant **cifar-recipe** against the released behaviour: moves best top-1 significantly in both tested cells"))
        // At the labelled budget the variant has no runs: nothing to summarise there.
        let old = try SuiteResults.labelledBudgets(suite: suite, resultsRoot: results)[0]
        #expect(old.variantSummaries.isEmpty)
        // One seed a side: a Δ, no verdict.
        let one = SuiteResults.VariantSummary(change: "x", comparisons: summaries[0].comparisons.map { c in
            var c = c
            c.variant.records = Array(c.variant.records.prefix(1))
            return c
        })
        #expect(one.verdict == "no verdict yet (no cell has two seeds a side)")
    }

    /// Past four quantizer columns the students table has a row per cell; the paper's few-column layout stays wide.
    @Test func manyColumnsGiveARowPerCell() throws {
        let (suite, dir) = try variantFixture()
        let r = try SuiteResults.load(suite: suite, resultsRoot: dir.appendingPathComponent("results"))
        #expect(Tables.markdown(r).contains("| model | bits | teacher | pact baseline | pact SQAKD | pact Δ |"))
        let long = Tables.studentsLong(r, mixedBudgets: false)
        #expect(long.hasPrefix("| model | bits | quantizer | teacher | baseline | SQAKD | Δ |\n"), "\(long)")
        #expect(long.contains("| resnet20 | W4A4 | pact (cifar-recipe) | 90.00 | best 91.50 ± 0.71 (n=2)<br>"), "\(long)")
        #expect(long.contains("| best −2.50 (n.s.)<br>last −2.50 (n.s.) |\n"), "\(long)")   // SQAKD 89 − baseline 91.5
        // Five quantizer columns, no runs yet: the table switches to a row per cell.
        let wide = tempDir("variants-wide")
        writeText("""
            name: wide
            dataset: fashion-mnist
            grid:
              - model: resnet20
                quantizers: [ewgs, pact, lsq, dorefa, ste]
                bits: [4]
            budgets:
              reduced: {teacher_epochs: 1, student_epochs: 1}

            """, wide.appendingPathComponent("wide.yaml"))
        let five = try SuiteResults.load(suite: try Suite.load(wide.appendingPathComponent("wide.yaml")), resultsRoot: wide)
        let md = Tables.markdown(five)
        #expect(five.columns.count == 5 && md.contains("| model | bits | quantizer | teacher | baseline | SQAKD | Δ |"), "\(md)")
        #expect(md.contains("| resnet20 | W4A4 | ste | not run | not run | not run | — |"), "\(md)")
    }

    /// A student below twice the guessing rate (10 % on Fashion-MNIST's 10 classes) is flagged by name.
    @Test func studentsNearChanceAreFlagged() throws {
        let dir = tempDir("variants-chance")
        writeText("""
            name: chance
            dataset: fashion-mnist
            seeds: 1
            grid:
              - model: resnet20
                quantizers: [pact, lsq]
                bits: [2]
            budgets:
              reduced: {teacher_epochs: 1, student_epochs: 2}

            """, dir.appendingPathComponent("chance.yaml"))
        let suite = try Suite.load(dir.appendingPathComponent("chance.yaml"))
        let results = dir.appendingPathComponent("results")
        let curves: [String: [Double]] = [
            "resnet20/fp/teacher/seed0": [90], "resnet20/pact/W2A2/baseline/seed0": [10, 12.5], "resnet20/pact/W2A2/sqakd/seed0": [11, 30],
            "resnet20/lsq/W2A2/baseline/seed0": [80, 85], "resnet20/lsq/W2A2/sqakd/seed0": [80, 86],
        ]
        for run in try Plan(suite: suite, resultsRoot: results).runs {
            try run.runDirectory.create()
            try run.runDirectory.writeRecord(syntheticRecord(run, curve: curves[run.label]!))
        }
        let r = try SuiteResults.load(suite: suite, resultsRoot: results)
        #expect(r.chanceTop1 == 10)
        #expect(r.flags == ["resnet20 pact W2A2: near chance (baseline 12.50; guessing gives 10.00): the student did not learn at this "
                            + "budget, so its Δ compares failures."], "\(r.flags)")
    }

    @Test func aLabelledBudgetIsReportedOnItsOwnAndNotAsStrays() throws {
        let (suite, dir) = try variantFixture()
        let results = dir.appendingPathComponent("results")
        let r = try SuiteResults.load(suite: suite, resultsRoot: results)
        #expect(r.strays == 0 && r.budgetsUsed == ["reduced"])
        let labelled = try SuiteResults.labelledBudgets(suite: suite, resultsRoot: results)
        #expect(labelled.count == 1 && labelled[0].budgetsUsed == ["reduced-old"])
        #expect(labelled[0].difference(model: "resnet20", column: Column(quantizer: "pact"), bits: 4)?.delta == 2)
        let report = dir.appendingPathComponent("REPORT.md")
        try Report(suites: [suite], resultsRoot: results, reportFile: report).write()
        let text = try String(contentsOf: report, encoding: .utf8)
        #expect(text.contains("Kept for comparison, budget `reduced-old` (1 teacher / 2 student epochs)"))
        #expect(text.contains("### Kept for comparison: budget `reduced-old`"))
        for f in ["table.md", "cells.csv", "plots/sqakd-gain.png"] {
            #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent("variants/reduced-old/\(f)").path), "\(f)")
        }
        let cells = try String(contentsOf: results.appendingPathComponent("variants/cells.csv"), encoding: .utf8)
        #expect(cells.contains(",cifar-recipe,89.00,0.00,90.00\n"), "\(cells)")
    }

    /// Every link of the report resolves, for a suite with its own runs and for one that reads another's
    /// (`runs_of`): its tables and plots are in its own folder, its runs in the other's.
    @Test func everyReportLinkResolvesWithASharedRunsFolder() throws {
        let (suite, dir) = try variantFixture()
        let results = dir.appendingPathComponent("results")
        let yaml = try String(contentsOf: dir.appendingPathComponent("variants.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "name: variants\n", with: "name: reader\nruns_of: variants\n")
        writeText(yaml, dir.appendingPathComponent("reader.yaml"))
        let reader = try Suite.load(dir.appendingPathComponent("reader.yaml"))
        let report = dir.appendingPathComponent("REPORT.md")
        try Report(suites: [suite, reader], resultsRoot: results, reportFile: report).write()
        let text = try String(contentsOf: report, encoding: .utf8)
        let links = text.components(separatedBy: "](").dropFirst().compactMap { $0.split(separator: ")", maxSplits: 1).first.map(String.init) }
        #expect(links.contains("results/reader/plots/sqakd-gain.png") && links.contains("results/reader/table.md"), "\(links)")
        for link in links {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(link).path), "broken link \(link)")
        }
        #expect(text.contains("run records in `results/variants/runs/`"))
    }

    @Test func staleSuitePlotsAreRemoved() throws {
        let (suite, dir) = try variantFixture()
        let results = dir.appendingPathComponent("results")
        let stale = results.appendingPathComponent("variants/plots/curves-resnet20-ewgs-w1a1.png")
        try FileManager.default.createDirectory(at: stale.deletingLastPathComponent(), withIntermediateDirectories: true)
        writeText("old", stale)
        try Report(suites: [suite], resultsRoot: results, reportFile: nil).write()
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent("variants/plots/curves-resnet20-pact-cifar-recipe-w4a4.png").path))
    }

    @Test func checkReadsCellsCSVWrittenBeforeVariants() throws {
        let (suite, dir) = try variantFixture()
        let csv = dir.appendingPathComponent("old-cells.csv")
        writeText(Tables.cellsHeaderV1.joined(separator: ",") + "\n"
                  + "variants,fashion-mnist,resnet20,pact,4,baseline,reduced,6,2,2,85.50,0.71,85.50,0.71,,85.0000;86.0000,85.0000;86.0000\n", csv)
        let stored = try RegressionCheck.stored(csv.path, suite: suite, budget: nil)
        #expect(stored.count == 1 && stored[0].cell == CellKey(model: "resnet20", quantizer: "pact", bits: 4, method: .baseline))
        let r = try SuiteResults.load(suite: suite, resultsRoot: dir.appendingPathComponent("results"))
        let outcome = RegressionCheck().compare(new: RegressionCheck.numbers(r), stored: stored)
        #expect(outcome.compared == 1 && outcome.passed)
    }
}
