import Foundation
import Testing
@testable import Bench
import Training

/// The Table 7 suites (rows = distillation methods): their plans follow the authors' scripts, their smoke
/// budgets train end to end on generated CIFAR binaries (every method, fsp and ft with their init stage), and
/// the report gains the method table and the Δ chart.
@Suite(.serialized) struct Table7Tests {
    static let methods: [Method] = [.baseline, .sqakd, .kd, .at, .nst, .sp, .rkd, .fitnet, .cc, .vid, .fsp, .ft, .crd, .cktf]

    /// Every row's distill and weights are the script's; init_epochs only on fsp and ft; the baseline and SQAKD
    /// cells resolve to the runs of the Table 4 suite whose runs folder they share.
    @Test(arguments: [("table7-cifar10", "table4-cifar10", "resnet20", 2), ("table7-cifar100", "table4-cifar100", "vgg13", 1)])
    func plansFollowTheScripts(suite: String, shared: String, model: String, bits: Int) throws {
        let s = try Suite.load(repoRoot.appendingPathComponent("suites/\(suite).yaml"))
        #expect(s.methods == Self.methods && s.runsOf == shared && s.paperTable == "7")
        let plan = try Plan(suite: s, budget: "reduced", seeds: 1, resultsRoot: tempDir("t7plan"))
        #expect(plan.students.count == Self.methods.count)
        for r in plan.students {
            let c = r.config
            #expect(c.model == model && c.quantizer == "ewgs" && c.bits == bits && c.optimizer == .adam)
            #expect(c.distill.rawValue == (r.cell.method == .baseline ? "none" : r.cell.method.rawValue))
            let w = c.lossWeights
            switch r.cell.method {
            case .baseline: #expect(w == (1, 0, 0))
            case .sqakd: #expect(w == (0, 1, 0))
            case .kd: #expect(w == (1, 1, 0))
            default: #expect(w.gamma == 1 && w.alpha == 0 && w.beta == (r.cell.method == .fsp ? 0 : c.distill.defaultBeta))
            }
            #expect(c.initStageEpochs == (r.cell.method == .fsp || r.cell.method == .ft ? 1 : 0))
            #expect((c.values["init_epochs"] != nil) == (r.cell.method == .fsp || r.cell.method == .ft))
        }
        let t4 = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/\(shared).yaml")), budget: "reduced", seeds: 1,
                          resultsRoot: tempDir("t4plan"))
        let t4IDs = Set(t4.runs.map(\.id))
        #expect(t4IDs.contains(plan.teachers[0].id))
        for m in [Method.baseline, .sqakd] { #expect(t4IDs.contains(plan.students.first { $0.cell.method == m }!.id), "\(m)") }
    }

    /// The Fashion-MNIST Table 7 reuses fashion-mnist's reduced teacher and its EWGS W2A2 baseline and SQAKD runs.
    @Test func fashionMNISTSharesTheMainSuitesRuns() throws {
        let s = try Suite.load(repoRoot.appendingPathComponent("suites/table7-fashion-mnist.yaml"))
        #expect(s.methods == Self.methods && s.runsOf == "fashion-mnist" && s.seeds == 3)
        let results = tempDir("t7f")
        let plan = try Plan(suite: s, resultsRoot: results)
        let main = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/fashion-mnist.yaml")), resultsRoot: results)
        let ids = Set(main.runs.map(\.id))
        #expect(plan.teachers.count == 1 && ids.contains(plan.teachers[0].id) && plan.teachers[0].config.epochs == 30)
        let shared = plan.students.filter { ids.contains($0.id) }
        #expect(Set(shared.map(\.cell.method)) == [.baseline, .sqakd] && shared.count == 6)
        #expect(plan.students.allSatisfy { $0.config.trainLimit == 15000 && $0.config.epochs == 2 && $0.directory.path.contains("/fashion-mnist/runs/") })
    }

