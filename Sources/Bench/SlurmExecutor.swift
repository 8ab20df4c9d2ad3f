import Foundation
import Tensors
import Training

/// The Slurm executor: each batch the sweep hands out becomes job arrays (`SlurmBatching`): the teachers
/// in one array, their students in arrays held by `--dependency=afterok:<teacher task>`, one task per run
/// running `sqakd train --config <dir>/config.json --output <dir>` (`SlurmScript`) on the results root the
/// nodes share. Each submitted run's task is recorded in its directory (`slurm.json`); ends are read from
/// squeue (a task that left the queue has ended) plus, for why, sacct or scontrol and the run's console.
/// Tasks an earlier sweep left in the queue are adopted, not submitted again. Nothing about a run lives only
/// in Slurm: the record says whether it finished, so a sweep can always be rerun, and a task stopped by its
/// time limit resumes from its last epoch when the sweep resubmits it.
///
/// With `dryRun` nothing is submitted: the scripts are printed (run directories and their config.json are
/// written, so the scripts can be submitted by hand), and the sweep stops after handing out.
public final class SlurmExecutor: Executor {
    public let options: SlurmOptions
    public let dryRun: Bool
    let client: SlurmClient
    let script: SlurmScript
    let suiteName: String
    let runsDirectory: URL
    let logDirectory: URL
    /// Seconds between two looks at the queue.
    let poll: Double
    let say: (String) -> Void

    struct Tracked {
        let run: PlannedRun
        let job: SlurmJob
        let since: Date
    }

    /// Submitted or adopted runs not ended yet, in submission order.
    private var tracked: [Tracked] = []
    /// Run id → the task it runs as, for the students' `afterok`.
    private var tasks: [String: String] = [:]
    private var dryRunJobs = 0
    private var queueTrouble: String?

    /// `workingDirectory`: where tasks start (`--chdir`; relative teacher paths in configs resolve from
    /// there), by default this process's.
    public init(plan: Plan, executable: URL, options: SlurmOptions, dataRoot: String? = nil, dryRun: Bool = false,
                client: SlurmClient = SlurmCommands(), poll: Double = 10,
                workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                output: @escaping (String) -> Void = { print($0); fflush(stdout) }) throws {
        try options.validate()
        guard poll > 0 else { throw SuiteError("--poll must be > 0 seconds") }
        self.options = options
        self.dryRun = dryRun
        self.client = client
        self.poll = poll
        self.say = output
        suiteName = plan.suite.name
        runsDirectory = plan.runsDirectory.standardizedFileURL
        logDirectory = runsDirectory.deletingLastPathComponent().appendingPathComponent("slurm")
        let root = dataRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        script = SlurmScript(options: options, executable: executable.standardizedFileURL.path,
                             workingDirectory: workingDirectory.standardizedFileURL.path, dataRoot: root,
                             logDirectory: logDirectory.path)
    }

    public var summary: String {
        "Slurm\(dryRun ? " dry run (nothing submitted)" : ""): \(options.summary); job scripts and Slurm's task output in "
            + logDirectory.relativePathForDisplay
    }

    public var slots: Int { .max }
    public var ordersDependencies: Bool { true }

    public func adopt(_ runs: [PlannedRun]) -> [(run: PlannedRun, note: String)] {
        let jobs = runs.compactMap { r in SlurmJob.read(r.runDirectory).map { (r, $0) } }
        guard !jobs.isEmpty, !dryRun else { return [] }
        let queue: SlurmQueueSnapshot
        do { queue = try client.queue(jobIDs: Array(Set(jobs.map(\.1.jobID))).sorted()) } catch {
            say("cannot ask squeue about the runs an earlier sweep submitted (\(error)); submitting them again")
            return []
        }
        var adopted: [(run: PlannedRun, note: String)] = []
        for (r, job) in jobs {
            guard let entry = queue.entry(job) else { continue }
            tracked.append(Tracked(run: r, job: job, since: Date()))
            tasks[r.id] = job.task
            adopted.append((r, "task \(job.task) \(entry.state.lowercased()), submitted by an earlier sweep run"))
        }
        return adopted
    }

    public func start(_ runs: [PlannedRun]) -> [(run: PlannedRun, reason: String)] {
        var refused: [(run: PlannedRun, reason: String)] = []
        var refusedIDs = Set<String>()
        func submitAll(_ subs: [SlurmSubmission]) {
            for s in subs {
                do { try submit(s) } catch {
                    for r in s.runs {
                        refused.append((r, "\(error)"))
                        refusedIDs.insert(r.id)
                    }
                }
            }
        }
        submitAll(SlurmBatching.teachers(runs, suite: suiteName))
        let students = runs.filter { !$0.cell.isTeacher }
        let (held, free) = students.partitioned { $0.teacherID.map(refusedIDs.contains) ?? false }
        for r in held { refused.append((r, "not submitted: its teacher could not be submitted")) }
        submitAll(SlurmBatching.students(free, suite: suiteName) { self.teacherTask($0) })
        return refused
    }

    /// The task a student waits for: its teacher's, unless the teacher's record says finished (a finished
    /// task may have left the controller, and `afterok` on an unknown job is refused).
    func teacherTask(_ teacherID: String) -> String? {
        guard let task = tasks[teacherID] else { return nil }
        let dir = RunDirectory(runsDirectory.appendingPathComponent(teacherID))
        if let rec = try? dir.readRecord(), rec.status == "finished", rec.epochs.count >= rec.config.epochs { return nil }
        return task
    }

