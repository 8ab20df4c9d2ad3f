import Bench
import Foundation
import Testing
import TestSupport
import Training

/// Tables 5 and 6 (Tiny-ImageNet): their plans follow the authors' scripts (reference §5.3), the paper's
/// numbers reach the right rows, a missing dataset stops the sweep with one line, and both suites' smoke
/// budgets run end to end on Fashion-MNIST written as a tiny-imagenet-200 JPEG tree.
@Suite(.serialized) struct TinyImageNetSuiteTests {
    func plan(_ suite: String, budget: String = "paper") throws -> Plan {
        try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/\(suite).yaml")), budget: budget,
                 resultsRoot: tempDir("tiny-plan"))
    }

    func student(_ p: Plan, _ model: String, _ q: String, _ bits: Int, _ method: Method) throws -> TrainConfig {
        try #require(p.students.first { $0.cell.model == model && $0.cell.quantizer == q && $0.cell.bits == bits && $0.cell.method == method },
                     "\(model) \(q) W\(bits) \(method)").config
    }

    @Test func table5FollowsTheScripts() throws {
        let p = try plan("table5-tiny-imagenet")
        #expect(p.teachers.map(\.cell.model) == ["resnet18", "vgg11_bn"] && p.students.count == 36)
        let t = try #require(p.teachers.last).config
        #expect(t.batchSize == 32 && t.lr == 0.05 && t.weightDecay == 5e-4 && t.nesterov && t.schedule == .warmupCosine
                && t.warmupIterations == 2500 && t.labelSmoothing == 0.1 && t.epochs == 100 && t.imageSize == nil)
        let r8 = try student(p, "resnet18", "lsq", 8, .sqakd)
        #expect(r8.batchSize == 64 && r8.lr == 5e-4 && r8.alpha == 1 && r8.lossWeights.gamma == 0 && r8.labelSmoothing == 0 && r8.initFrom != nil)
        let r3 = try student(p, "resnet18", "pact", 3, .baseline)
        #expect(r3.lr == 0.004 && r3.weightDecay == 1e-4 && r3.labelSmoothing == 0.1 && r3.distill == .none)
        #expect(try student(p, "vgg11_bn", "dorefa", 4, .sqakd).alpha == 100)
        // VGG-11 W3A3 SQAKD: alpha 10 from random weights ("withoutPretrain"); its baseline starts from the teacher.
        let v3 = try student(p, "vgg11_bn", "pact", 3, .sqakd)
        #expect(v3.alpha == 10 && v3.randomInit && v3.initFrom == nil && v3.teacher != nil && v3.lr == 0.004)
        #expect(try student(p, "vgg11_bn", "pact", 3, .baseline).initFrom != nil)
        // The zoo's vgg11_bn is the paper's "VGG-11": its rows come from the CSV's vgg11.
        let results = try SuiteResults.load(suite: p.suite, resultsRoot: p.runsDirectory.deletingLastPathComponent().deletingLastPathComponent())
        #expect(results.paper(CellKey(model: "vgg11_bn", quantizer: "pact", bits: 8, method: .baseline)) == 58.08)
        #expect(results.paper(CellKey(model: "vgg11_bn", quantizer: "fp", bits: 32, method: .fp)) == 59.47)
        #expect(results.paper(CellKey(model: "resnet18", quantizer: "dorefa", bits: 3, method: .sqakd)) == 64.10)
        // The budgets: reduced trains at the stored 64×64 with a shorter warm-up.
        let reduced = try plan("table5-tiny-imagenet", budget: "reduced")
        #expect(reduced.runs.allSatisfy { $0.config.imageSize == 64 && $0.config.warmupIterations == 625 })
        #expect(reduced.budget.summary.contains("64×64 images"))
    }

    @Test func table6FollowsTheScripts() throws {
        let p = try plan("table6-tiny-imagenet")
        #expect(p.teachers.map(\.cell.model) == ["mobilenetv2", "shufflenet_v2_x0_5", "squeezenet1_0"] && p.students.count == 14)
        let mt = try #require(p.teachers.first).config
        #expect(mt.lr == 0.004 && mt.weightDecay == 1e-4)
        #expect(try student(p, "mobilenetv2", "pact", 4, .sqakd).alpha == 100)
        let m3 = try student(p, "mobilenetv2", "pact", 3, .sqakd)
        #expect(m3.alpha == 10 && m3.lr == 0.004 && m3.weightDecay == 1e-4)
        #expect(try student(p, "shufflenet_v2_x0_5", "dorefa", 8, .sqakd).alpha == 800)
        #expect(try student(p, "squeezenet1_0", "lsq", 4, .sqakd).alpha == 50)
        let results = try SuiteResults.load(suite: p.suite, resultsRoot: p.runsDirectory.deletingLastPathComponent().deletingLastPathComponent())
        let shuffle = CellKey(model: "shufflenet_v2_x0_5", quantizer: "pact", bits: 4, method: .sqakd)
        #expect(results.paper(shuffle) == 41.11 && results.paper(shuffle, metric: "top5") == 68.40)
        #expect(results.paper(CellKey(model: "squeezenet1_0", quantizer: "fp", bits: 32, method: .fp), metric: "top5") == 76.02)
    }

    @Test func withoutDataTheSweepStopsWithOneLine() throws {
        let empty = tempDir("tiny-nodata")
        let r = try sqakd(["sweep", "run", "suites/table5-tiny-imagenet.yaml", "--results", tempDir("tiny-nores").path,
                           "--data-root", empty.path])
        let text = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.status != 0 && !text.contains("\n"), "\(r.output)")
        #expect(text.contains("tiny-imagenet-200.zip") && text.contains("sqakd data prepare tiny-imagenet --from"), "\(text)")
    }

    /// `data prepare` on the Fashion tree, then each suite's smoke budget end to end, then its report with the
    /// paper's column (top-1, and top-5 where the paper gives it).
    @Test(.enabled(if: FashionTree.available, FashionTree.skipMessage), arguments: ["table5-tiny-imagenet", "table6-tiny-imagenet"])
    func smokeOnTheFashionTree(suite: String) throws {
        let work = tempDir("tiny-smoke"), results = tempDir("tiny-smoke-results")
        defer { for d in [work, results] { try? FileManager.default.removeItem(at: d) } }  // GBs of checkpoints
        let tree = try FashionTree.make(in: work.path, train: 10, val: 10)
        let data = work.appendingPathComponent("data").path
        let prepared = try sqakd(["data", "prepare", "tiny-imagenet", "--from", tree, "--data-root", data])
        try #require(prepared.status == 0, "\(prepared.output)")
        let run = try sqakd(["sweep", "run", suite, "--budget", "smoke", "--results", results.path, "--data-root", data, "--jobs", "2"])
        #expect(run.status == 0, "\(run.output)")
        let p = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/\(suite).yaml")), budget: "smoke", resultsRoot: results)
        for r in p.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.status == "finished" && rec.epochs.count == 1 && rec.config.imageSize == 32, "\(r.label)")
        }
        let report = try sqakd(["report", suite, "--results", results.path, "--output", "none"])
        #expect(report.status == 0, "\(report.output)")
        let table = try String(contentsOf: results.appendingPathComponent(suite).appendingPathComponent("table.md"), encoding: .utf8)
        #expect(table.contains("32×32 images") && table.contains("top-5 best"), "\(table)")
        if suite == "table5-tiny-imagenet" {
            #expect(table.contains("paper 58.08") && table.contains("| 65.59 |"), "\(table)")
        } else {
            #expect(table.contains("(paper 68.40)") && table.contains("| 76.05 |"), "\(table)")
        }
    }
}