    @Test(arguments: [("table7-cifar10", "table4-cifar10"), ("table7-cifar100", "table4-cifar100")])
    func smokeBudgetOnGeneratedFiles(suite: String, shared: String) throws {
        let data = tempDir("t7data"), results = tempDir("t7")
        defer { for d in [data, results] { try? FileManager.default.removeItem(at: d) } }  // GBs of checkpoints
        if suite == "table7-cifar10" { makeCIFAR10(root: data) } else { makeCIFAR100(root: data) }
        let run = try sqakd(["sweep", "run", suite, "--budget", "smoke", "--seeds", "1", "--results", results.path,
                             "--data-root", data.path, "--jobs", "2"])
        #expect(run.status == 0, "\(run.output)")
        let plan = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/\(suite).yaml")), budget: "smoke", seeds: 1,
                            resultsRoot: results)
        #expect(plan.runs.count == 1 + Self.methods.count && plan.runsDirectory.path.hasSuffix("\(shared)/runs"))
        for r in plan.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.status == "finished" && rec.epochs.count == 1, "\(r.label)")
            let initStage = r.cell.method == .fsp || r.cell.method == .ft
            #expect((rec.initStage?.count ?? 0) == (initStage ? 1 : 0), "\(r.label)")
            if initStage {
                let log = try String(contentsOf: r.runDirectory.log, encoding: .utf8)
                #expect(log.contains("init \(r.cell.method.rawValue) epoch 1/1"), "\(log)")
            }
        }
        let report = try sqakd(["report", suite, "--results", results.path, "--output", "none"])
        #expect(report.status == 0, "\(report.output)")
        let dir = results.appendingPathComponent(suite)
        let table = try String(contentsOf: dir.appendingPathComponent("table.md"), encoding: .utf8)
        #expect(table.contains("## Distillation methods") && table.contains("| ewgs alone |") && table.contains("| FitNet |")
                && table.contains("| FSP |") && table.contains("| FT |"), "\(table)")
        #expect(table.components(separatedBy: "not transcribed").count > Self.methods.count)
        let csv = try String(contentsOf: dir.appendingPathComponent("methods.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 1 + Self.methods.count)
        let png = try Data(contentsOf: dir.appendingPathComponent("plots/methods-delta.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 1000)
    }
}

/// The method table and chart from synthetic records: Δ per method with Welch's mark and per seed, the baseline
/// row without one, a method whose seeds disagree flagged, and suites without distillation methods unchanged (no
/// such table, no such chart).
@Suite struct MethodTableTests {
    @Test func fromRecords() throws {
        let s = try Suite.load(repoRoot.appendingPathComponent("suites/table7-cifar10.yaml"))
        let results = tempDir("t7synth")
        let plan = try Plan(suite: s, budget: "smoke", seeds: 2, resultsRoot: results)
        let base: [Method: Double] = [.baseline: 80, .sqakd: 82, .at: 79, .nst: 80]
        for r in plan.runs {
            guard r.cell.isTeacher || base[r.cell.method] != nil else { continue }
            // NST: 81, 79 against the baseline's 80, 80.5: Δ per seed +1.00, −1.50.
            let top = r.cell.isTeacher ? 90 : r.cell.method == .nst ? 81 - 2 * Double(r.seed) : base[r.cell.method]! + Double(r.seed) * 0.5
            try r.runDirectory.create()
            try r.runDirectory.writeRecord(syntheticRecord(r, curve: [top - 1, top]))
        }
        let loaded = try SuiteResults.load(suite: s, resultsRoot: results, budget: "smoke")
        #expect(loaded.isMethodComparison)
        let md = Tables.methodsMarkdown(loaded, level: 2)
        #expect(md.contains("| resnet20 | W2A2 | ewgs alone | 80.25 ± 0.35 (n=2) | 80.25 ± 0.35 (n=2) | — | — | not transcribed | — |"), "\(md)")
        #expect(md.contains("| resnet20 | W2A2 | SQAKD | 82.25 ± 0.35 (n=2) |") && md.contains("| +2.00 (p<0.05) | +2.00, +2.00 |"), "\(md)")
        #expect(md.contains("| resnet20 | W2A2 | AT | 79.25 ± 0.35 (n=2) |") && md.contains("| −1.00, −1.00 |"), "\(md)")
        #expect(md.contains("| +1.00, −1.50 (disagree) |"), "\(md)")
        #expect(md.contains("| resnet20 | W2A2 | VID | not run | not run | — | — |"))
        #expect(loaded.flags == ["resnet20 ewgs W2A2 NST: the seeds disagree about the sign of Δ (per seed: +1.00, −1.50); "
                                 + "the mean Δ is not a verdict."], "\(loaded.flags)")
        #expect(Tables.methodsCSV(loaded).contains(",1.00;-1.50,"), "\(Tables.methodsCSV(loaded))")
        #expect(ReportPlots.files(loaded).contains { $0.name == "methods-delta.png" })
        let chart = ReportPlots.methodsChart(loaded)
        #expect(chart.bars.map(\.label) == ["SQAKD", "AT", "NST"] && chart.bars.map(\.value) == [2, -1, -0.25])
        #expect(Report.methodRanking(loaded) == ["resnet20 ewgs W2A2, methods by best top-1: SQAKD 82.25 > ewgs alone 80.25 > NST 80.00 > "
                                                 + "AT 79.25; SQAKD ranks 1 of 4; above ewgs alone: 1 of 3 (significantly: SQAKD)"])

        let t4 = try SuiteResults.load(suite: try Suite.load(repoRoot.appendingPathComponent("suites/table4-cifar10.yaml")),
                                       resultsRoot: results, budget: "smoke")
        #expect(!t4.isMethodComparison && !ReportPlots.files(t4).contains { $0.name == "methods-delta.png" })
        #expect(!Tables.markdown(t4).contains("Distillation methods") && Report.methodRanking(t4).isEmpty)
    }
}
