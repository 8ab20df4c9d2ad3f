import Datasets
import Foundation
import Tensors
import Training

/// How the local executor runs a plan.
public struct SweepOptions: Sendable {
    /// Runs trained at once.
    public var jobs: Int = 1
    /// Threads of the whole sweep, split evenly among the jobs of a stage.
    public var threads: Int = 2
    public var dataRoot: String?
    /// The `sqakd` executable each run is launched with (`sqakd train --config … --output …`).
    public var executable: URL

    public init(executable: URL, jobs: Int = 1, threads: Int = 2, dataRoot: String? = nil) {
        self.executable = executable
        self.jobs = jobs
        self.threads = threads
        self.dataRoot = dataRoot
    }
}

public struct SweepSummary: Sendable {
    public var total: Int
    public var alreadyFinished: Int
    public var finished: Int
    /// Label and reason of every run that failed or could not start (its teacher failed).
    public var failures: [(label: String, reason: String)]
    public var wallSeconds: Double
}

/// The local executor: trains a plan's runs as child processes (`sqakd train`), teachers before the
/// students that need them, `jobs` at a time. Finished runs are skipped (their id is the hash of the
/// resolved config), interrupted ones resume from their last checkpoint, and a failed run is recorded
/// (`failure.json`, with the reason) while the sweep goes on. A child dies with the sweep, so a killed
/// sweep leaves no orphan training behind; rerunning it picks up where it stopped.
public final class Sweep {
    public let plan: Plan
    public let options: SweepOptions
    let say: (String) -> Void

    public init(plan: Plan, options: SweepOptions, output: @escaping (String) -> Void = { print($0); fflush(stdout) }) {
        self.plan = plan
        self.options = options
        self.say = output
    }

    /// Stops at once, with where to put the files, when the suite's dataset is not there.
    public static func checkData(_ dataset: String, root: String?) throws {
        let v = try DatasetKind(id: dataset).verify(root: root)
        guard v.complete else {
            let missing = v.missing.map(\.name).joined(separator: ", ")
            let how = v.howToGet.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            throw SuiteError("\(v.kind.info.name) not found: \(missing) missing in \(v.directory). \(how)")
        }
    }

    struct Job {
        let run: PlannedRun
        let process: Process
        let started: Date
        let units: Double
        let console: FileHandle
    }

