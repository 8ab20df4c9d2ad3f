import Foundation
import Tensors
import Training

/// The local executor: each run is a child process `sqakd train --config <dir>/config.json --output <dir>
/// --threads N` with its console appended to `<dir>/console.txt`, `jobs` at a time. The sweep's threads are
/// split evenly among the jobs of a stage (teachers, students). A child dies with the sweep (it reads the
/// sweep's pid from `SQAKD_SWEEP_PARENT`), so a killed sweep leaves no orphan training behind.
public final class LocalExecutor: Executor {
    /// Runs trained at once.
    public let jobs: Int
    /// Threads of the whole sweep.
    public let threads: Int
    public let dataRoot: String?
    /// The `sqakd` executable each run is launched with.
    public let executable: URL
    let suiteName: String
    let teacherCount: Int
    let studentCount: Int

    struct Job {
        let run: PlannedRun
        let process: Process
        let started: Date
        let console: FileHandle
    }

    /// Running jobs, in start order.
    private var running: [Job] = []

    /// The environment variable that tells a child `sqakd train` which sweep process it must die with.
    public static let parentVariable = "SQAKD_SWEEP_PARENT"
    /// How often `waitForEnds` looks at the children.
    static let pollInterval = 0.2

    public init(plan: Plan, executable: URL, jobs: Int = 1, threads: Int = 2, dataRoot: String? = nil) throws {
        guard jobs >= 1 else { throw SuiteError("--jobs must be ≥ 1") }
        guard threads >= 1 else { throw SuiteError("--threads must be ≥ 1") }
        self.jobs = jobs
        self.threads = threads
        self.dataRoot = dataRoot
        self.executable = executable
        suiteName = plan.suite.name
        teacherCount = plan.teachers.count
        studentCount = plan.students.count
    }

    /// Threads of one run: the sweep's threads over the jobs that run at once in its stage.
    public func threads(teacher: Bool) -> Int {
        let stage = teacher ? teacherCount : studentCount
        return max(1, threads / max(1, min(jobs, stage)))
    }

    public var summary: String {
        "\(jobs) job(s), \(threads(teacher: true)) thread(s) per teacher, \(threads(teacher: false)) per student"
    }

    public var slots: Int { jobs }
    public var ordersDependencies: Bool { false }

    public func start(_ runs: [PlannedRun]) -> [(run: PlannedRun, reason: String)] {
        var refused: [(run: PlannedRun, reason: String)] = []
        for r in runs {
            do { running.append(try launch(r)) } catch { refused.append((r, "\(error)")) }
        }
        return refused
    }

    public func waitForEnds(timeout: Double?) -> [RunEnd] {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        while !running.isEmpty {
            Thread.sleep(forTimeInterval: Self.pollInterval)
            let ended = running.filter { !$0.process.isRunning }
            guard !ended.isEmpty else {
                if let d = deadline, Date() >= d { return [] }
                continue
            }
            running.removeAll { job in ended.contains { $0.run.id == job.run.id } }
            return ended.map { job in
                try? job.console.close()
                let p = job.process
                return RunEnd(run: job.run, seconds: Date().timeIntervalSince(job.started),
                              exitedCleanly: p.terminationReason == .exit && p.terminationStatus == 0,
                              exitStatus: p.terminationStatus, reason: Self.reason(p, console: job.run.consoleURL))
            }
        }
        return []
    }

    /// Launches `sqakd train --config <dir>/config.json --output <dir>` with its console going to
    /// `<dir>/console.txt`, opened in append mode (a header line names the command): two processes writing
    /// it (two sweeps, a resubmitted Slurm task) add lines, never overwrite each other's.
    func launch(_ r: PlannedRun) throws -> Job {
        let dir = r.runDirectory
        let consoleURL = r.consoleURL
        let fd = open(consoleURL.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SuiteError("cannot open \(consoleURL.path): \(String(cString: strerror(errno)))") }
        let console = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var args = ["train", "--config", dir.config.path, "--output", dir.url.path, "--threads", "\(threads(teacher: r.cell.isTeacher))"]
        if let root = dataRoot { args += ["--data-root", root] }
        console.write(Data("\n# \(isoTimestamp()) sweep \(suiteName): \(executable.path) \(args.joined(separator: " "))\n".utf8))
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env[Self.parentVariable] = "\(getpid())"
        p.environment = env
        p.standardOutput = console
        p.standardError = console
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            try? console.close()
            throw SuiteError("cannot launch \(executable.path): \(fileErrorReason(error))")
        }
        return Job(run: r, process: p, started: Date(), console: console)
    }

    /// A failed child's reason: the signal that killed it, else its exit status and the error it printed
    /// (the last "Error: " line of this attempt's console, else its last line).
    static func reason(_ p: Process, console: URL) -> String {
        if p.terminationReason == .uncaughtSignal { return "killed by signal \(p.terminationStatus)" }
        return reason(exitStatus: p.terminationStatus, console: (try? String(contentsOf: console, encoding: .utf8)) ?? "")
    }

    /// The reason from a console's text: the part after the last "# … sweep" header (this attempt), its
    /// last "Error: " line (stdout lines such as "run directory: …" may follow it), else its last line.
    static func reason(exitStatus: Int32, console text: String) -> String {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let attempt = lines.lastIndex { $0.hasPrefix("#") }.map { Array(lines[($0 + 1)...]) } ?? lines
        let error = attempt.last { $0.hasPrefix("Error: ") }.map { String($0.dropFirst(7)) }
        let line = error ?? attempt.last { !$0.isEmpty } ?? ""
        return line.isEmpty ? "exit status \(exitStatus)" : "exit status \(exitStatus): \(line)"
    }
}
