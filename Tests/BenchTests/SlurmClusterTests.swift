import Foundation
import Testing
@testable import Bench
@testable import Training

/// Debian's slurm-wlm and munge (`make deps-test` installs them; `.ci/run` runs that first).
private let slurmInstalled = ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch"]
    .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

/// A single-node cluster on this machine (`scripts/slurm-single-node.sh`) in its own folder, stopped (and the
/// folder removed) by `stop`. The folder is a short one directly under /tmp, whatever TMPDIR says: slurmd puts
/// each job step's Unix socket in it (`spool/vm_<job>.<step>`), and a socket path may not exceed 108 bytes (under
/// `make test`'s TMPDIR the usual temporary folder took job 10's socket to 109, and the step never started).
private struct Cluster {
    let directory: URL
    var environment: [String: String] { ["SLURM_CONF": directory.appendingPathComponent("slurm.conf").path] }

    static func start() throws -> (Cluster?, String) {
        let dir = URL(fileURLWithPath: "/tmp/sqakd-slurm-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let c = Cluster(directory: dir)
        let r = try command(URL(fileURLWithPath: "/bin/bash"), ["scripts/slurm-single-node.sh", "start", c.directory.path])
        if r.status != 0 { c.stop() }
        return (r.status == 0 ? c : nil, r.output)
    }

    func stop() {
        _ = try? command(URL(fileURLWithPath: "/bin/bash"), ["scripts/slurm-single-node.sh", "stop", directory.path])
        try? FileManager.default.removeItem(at: directory)
    }
}

private func plan(_ suite: URL, _ results: URL) throws -> Plan { try Plan(suite: try Suite.load(suite), resultsRoot: results) }

/// Against a real Slurm: munged, slurmctld and slurmd started by hand for the test, the smoke suite through
/// `--executor slurm`, then a task cancelled half-way and finished by the next sweep run. Where slurm-wlm is
/// not installed the suite is skipped, and says so (Swift Testing prints the condition's comment); where it
/// is installed and does not start, the test fails with the script's output.
@Suite("Slurm, single-node cluster (real Fashion-MNIST)", .serialized,
       .enabled(if: slurmInstalled, "slurm-wlm and munge are not installed: run `make deps-test` (apt-get install slurm-wlm munge)"))
struct SlurmClusterTests {
    @Test("the smoke suite through sbatch to completion; a task cancelled half-way is finished by the next sweep run")
    func smokeSuiteOnSlurm() throws {
        let (started, startOutput) = try Cluster.start()
        guard let cluster = started else {
            Issue.record("the single-node Slurm cluster did not start:\n\(startOutput)")
            return
        }
        defer { cluster.stop() }
        let env = cluster.environment
        let results = tempDir("slurm-results")
        let slurm = ["--executor", "slurm", "--cpus-per-task", "1", "--poll", "0.3", "--results", results.path]

        // Dry run: the scripts, nothing submitted.
        let dry = try sqakd(["sweep", "run", "smoke", "--dry-run"] + slurm, environment: env)
        #expect(dry.status == 0 && dry.output.contains("#SBATCH --dependency=afterok:<job 1: sqakd-smoke-teachers>_0"), "\(dry.output)")
        #expect(!dry.output.contains("submitted job"))

        // The smoke suite: one teacher array, one held student array, every run finished from its record.
        let smoke = repoRoot.appendingPathComponent("suites/smoke.yaml")
        let run = try sqakd(["sweep", "run", "smoke"] + slurm, environment: env)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("[5/5] done") && run.output.contains("submitted job"), "\(run.output)")
        let p = try plan(smoke, results)
        for r in p.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.status == "finished" && rec.epochs.count == r.config.epochs && rec.system.threads == 1, "\(r.label)")
            let job = try #require(SlurmJob.read(r.runDirectory))
            let console = try String(contentsOf: r.consoleURL, encoding: .utf8)
            #expect(console.contains("slurm task \(job.task) on "), "\(r.label): \(console)")
        }
        let status = try sqakd(["sweep", "status", "smoke", "--results", results.path], environment: env)
        #expect(status.output.contains("5 runs: 5 finished"), "\(status.output)")
        let again = try sqakd(["sweep", "run", "smoke"] + slurm, environment: env)
        #expect(again.status == 0 && again.output.contains("5 already finished, 0 to train") && !again.output.contains("submitted job"),
                "\(again.output)")
        let report = try sqakd(["report", "smoke", "--results", results.path, "--output", results.appendingPathComponent("REPORT.md").path])
        #expect(report.status == 0, "\(report.output)")
        let table = try String(contentsOf: results.appendingPathComponent("smoke/table.md"), encoding: .utf8)
        #expect(table.contains("resnet20"), "\(table)")

        // Students of 2 epochs: cancel one task after its first epoch; the sweep records it failed, the next
        // sweep run resubmits only it, and it resumes at epoch 2.
        let suiteFile = tempDir("slurm-suite").appendingPathComponent("slurmcancel.yaml")
        let yaml = try String(contentsOf: smoke, encoding: .utf8).replacingOccurrences(of: "name: smoke", with: "name: slurmcancel")
            .replacingOccurrences(of: "student:\n  epochs: 1", with: "student:\n  epochs: 2")
        writeText(yaml, suiteFile)
        let cp = try plan(suiteFile, results)
        let out = tempDir("slurm-sweep-out").appendingPathComponent("output.txt")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        let sweep = Process()
        sweep.executableURL = sqakdExecutable()
        sweep.arguments = ["sweep", "run", suiteFile.path] + slurm
        sweep.currentDirectoryURL = repoRoot
        sweep.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
        sweep.standardOutput = handle
        sweep.standardError = handle
        try sweep.run()
        let deadline = Date().addingTimeInterval(150)
        // While the teacher trains, its students wait in the queue: status reads the records plus squeue.
        while Date() < deadline && sweep.isRunning && !cp.runs.allSatisfy({ SlurmJob.read($0.runDirectory) != nil }) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let during = try sqakd(["sweep", "status", suiteFile.path, "--results", results.path], environment: env)
        let teacherDone = (try? cp.teachers[0].runDirectory.readRecord())?.status == "finished"
        // The students wait on the teacher's task (queued); the teacher is queued or running.
        #expect(teacherDone || during.output.range(of: #"5 runs: (1 running, 4|5) queued\n"#, options: .regularExpression) != nil,
                "\(during.output)")
        var target: PlannedRun?
        while target == nil && Date() < deadline && sweep.isRunning {
            target = cp.students.first { r in
                guard let rec = try? r.runDirectory.readRecord() else { return false }
                return rec.epochs.count == 1 && rec.status == "running"
            }
            if target == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard let cancelled = target else {
            sweep.waitUntilExit()
            Issue.record("no student was caught between its epochs: \(try String(contentsOf: out, encoding: .utf8))")
            return
        }
        let task = try #require(SlurmJob.read(cancelled.runDirectory)).task
        let scancel = try command(URL(fileURLWithPath: "/usr/bin/scancel"), [task], environment: env)
        #expect(scancel.status == 0, "\(scancel.output)")
        sweep.waitUntilExit()
        try handle.close()
        let first = try String(contentsOf: out, encoding: .utf8)
        #expect(sweep.terminationStatus == 1, "\(first)")
        #expect(first.contains("FAILED \(cancelled.label): cancelled (slurm task \(task), epoch 1/2 done)"), "\(first)")
        #expect(first.contains("4/5 runs finished"), "\(first)")
        #expect(SweepFailure.read(cancelled.runDirectory)?.reason.hasPrefix("cancelled (slurm task \(task)") == true)
        let failedStatus = try sqakd(["sweep", "status", suiteFile.path, "--results", results.path], environment: env)
        #expect(failedStatus.output.contains("4 finished, 1 failed"), "\(failedStatus.output)")

        let rerun = try sqakd(["sweep", "run", suiteFile.path] + slurm, environment: env)
        #expect(rerun.status == 0 && rerun.output.contains("4 already finished, 1 to train") && rerun.output.contains("[5/5] done"),
                "\(rerun.output)")
        let log = try String(contentsOf: cancelled.runDirectory.log, encoding: .utf8)
        #expect(log.contains("resumed at epoch 2 of 2"), "\(log)")
        for r in cp.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.status == "finished" && rec.epochs.map(\.epoch) == Array(1...r.config.epochs), "\(r.label)")
        }
        #expect(SweepFailure.read(cancelled.runDirectory) == nil)
    }
}