    func submit(_ s: SlurmSubmission) throws {
        let text = script.render(s)
        if dryRun {
            dryRunJobs += 1
            let placeholder = "<job \(dryRunJobs): \(s.name)>"
            say("# ---- job script \(dryRunJobs): \(s.name), \(s.runs.count) task(s) ----\n" + text.trimmingCharacters(in: .newlines))
            for (i, r) in s.runs.enumerated() { tasks[r.id] = "\(placeholder)_\(i)" }
            return
        }
        do { try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true) } catch {
            throw SuiteError("cannot create \(logDirectory.path): \(error.localizedDescription)")
        }
        let stamp = isoTimestamp().replacingOccurrences(of: ":", with: "")
        let url = logDirectory.appendingPathComponent("\(s.name)-\(stamp)-\(UInt32.random(in: 0...UInt32.max)).sh")
        try atomicWrite(Data(text.utf8), to: url)
        let id = try client.submit(url)
        let now = isoTimestamp()
        for (i, r) in s.runs.enumerated() {
            let job = SlurmJob(jobID: id, arrayTask: i, submittedAt: now, script: url.path,
                               output: logDirectory.appendingPathComponent("\(id)_\(i).out").path)
            try? job.write(r.runDirectory)
            tasks[r.id] = job.task
            tracked.append(Tracked(run: r, job: job, since: Date()))
        }
        say("submitted job \(id): \(s.name), \(s.runs.count) task(s)" + (s.dependency.map { " after \($0)" } ?? ""))
    }

    public func waitForEnds(timeout: Double?) -> [RunEnd] {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        while !tracked.isEmpty {
            let queue: SlurmQueueSnapshot
            do {
                queue = try client.queue(jobIDs: Array(Set(tracked.map(\.job.jobID))).sorted())
                queueTrouble = nil
            } catch {
                if queueTrouble == nil { say("\(error); asking again every \(formatDuration(poll))") }
                queueTrouble = "\(error)"
                if let d = deadline, Date() >= d { return [] }
                Thread.sleep(forTimeInterval: poll)
                continue
            }
            let ended = tracked.filter { queue.entry($0.job) == nil }
            if !ended.isEmpty {
                tracked.removeAll { t in ended.contains { $0.job == t.job && $0.run.id == t.run.id } }
                return ended.map(end)
            }
            if let d = deadline, Date() >= d { return [] }
            Thread.sleep(forTimeInterval: deadline.map { min(poll, max(0.05, $0.timeIntervalSinceNow)) } ?? poll)
        }
        return []
    }

    /// A task that has left the queue: how it ended, from Slurm when it still knows, and the run's files.
    func end(_ t: Tracked) -> RunEnd {
        let dir = t.run.runDirectory
        let record = try? dir.readRecord()
        let finished = record.map { $0.status == "finished" && $0.epochs.count >= t.run.config.epochs } ?? false
        let slurmEnd = client.end(of: t.job.task)
        let clean = slurmEnd?.succeeded ?? finished
        let status = slurmEnd.map { $0.signal != 0 ? $0.signal : $0.exitCode } ?? (finished ? 0 : -1)
        let reason = Self.reason(task: t.job.task, end: slurmEnd, epochsDone: record?.epochs.count ?? 0, epochs: t.run.config.epochs,
                                 consoleLine: lastErrorLine(t.run.consoleURL), slurmLine: lastErrorLine(URL(fileURLWithPath: t.job.output)))
        return RunEnd(run: t.run, seconds: Date().timeIntervalSince(t.since), exitedCleanly: clean, exitStatus: status, reason: reason)
    }

    /// Why a task ended without a finished record, as one line: Slurm's state (time limit, cancelled, a
    /// teacher that failed) or, for a failed process, the exit status and the last error line of the run's
    /// console, as the local executor says it; Slurm's own last line when Slurm no longer knows the task.
    static func reason(task: String, end: SlurmTaskEnd?, epochsDone: Int, epochs: Int, consoleLine: String?, slurmLine: String?) -> String {
        let progress = "epoch \(epochsDone)/\(epochs) done"
        guard let e = end else {
            if let s = slurmLine, s.contains("CANCELLED") || s.contains("error") { return "slurm task \(task): \(s) (\(progress))" }
            return "slurm task \(task) left the queue unfinished (\(progress))" + (consoleLine.map { ": \($0)" } ?? "")
        }
        switch e.state {
        case "TIMEOUT":
            return "time limit reached (slurm task \(task), \(progress)); the next sweep run resumes it"
        case "CANCELLED" where e.reason == "DependencyNeverSatisfied":
            return SweepScheduler.teacherFailed + " (slurm task \(task) cancelled: its teacher's task did not succeed)"
        case "CANCELLED":
            return "cancelled (slurm task \(task), \(progress)); the next sweep run resumes it"
        case "COMPLETED" where e.exitCode == 0:
            return "slurm task \(task) completed but the record is not finished (\(progress))" + (consoleLine.map { ": \($0)" } ?? "")
        default:
            let status = e.signal != 0 ? "killed by signal \(e.signal)" : "exit status \(e.exitCode)"
            return "\(status)" + (consoleLine.map { ": \($0)" } ?? "") + " (slurm task \(task) \(e.state))"
        }
    }
}

/// The last line of a console that says what went wrong: the last "Error: …" line (its message), else
/// the last line that is not a `#` header or blank; nil for a missing or empty file.
func lastErrorLine(_ url: URL) -> String? {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
    let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
    if let e = lines.last(where: { $0.hasPrefix("Error: ") }) { return String(e.dropFirst(7)) }
    return lines.last { !$0.isEmpty && !$0.hasPrefix("#") }
}

extension Array {
    /// (elements where `p` holds, the others), each in order.
    func partitioned(_ p: (Element) -> Bool) -> ([Element], [Element]) {
        var yes: [Element] = [], no: [Element] = []
        for e in self { if p(e) { yes.append(e) } else { no.append(e) } }
        return (yes, no)
    }
}
