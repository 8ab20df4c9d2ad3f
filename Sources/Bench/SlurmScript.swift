import Foundation
import Training

/// What every job of a Slurm sweep asks for (`sqakd sweep run --executor slurm` options).
public struct SlurmOptions: Sendable, Equatable {
    public var partition: String?
    public var account: String?
    /// Time limit per task, in one of sbatch's forms (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
    /// `D-HH:MM:SS`). A task stopped by it resumes from its last epoch when the sweep is run again.
    public var time: String?
    /// CPUs per task; the task trains with as many threads (results are bit-identical for a thread count).
    public var cpusPerTask: Int
    /// Memory per node (sbatch `--mem`: a number with an optional K/M/G/T suffix).
    public var memory: String?
    /// Extra `#SBATCH` lines, written after ours (e.g. `--qos=long`, `--constraint=avx512`).
    public var extraLines: [String]

    public init(partition: String? = nil, account: String? = nil, time: String? = nil, cpusPerTask: Int = 2,
                memory: String? = nil, extraLines: [String] = []) {
        self.partition = partition
        self.account = account
        self.time = time
        self.cpusPerTask = cpusPerTask
        self.memory = memory
        self.extraLines = extraLines
    }

    /// One-line errors naming the option and the value.
    public func validate() throws {
        guard cpusPerTask >= 1 else { throw SuiteError("--cpus-per-task must be ≥ 1, got \(cpusPerTask)") }
        if let t = time, t.range(of: #"^(\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?|\d+(:\d{1,2}(:\d{1,2})?)?)$"#, options: .regularExpression) == nil {
            throw SuiteError("--time '\(t)' is not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
        }
        if let m = memory, m.range(of: #"^\d+[KMGTkmgt]?$"#, options: .regularExpression) == nil {
            throw SuiteError("--mem '\(m)' is not a Slurm memory size (a number with an optional K, M, G or T suffix)")
        }
        for (flag, value) in [("--partition", partition), ("--account", account)] {
            if let v = value, v.isEmpty || v.contains(where: { $0.isWhitespace }) {
                throw SuiteError("\(flag) '\(v)' must be one word")
            }
        }
        for line in extraLines where line.contains("\n") || !line.hasPrefix("-") {
            throw SuiteError("--sbatch-line '\(line)' must be one sbatch option, e.g. --qos=long")
        }
    }

    /// "partition gpu, account a1, time 1-00:00:00, 2 CPU(s) and 2 thread(s) per task, mem 8G".
    public var summary: String {
        var parts: [String] = []
        if let p = partition { parts.append("partition \(p)") }
        if let a = account { parts.append("account \(a)") }
        if let t = time { parts.append("time \(t)") }
        parts.append("\(cpusPerTask) CPU(s) and \(cpusPerTask) thread(s) per task")
        if let m = memory { parts.append("mem \(m)") }
        return parts.joined(separator: ", ")
    }
}

/// One `sbatch` of a sweep: a job array, one task per run (task i trains `runs[i]`), held until the
/// teacher's task `dependency` has ended successfully when set (`--dependency=afterok:<task>`).
public struct SlurmSubmission: Sendable {
    public var name: String
    public var runs: [PlannedRun]
    /// The teacher task ("123_0") the runs wait for, or nil.
    public var dependency: String?
}

/// How a batch of runs becomes job arrays: the teachers in one array, then the students one array per
/// teacher task they wait for (students whose teacher has finished: one array without dependency),
/// every array in plan order and at most `maxArraySize` tasks (Slurm's default `MaxArraySize` is 1001).
public enum SlurmBatching {
    public static let maxArraySize = 1000

    public static func teachers(_ runs: [PlannedRun], suite: String, maxArraySize: Int = maxArraySize) -> [SlurmSubmission] {
        chunks(runs.filter(\.cell.isTeacher), maxArraySize).map {
            SlurmSubmission(name: "sqakd-\(suite)-teachers", runs: $0, dependency: nil)
        }
    }