    public func run() throws -> SweepSummary {
        guard options.jobs >= 1 else { throw SuiteError("--jobs must be ≥ 1") }
        guard options.threads >= 1 else { throw SuiteError("--threads must be ≥ 1") }
        try Self.checkData(plan.suite.dataset, root: options.dataRoot)
        let started = Date()
        do { try FileManager.default.createDirectory(at: plan.runsDirectory, withIntermediateDirectories: true) } catch {
            throw SuiteError("cannot create \(plan.runsDirectory.path): \(error.localizedDescription)")
        }
        let trainImages = Double((try? DatasetKind(id: plan.suite.dataset).info.trainCount) ?? 50_000)
        func units(_ r: PlannedRun, from epoch: Int) -> Double {
            let n = r.config.trainLimit > 0 ? min(Double(r.config.trainLimit), trainImages) : trainImages
            return Double(max(0, r.config.epochs - epoch)) * n * (r.cell.method == .sqakd ? 1.3 : 1)
        }

        let total = plan.runs.count
        var finishedIDs = Set<String>(), failedIDs = Set<String>()
        var queue: [PlannedRun] = []
        for r in plan.runs {
            switch RunState.of(r) {
            case .finished:
                // Committed results hold records, not checkpoints: a teacher whose checkpoint is not here is
                // trained again (same config, same numbers) when a student still needs it.
                if r.cell.isTeacher, !FileManager.default.fileExists(atPath: r.runDirectory.bestCheckpoint.path),
                   plan.students.contains(where: { $0.teacherID == r.id && RunState.of($0) != .finished }) {
                    say("\(r.label) is finished but its checkpoint is not here; training it again for its students")
                    queue.append(r)
                } else {
                    finishedIDs.insert(r.id)
                }
            case .running:
                throw SuiteError("\(r.label) (\(r.directory.relativePathForDisplay)) is being trained by another process; one sweep per results folder at a time")
            default: queue.append(r)
            }
        }
        let alreadyFinished = finishedIDs.count
        let threadsFor: (Bool) -> Int = { teacher in
            let stage = teacher ? self.plan.teachers.count : self.plan.students.count
            return max(1, self.options.threads / max(1, min(self.options.jobs, stage)))
        }
        say("sweep \(plan.suite.name), budget \(plan.budget.name) (\(plan.budget.summary)), \(plan.seeds) seed(s): \(total) runs, "
            + "\(alreadyFinished) already finished, \(queue.count) to train; \(options.jobs) job(s), "
            + "\(threadsFor(true)) thread(s) per teacher, \(threadsFor(false)) per student; results in \(plan.runsDirectory.relativePathForDisplay)")

        var running: [Job] = []
        var failures: [(String, String)] = []
        var doneUnits = 0.0, doneSeconds = 0.0
        var remainingUnits = queue.reduce(0) { $0 + units($1, from: Self.epochsDone($1)) }
        func counter() -> String {
            let w = String(total).count
            let n = String(finishedIDs.count + failedIDs.count)
            return "[\(String(repeating: " ", count: max(0, w - n.count)) + n)/\(total)]"
        }
        func eta() -> String {
            guard doneUnits > 0 else { return "ETA unknown until a run finishes" }
            let parallel = Double(min(options.jobs, max(1, queue.count + running.count)))
            return "ETA " + formatDuration(remainingUnits * doneSeconds / doneUnits / parallel)
        }

        while !queue.isEmpty || !running.isEmpty {
            // Start what can start: teachers at once, students when their teacher has finished.
            var i = 0
            while running.count < options.jobs && i < queue.count {
                let r = queue[i]
                if let t = r.teacherID, failedIDs.contains(t) {
                    queue.remove(at: i)
                    failedIDs.insert(r.id)
                    remainingUnits -= units(r, from: Self.epochsDone(r))
                    failures.append((r.label, "not trained: its teacher failed"))
                    say("\(counter()) SKIP   \(r.label): its teacher failed")
                    continue
                }
                if let t = r.teacherID, !finishedIDs.contains(t) { i += 1; continue }
                queue.remove(at: i)
                do {
                    running.append(try launch(r, threads: threadsFor(r.cell.isTeacher), units: units(r, from: Self.epochsDone(r))))
                    say("\(counter()) start  \(r.label)  (\(r.id))")
                } catch {
                    failedIDs.insert(r.id)
                    remainingUnits -= units(r, from: Self.epochsDone(r))
                    failures.append((r.label, "\(error)"))
                    try? SweepFailure(runID: r.id, reason: "\(error)", exitStatus: -1, at: isoTimestamp()).write(r.runDirectory)
                    say("\(counter()) FAILED \(r.label): \(error)")
                }
            }
            if running.isEmpty {
                // Nothing can start: every remaining student waits on a teacher that is not in this plan.
                for r in queue {
                    failedIDs.insert(r.id)
                    failures.append((r.label, "not trained: its teacher is not finished"))
                }
                break
            }
            Thread.sleep(forTimeInterval: 0.2)
            for job in running where !job.process.isRunning {
                running.removeAll { $0.run.id == job.run.id }
                try? job.console.close()
                let seconds = Date().timeIntervalSince(job.started)
                remainingUnits -= job.units
                let r = job.run
                let dir = r.runDirectory
                let record = try? dir.readRecord()
                if job.process.terminationReason == .exit, job.process.terminationStatus == 0,
                   let rec = record, rec.status == "finished", rec.epochs.count >= r.config.epochs {
                    SweepFailure.clear(dir)
                    finishedIDs.insert(r.id)
                    doneUnits += job.units
                    doneSeconds += seconds
                    say("\(counter()) done   \(r.label)  best \(String(format: "%.2f", rec.bestTop1 ?? .nan))% (epoch \(rec.bestEpoch ?? 0)), "
                        + "last \(String(format: "%.2f", rec.lastTop1 ?? .nan))%  \(formatDuration(seconds))  · \(eta())")
                } else {
                    let reason = Self.reason(job.process, console: dir.url.appendingPathComponent("console.txt"))
                    failedIDs.insert(r.id)
                    failures.append((r.label, reason))
                    try? SweepFailure(runID: r.id, reason: reason, exitStatus: job.process.terminationStatus, at: isoTimestamp()).write(dir)
                    say("\(counter()) FAILED \(r.label): \(reason)  · \(eta())")
                }
            }
        }
        let wall = Date().timeIntervalSince(started)
        let trained = finishedIDs.count - alreadyFinished
        say("sweep \(plan.suite.name): \(finishedIDs.count)/\(total) runs finished (\(trained) trained now, \(alreadyFinished) before), "
            + "\(failures.count) failed, in \(formatDuration(wall))")
        for (label, reason) in failures { say("  failed: \(label): \(reason)") }
        return SweepSummary(total: total, alreadyFinished: alreadyFinished, finished: finishedIDs.count,
                            failures: failures, wallSeconds: wall)
    }

