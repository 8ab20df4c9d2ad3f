import Foundation
import Tensors
import Training

/// A run's Slurm task: `<run dir>/slurm.json`, written when the run is submitted, so that `sweep status`
/// and a later `sweep run` can ask squeue about it. Slurm holds jobs, never truth: whether the run
/// finished is its record's to say; this only names the task to look for.
public struct SlurmJob: Codable, Equatable, Sendable {
    /// The array job id ("123").
    public var jobID: String
    public var arrayTask: Int
    public var submittedAt: String
    /// The batch script (under `<results>/<suite>/slurm`).
    public var script: String
    /// Slurm's output file for the task (its own messages: time limit, cancellation).
    public var output: String

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", arrayTask = "array_task", submittedAt = "submitted_at", script, output
    }

    public init(jobID: String, arrayTask: Int, submittedAt: String, script: String, output: String) {
        self.jobID = jobID
        self.arrayTask = arrayTask
        self.submittedAt = submittedAt
        self.script = script
        self.output = output
    }

    /// "123_4": how squeue -r, scontrol, sacct and `--dependency` name the task.
    public var task: String { "\(jobID)_\(arrayTask)" }

    static func url(_ dir: RunDirectory) -> URL { dir.url.appendingPathComponent("slurm.json") }

    public static func read(_ dir: RunDirectory) -> SlurmJob? {
        guard let data = try? Data(contentsOf: url(dir)) else { return nil }
        return try? JSONDecoder().decode(SlurmJob.self, from: data)
    }

    public func write(_ dir: RunDirectory) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try atomicWrite(e.encode(self), to: Self.url(dir))
    }
}

/// What `squeue -h -r -o '%i|%T|%r'` says: the tasks still in the queue (pending, running, completing…),
/// by task name ("123_4"; a job that is not an array: "123").
public struct SlurmQueueSnapshot: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var state: String
        public var reason: String
    }

    public var tasks: [String: Entry]

    public init(tasks: [String: Entry] = [:]) { self.tasks = tasks }

    /// Parses squeue's lines `id|STATE|reason`; blank lines are ignored, other malformed lines too (squeue
    /// prints nothing else with `-h`).
    public static func parse(_ text: String) -> SlurmQueueSnapshot {
        var s = SlurmQueueSnapshot()
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count >= 2, !f[0].isEmpty else { continue }
            s.tasks[f[0]] = Entry(state: f[1], reason: f.count > 2 ? f[2] : "")
        }
        return s
    }

    public func entry(_ job: SlurmJob) -> Entry? { tasks[job.task] }
}

/// How an ended task ended, from `sacct` (accounting on) or `scontrol show job` (for `MinJobAge` after
/// the end).
public struct SlurmTaskEnd: Sendable, Equatable {
    /// COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED…
    public var state: String
    public var exitCode: Int32
    /// The signal that ended the task's batch script, 0 when none.
    public var signal: Int32
    /// Slurm's reason (e.g. DependencyNeverSatisfied), when it gives one.
    public var reason: String?

    public var succeeded: Bool { state == "COMPLETED" && exitCode == 0 && signal == 0 }

    /// `sacct -n -P -X -j <task> -o JobID,State,ExitCode` lines (`123_4|CANCELLED by 0|0:15`): the line of
    /// the task itself.
    public static func parseSacct(_ text: String, task: String) -> SlurmTaskEnd? {
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3, f[0] == task else { continue }
            let (code, signal) = exitCode(f[2])
            return SlurmTaskEnd(state: String(f[1].split(separator: " ").first ?? ""), exitCode: code, signal: signal, reason: nil)
        }
        return nil
    }

    /// `scontrol show job -o <task>`: one line of `Key=Value` fields (JobState, Reason, ExitCode). Nil
    /// while the task has not ended.
    public static func parseScontrol(_ text: String) -> SlurmTaskEnd? {
        var fields: [String: String] = [:]
        for token in text.split(whereSeparator: { $0 == " " || $0.isNewline }) {
            guard let eq = token.firstIndex(of: "=") else { continue }
            let key = String(token[..<eq])
            if fields[key] == nil { fields[key] = String(token[token.index(after: eq)...]) }
        }
        guard let state = fields["JobState"], !["PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED"].contains(state)
        else { return nil }
        let (code, signal) = exitCode(fields["ExitCode"] ?? "0:0")
        let reason = fields["Reason"].flatMap { $0 == "None" ? nil : $0 }
        return SlurmTaskEnd(state: state, exitCode: code, signal: signal, reason: reason)
    }

    /// "1:0" → (1, 0); "0:15" → (0, 15).
    static func exitCode(_ s: String) -> (Int32, Int32) {
        let p = s.split(separator: ":").map { Int32($0) ?? 0 }
        return (p.first ?? 0, p.count > 1 ? p[1] : 0)
    }
}