    /// `teacherTask(id)`: the task a student's teacher runs as, or nil when the teacher needs no waiting
    /// for (finished).
    public static func students(_ runs: [PlannedRun], suite: String, maxArraySize: Int = maxArraySize,
                                teacherTask: (String) -> String?) -> [SlurmSubmission] {
        var order: [String?] = []
        var groups: [String?: [PlannedRun]] = [:]
        for r in runs where !r.cell.isTeacher {
            let dep = r.teacherID.flatMap(teacherTask)
            if groups[dep] == nil { order.append(dep) }
            groups[dep, default: []].append(r)
        }
        return order.flatMap { dep -> [SlurmSubmission] in
            let runs = groups[dep]!
            let name = "sqakd-\(suite)-students" + (dep == nil ? "" : "-\(runs[0].cell.model)")
            return chunks(runs, maxArraySize).map { SlurmSubmission(name: name, runs: $0, dependency: dep) }
        }
    }

    static func chunks(_ runs: [PlannedRun], _ size: Int) -> [[PlannedRun]] {
        stride(from: 0, to: runs.count, by: max(1, size)).map { Array(runs[$0..<min(runs.count, $0 + size)]) }
    }
}

/// The batch script of a submission: `#SBATCH` lines, then the run directories as a bash array, and the
/// task picks its own with `SLURM_ARRAY_TASK_ID` and execs
/// `sqakd train --config <dir>/config.json --output <dir> --threads <cpus per task>`, its output appended
/// to `<dir>/console.txt` (append mode: a resubmitted or concurrent attempt adds lines, never overwrites).
/// Every path is absolute; the task starts in the sweep's working directory (`--chdir`), against which the
/// relative teacher paths of a run's config resolve. Slurm's own messages about a task (time limit,
/// cancellation) go to `<log dir>/%A_%a.out`.
public struct SlurmScript {
    public var options: SlurmOptions
    /// The `sqakd` executable, on the path shared by the nodes.
    public var executable: String
    public var workingDirectory: String
    public var dataRoot: String?
    /// Where Slurm writes each task's own output (`<results>/<suite>/slurm`).
    public var logDirectory: String

    public init(options: SlurmOptions, executable: String, workingDirectory: String, dataRoot: String?, logDirectory: String) {
        self.options = options
        self.executable = executable
        self.workingDirectory = workingDirectory
        self.dataRoot = dataRoot
        self.logDirectory = logDirectory
    }

    public func render(_ s: SlurmSubmission) -> String {
        var lines = ["#!/bin/bash",
                     "# \(s.name): \(s.runs.count) run(s) of sqakd, one array task each; written by `sqakd sweep run --executor slurm`.",
                     "#SBATCH --job-name=\(s.name)",
                     "#SBATCH --array=0-\(s.runs.count - 1)",
                     "#SBATCH --ntasks=1",
                     "#SBATCH --cpus-per-task=\(options.cpusPerTask)"]
        if let d = s.dependency {
            lines += ["#SBATCH --dependency=afterok:\(d)", "#SBATCH --kill-on-invalid-dep=yes"]
        }
        if let p = options.partition { lines.append("#SBATCH --partition=\(p)") }
        if let a = options.account { lines.append("#SBATCH --account=\(a)") }
        if let t = options.time { lines.append("#SBATCH --time=\(t)") }
        if let m = options.memory { lines.append("#SBATCH --mem=\(m)") }
        lines += ["#SBATCH --output=\(logDirectory)/%A_%a.out",
                  "#SBATCH --open-mode=append",
                  "#SBATCH --chdir=\(workingDirectory)"]
        lines += options.extraLines.map { "#SBATCH \($0)" }
        lines += ["set -u", "unset \(LocalExecutor.parentVariable)", "runs=("]
        lines += s.runs.map { "  \(shellQuoted($0.directory.path))  # \($0.label)" }
        lines += [")",
                  "dir=${runs[$SLURM_ARRAY_TASK_ID]}"]
        var command = [executable, "train", "--config", "$dir/config.json", "--output", "$dir", "--threads", "\(options.cpusPerTask)"]
        if let root = dataRoot { command += ["--data-root", root] }
        let rendered = command.map { $0.hasPrefix("$dir") ? "\"\($0)\"" : shellQuoted($0) }.joined(separator: " ")
        lines += ["echo \"# $(date -u +%Y-%m-%dT%H:%M:%SZ) slurm task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname -s): \(rendered.replacingOccurrences(of: "\"", with: "\\\""))\" >> \"$dir/console.txt\"",
                  "exec \(rendered) >> \"$dir/console.txt\" 2>&1"]
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `s` as one bash word: unchanged when it is plain, else single-quoted.
func shellQuoted(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || "/._-+=:,@%".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