    static func epochsDone(_ r: PlannedRun) -> Int { (try? r.runDirectory.readRecord())?.epochs.count ?? 0 }

    /// Launches `sqakd train --config <dir>/config.json --output <dir>` with its console going to
    /// `<dir>/console.txt`.
    func launch(_ r: PlannedRun, threads: Int, units: Double) throws -> Job {
        let dir = r.runDirectory
        try dir.create()
        if FileManager.default.fileExists(atPath: dir.config.path) {
            // The directory is named by the config's hash, so another config here is a damaged or hand-made folder.
            guard (try? dir.readConfig()) == r.config else {
                throw SuiteError("\(dir.url.relativePathForDisplay) holds a run with a different config; delete the folder to train this run")
            }
        } else {
            try atomicWrite(r.config.storedJSON(), to: dir.config)
        }
        let consoleURL = dir.url.appendingPathComponent("console.txt")
        if !FileManager.default.fileExists(atPath: consoleURL.path) { _ = FileManager.default.createFile(atPath: consoleURL.path, contents: nil) }
        guard let console = FileHandle(forWritingAtPath: consoleURL.path) else { throw SuiteError("cannot open \(consoleURL.path)") }
        console.seekToEndOfFile()
        var args = ["train", "--config", dir.config.path, "--output", dir.url.path, "--threads", "\(threads)"]
        if let root = options.dataRoot { args += ["--data-root", root] }
        console.write(Data("\n# \(isoTimestamp()) sweep \(plan.suite.name): \(options.executable.path) \(args.joined(separator: " "))\n".utf8))
        let p = Process()
        p.executableURL = options.executable
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env[Self.parentVariable] = "\(getpid())"
        p.environment = env
        p.standardOutput = console
        p.standardError = console
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            try? console.close()
            throw SuiteError("cannot launch \(options.executable.path): \(error.localizedDescription)")
        }
        return Job(run: r, process: p, started: Date(), units: units, console: console)
    }

    /// The environment variable that tells a child `sqakd train` which sweep process it must die with.
    public static let parentVariable = "SQAKD_SWEEP_PARENT"

    /// A failed child's reason: its last error line, or the signal that killed it.
    static func reason(_ p: Process, console: URL) -> String {
        if p.terminationReason == .uncaughtSignal { return "killed by signal \(p.terminationStatus)" }
        let text = (try? String(contentsOf: console, encoding: .utf8)) ?? ""
        let last = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .last { !$0.isEmpty && !$0.hasPrefix("#") } ?? ""
        let line = last.hasPrefix("Error: ") ? String(last.dropFirst(7)) : last
        return line.isEmpty ? "exit status \(p.terminationStatus)" : "exit status \(p.terminationStatus): \(line)"
    }
}

func isoTimestamp() -> String { ISO8601DateFormatter().string(from: Date()) }
