import Foundation
import Plotting
import Testing
@testable import Bench
@testable import Training

/// The finished records of a results folder's runs, keyed by label (cell and seed), with their numbers
/// (timing left out).
private func numbers(suite: URL, results: URL, budget: String? = nil, seeds: Int? = nil) throws -> [String: [[Double]]] {
    let s = try Suite.load(suite)
    let plan = try Plan(suite: s, budget: budget, seeds: seeds, resultsRoot: results)
    var out: [String: [[Double]]] = [:]
    for r in plan.runs {
        let rec = try r.runDirectory.readRecord()
        #expect(rec.status == "finished", "\(r.label)")
        out[r.label] = rec.epochs.map(\.numbers)
    }
    return out
}

@Suite("Sweep (end to end, real Fashion-MNIST)", .serialized)
struct SweepTests {
    @Test func smokeSuiteSweepReportStatusAndCheck() throws {
        let results = tempDir("smoke")
        let run = try sqakd(["sweep", "run", "suites/smoke.yaml", "--results", results.path, "--jobs", "2", "--threads", "2"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("[5/5] done"), "\(run.output)")
        let first = try numbers(suite: repoRoot.appendingPathComponent("suites/smoke.yaml"), results: results)
        #expect(first.count == 5 && first.values.allSatisfy { $0.count == 1 })

        // A second run trains nothing.
        let again = try sqakd(["sweep", "run", "smoke", "--results", results.path])
        #expect(again.status == 0 && again.output.contains("5 already finished, 0 to train"), "\(again.output)")
        let status = try sqakd(["sweep", "status", "smoke", "--results", results.path])
        #expect(status.output.contains("5 runs: 5 finished"), "\(status.output)")

        // A fresh clone has records but no checkpoints: a missing student is trained, and the teacher it
        // needs is trained again first, to the same numbers.
        let plan = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/smoke.yaml")), resultsRoot: results)
        let teacherDir = plan.teachers[0].directory
        for f in try FileManager.default.contentsOfDirectory(atPath: teacherDir.path) where f.hasSuffix(".safetensors") {
            try FileManager.default.removeItem(at: teacherDir.appendingPathComponent(f))
        }
        try FileManager.default.removeItem(at: plan.students[0].directory)
        let clone = try sqakd(["sweep", "run", "smoke", "--results", results.path, "--jobs", "2", "--threads", "2"])
        #expect(clone.status == 0 && clone.output.contains("training it again for its students"), "\(clone.output)")
        #expect(try numbers(suite: repoRoot.appendingPathComponent("suites/smoke.yaml"), results: results) == first)

        let report = try sqakd(["report", "smoke", "--results", results.path, "--output", results.appendingPathComponent("REPORT.md").path])
        #expect(report.status == 0, "\(report.output)")
        for f in ["smoke/table.md", "smoke/table.csv", "smoke/cells.csv", "REPORT.md"] {
            #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent(f).path), "\(f)")
        }
        let gain = try Canvas.readPNG(from: results.appendingPathComponent("smoke/plots/sqakd-gain.png"))
        #expect(gain.width == 900 && gain.height == 560)
        _ = try Canvas.readPNG(from: results.appendingPathComponent("smoke/plots/curves-resnet20-ewgs-w2a2.png"))

        // The gate passes against itself and fails, naming the cell, against a doctored baseline.
        let cells = results.appendingPathComponent("smoke/cells.csv")
        let pass = try sqakd(["check", "smoke", "--results", results.path, "--against", cells.path])
        #expect(pass.status == 0 && pass.output.contains("check passed: 3 cell(s)"), "\(pass.output)")
        var rows = try String(contentsOf: cells, encoding: .utf8).split(separator: "\n").map(String.init)
        let i = rows.firstIndex { $0.contains(",ewgs,2,baseline,") }!
        var fields = rows[i].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        // A stored baseline far below any trained one, with no spread (values and their mean, as a consistent file).
        fields[15] = Array(repeating: "1.0000", count: fields[15].split(separator: ";").count).joined(separator: ";")
        fields[10] = "1.00"
        rows[i] = fields.joined(separator: ",")
        let doctored = results.appendingPathComponent("doctored.csv")
        writeText(rows.joined(separator: "\n") + "\n", doctored)
        let fail = try sqakd(["check", "smoke", "--results", results.path, "--against", doctored.path])
        #expect(fail.status != 0 && fail.output.contains("outside the stored spread: resnet20 ewgs W2A2 baseline"), "\(fail.output)")
    }

    @Test func killedSweepResumesToTheSameNumbers() throws {
        // Students of 2 epochs, so the kill can land between a student's epochs (resume from its checkpoint).
        let suiteFile = tempDir("killsuite").appendingPathComponent("kill.yaml")
        var yaml = try String(contentsOf: repoRoot.appendingPathComponent("suites/smoke.yaml"), encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "name: smoke", with: "name: kill")
            .replacingOccurrences(of: "student:\n  epochs: 1", with: "student:\n  epochs: 2")
        writeText(yaml, suiteFile)
        let args = ["--jobs", "1", "--threads", "1"]

        let straight = tempDir("straight")
        let s = try sqakd(["sweep", "run", suiteFile.path, "--results", straight.path] + args)
        #expect(s.status == 0, "\(s.output)")

        let killed = tempDir("killed")
        let p = Process()
        p.executableURL = sqakdExecutable()
        p.arguments = ["sweep", "run", suiteFile.path, "--results", killed.path] + args
        p.currentDirectoryURL = repoRoot
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Kill it once some student has finished its first epoch but not its second.
        let suite = try Suite.load(suiteFile)
        let plan = try Plan(suite: suite, resultsRoot: killed)
        let deadline = Date().addingTimeInterval(300)
        var interruptedRun: PlannedRun?
        while interruptedRun == nil && Date() < deadline && p.isRunning {
            interruptedRun = plan.students.first { r in
                guard let rec = try? r.runDirectory.readRecord() else { return false }
                return rec.epochs.count == 1 && rec.status == "running"
            }
            if interruptedRun == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        try #require(interruptedRun != nil, "the sweep ended before it could be killed")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        Thread.sleep(forTimeInterval: 0.5)   // the child dies with its parent
        #expect(!RunLock.isHeld(interruptedRun!.runDirectory), "the killed sweep's child is still training")
        let status = try sqakd(["sweep", "status", suiteFile.path, "--results", killed.path])
        #expect(status.output.contains("interrupted"), "\(status.output)")

        let resumed = try sqakd(["sweep", "run", suiteFile.path, "--results", killed.path] + args)
        #expect(resumed.status == 0, "\(resumed.output)")
        let log = try String(contentsOf: interruptedRun!.runDirectory.log, encoding: .utf8)
        #expect(log.contains("resumed at epoch 2 of 2"), "\(log)")
        // Every run recorded exactly once (one record per run directory, epochs 1…E once each), with the
        // uninterrupted sweep's numbers.
        let a = try numbers(suite: suiteFile, results: straight), b = try numbers(suite: suiteFile, results: killed)
        #expect(a.count == 5 && a == b)
        for r in plan.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.epochs.map(\.epoch) == Array(1...r.config.epochs))
            let csvLines = try String(contentsOf: r.runDirectory.metrics, encoding: .utf8).split(separator: "\n")
            #expect(csvLines.count == r.config.epochs + 1)
        }
        let dirs = try FileManager.default.contentsOfDirectory(atPath: plan.runsDirectory.path)
        #expect(dirs.count == plan.runs.count)
    }