/// The Slurm commands a sweep uses, behind a protocol so the executor's logic is tested without Slurm.
public protocol SlurmClient {
    /// `sbatch --parsable <script>`: the job id.
    func submit(_ script: URL) throws -> String
    /// The queue's tasks among `jobIDs` (all jobs when empty). Throws when squeue cannot answer, so a
    /// controller hiccup is never read as "every task ended".
    func queue(jobIDs: [String]) throws -> SlurmQueueSnapshot
    /// How an ended task ended (sacct, else scontrol), or nil when Slurm no longer knows.
    func end(of task: String) -> SlurmTaskEnd?
}

/// `SlurmClient` through the real commands (`sbatch`, `squeue`, `sacct`, `scontrol` on the PATH; the
/// cluster from `SLURM_CONF` or the system's configuration).
public struct SlurmCommands: SlurmClient {
    public init() {}

    public func submit(_ script: URL) throws -> String {
        let r = try Self.run("sbatch", ["--parsable", script.path])
        guard r.status == 0 else { throw SuiteError("sbatch \(script.path) failed: \(r.errorLine)") }
        let id = r.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw SuiteError("sbatch \(script.path) answered '\(r.output)', not a job id") }
        return id
    }

    public func queue(jobIDs: [String]) throws -> SlurmQueueSnapshot {
        var args = ["-h", "-r", "-o", "%i|%T|%r"]
        if !jobIDs.isEmpty { args += ["--jobs", jobIDs.joined(separator: ",")] }
        let r = try Self.run("squeue", args)
        if r.status != 0 {
            // Every id gone from the controller: squeue says so and exits 1; that is an empty queue.
            if r.error.contains("Invalid job id") { return SlurmQueueSnapshot() }
            throw SuiteError("squeue failed: \(r.errorLine)")
        }
        return SlurmQueueSnapshot.parse(r.output)
    }

    public func end(of task: String) -> SlurmTaskEnd? {
        if let r = try? Self.run("sacct", ["-n", "-P", "-X", "-j", task, "-o", "JobID,State,ExitCode"]), r.status == 0,
           let end = SlurmTaskEnd.parseSacct(r.output, task: task) {
            return end
        }
        if let r = try? Self.run("scontrol", ["show", "job", "-o", task]), r.status == 0 {
            return SlurmTaskEnd.parseScontrol(r.output)
        }
        return nil
    }

    /// Whether `squeue` is on the PATH.
    public static var available: Bool { (try? run("squeue", ["--version"]))?.status == 0 }

    struct Result {
        var status: Int32
        var output: String
        var error: String
        var errorLine: String {
            let e = error.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
            return e.isEmpty ? "exit status \(status)" : e
        }
    }

    static func run(_ command: String, _ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [command] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw SuiteError("cannot run \(command): \(error.localizedDescription)") }
        // Both pipes are drained before waiting, so a full pipe cannot block the child.
        final class Buffer: @unchecked Sendable { var data = Data() }
        let errData = Buffer()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        if p.terminationStatus == 127 { throw SuiteError("\(command) not found; is Slurm installed on this machine?") }
        return Result(status: p.terminationStatus, output: String(decoding: outData, as: UTF8.self),
                      error: String(decoding: errData.data, as: UTF8.self))
    }
}