    @Test func table4CIFAR10SmokeOnGeneratedFiles() throws {
        let data = tempDir("cifar")
        let results = tempDir("t4")
        // No data: stops at once, saying where the binaries go.
        let none = try sqakd(["sweep", "run", "table4-cifar10", "--budget", "smoke", "--results", results.path, "--data-root", data.path])
        #expect(none.status != 0)
        #expect(none.output.contains("CIFAR-10 not found") && none.output.contains("\(data.path)/cifar-10-batches-bin")
                && none.output.contains("cifar-10-binary.tar.gz"), "\(none.output)")
        #expect(!none.output.contains("start"))

        makeCIFAR10(root: data)
        let run = try sqakd(["sweep", "run", "table4-cifar10", "--budget", "smoke", "--seeds", "1", "--results", results.path,
                             "--data-root", data.path, "--jobs", "2"])
        #expect(run.status == 0, "\(run.output)")
        let plan = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/table4-cifar10.yaml")), budget: "smoke", seeds: 1,
                            resultsRoot: results)
        #expect(plan.runs.count == 2 + 8)
        for r in plan.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.status == "finished" && rec.config.dataset == "cifar10" && rec.config.trainLimit == 256)
        }
        let report = try sqakd(["report", "table4-cifar10", "--results", results.path, "--output", "none"])
        #expect(report.status == 0, "\(report.output)")
        let table = try String(contentsOf: results.appendingPathComponent("table4-cifar10/table.md"), encoding: .utf8)
        #expect(table.contains("paper: not transcribed") && table.contains("| vgg8 | W2A2 |"))
    }

    @Test func failedRunIsRecordedAndTheSweepGoesOn() throws {
        // One student's directory already holds a different run (a damaged folder): that run fails with the
        // reason, the others still finish, and the sweep exits non-zero.
        let results = tempDir("fail")
        let plan = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/smoke.yaml")), seeds: 1, resultsRoot: results)
        let broken = plan.students.first { $0.cell.method == .sqakd }!
        try broken.runDirectory.create()
        var other = broken.config
        other.epochs = 7
        try other.storedJSON().write(to: broken.runDirectory.config)
        let run = try sqakd(["sweep", "run", "smoke", "--seeds", "1", "--results", results.path])
        #expect(run.status != 0, "\(run.output)")
        #expect(run.output.contains("FAILED resnet20/ewgs/W2A2/sqakd/seed0: ") && run.output.contains("holds a run with a different config"),
                "\(run.output)")
        #expect(run.output.contains("2/3 runs finished"), "\(run.output)")
        #expect(SweepFailure.read(broken.runDirectory)?.reason.contains("different config") == true)
        let status = try sqakd(["sweep", "status", "smoke", "--seeds", "1", "--results", results.path])
        #expect(status.output.contains("1 failed") && status.output.contains("failed: resnet20/ewgs/W2A2/sqakd/seed0"), "\(status.output)")
    }
}
