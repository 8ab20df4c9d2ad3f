import Foundation
import Testing
@testable import Bench
@testable import Training

/// The Table 4 CIFAR-10 suite at its smoke budget, one seed: teachers resnet20 and vgg8, then 6 resnet20
/// students and 2 vgg8 students.
private func table4Plan(results: URL) throws -> Plan {
    try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/table4-cifar10.yaml")), budget: "smoke", seeds: 1,
             resultsRoot: results)
}

/// A Slurm that runs nothing: it keeps the submitted scripts, numbers jobs from 100, lists the tasks in
/// `alive` as queued, and says how an ended task ended from `ends`. With `completeOnLook`, every look at the
/// queue "runs" the tasks listed by an earlier look whose dependency succeeded: each gets a synthetic finished record and
/// leaves the queue, except the runs in `failing`, which leave it FAILED with an error line in their
/// console; a task whose dependency failed is cancelled (`--kill-on-invalid-dep`).
private final class FakeSlurm: SlurmClient {
    var scripts: [String] = []
    var alive: [String: String] = [:]   // task → state
    var ends: [String: SlurmTaskEnd] = [:]
    var completeOnLook = false
    var failing: Set<String> = []   // run directory paths
    var looks = 0
    private var seen: Set<String> = []
    private var nextID = 100
    /// task → run directory, from the scripts.
    var dirs: [String: String] = [:]
    /// task → the task it waits for (`afterok`).
    var deps: [String: String] = [:]

    func submit(_ script: URL) throws -> String {
        let text = try String(contentsOf: script, encoding: .utf8)
        scripts.append(text)
        let id = "\(nextID)"
        nextID += 1
        let runDirs = text.split(separator: "\n").filter { $0.hasPrefix("  /") }.map { String($0.dropFirst(2).split(separator: " ")[0]) }
        let dep = text.split(separator: "\n").first { $0.hasPrefix("#SBATCH --dependency=afterok:") }.map { String($0.split(separator: ":")[1]) }
        for (i, d) in runDirs.enumerated() {
            alive["\(id)_\(i)"] = "PENDING"
            dirs["\(id)_\(i)"] = d
            deps["\(id)_\(i)"] = dep
        }
        return id
    }

    func queue(jobIDs: [String]) throws -> SlurmQueueSnapshot {
        looks += 1
        if completeOnLook {
            for (task, _) in alive.sorted(by: { $0.key < $1.key }) where seen.contains(task) {
                if let dep = deps[task] {
                    if alive[dep] != nil { continue }
                    if ends[dep]?.succeeded != true {
                        ends[task] = SlurmTaskEnd(state: "CANCELLED", exitCode: 0, signal: 0, reason: "DependencyNeverSatisfied")
                        alive[task] = nil
                        continue
                    }
                }
                let dir = RunDirectory(URL(fileURLWithPath: dirs[task]!))
                let config = try dir.readConfig()
                if failing.contains(dir.url.path) {
                    try "run directory: x\nError: boom\n".write(to: dir.url.appendingPathComponent("console.txt"), atomically: true, encoding: .utf8)
                    ends[task] = SlurmTaskEnd(state: "FAILED", exitCode: 1, signal: 0, reason: "NonZeroExitCode")
                } else {
                    let run = PlannedRun(cell: CellKey(model: config.model, quantizer: config.quantizer, bits: config.bits, method: .fp),
                                         seed: config.seed, config: config, directory: dir.url, teacherID: nil)
                    try dir.writeRecord(syntheticRecord(run, curve: Array(repeating: 50, count: config.epochs)))
                    ends[task] = SlurmTaskEnd(state: "COMPLETED", exitCode: 0, signal: 0, reason: nil)
                }
                alive[task] = nil
            }
        }
        seen.formUnion(alive.keys)
        var s = SlurmQueueSnapshot()
        for (task, state) in alive where jobIDs.isEmpty || jobIDs.contains(String(task.split(separator: "_")[0])) {
            s.tasks[task] = .init(state: state, reason: "None")
        }
        return s
    }

    func end(of task: String) -> SlurmTaskEnd? { ends[task] }
}

private func executor(_ plan: Plan, _ fake: FakeSlurm, dryRun: Bool = false, lines: Box<[String]> = Box([])) throws -> SlurmExecutor {
    try SlurmExecutor(plan: plan, executable: URL(fileURLWithPath: "/opt/sqakd/bin/sqakd"), options: SlurmOptions(cpusPerTask: 3),
                      dataRoot: "/data", dryRun: dryRun, client: fake, poll: 0.01,
                      workingDirectory: URL(fileURLWithPath: "/home/me/sqakd"), output: { lines.value.append($0) })
}

final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}

@Suite("Slurm scripts, batching and queue parsing (no Slurm)")
struct SlurmScriptTests {
    @Test("options: sbatch's time and memory forms pass; anything else is one line naming the option and value")
    func options() throws {
        for t in ["30", "30:00", "12:30:00", "2-00", "2-12:00", "1-00:00:00"] { try SlurmOptions(time: t).validate() }
        try SlurmOptions(memory: "8G").validate()
        try SlurmOptions(partition: "cpu", extraLines: ["--qos=long"]).validate()
        let bad: [(SlurmOptions, String)] = [
            (SlurmOptions(time: "1h"), "--time '1h' is not a Slurm time limit"),
            (SlurmOptions(cpusPerTask: 0), "--cpus-per-task must be ≥ 1, got 0"),
            (SlurmOptions(memory: "8 GB"), "--mem '8 GB' is not a Slurm memory size"),
            (SlurmOptions(partition: "a b"), "--partition 'a b' must be one word"),
            (SlurmOptions(extraLines: ["#SBATCH --qos=x"]), "--sbatch-line '#SBATCH --qos=x' must be one sbatch option"),
        ]
        for (o, message) in bad {
            #expect(throws: SuiteError.self) { try o.validate() }
            do { try o.validate() } catch { #expect("\(error)".hasPrefix(message), "\(error)") }
        }
    }

    @Test("batching: teachers in one array; students one array per teacher task, or one without dependency")
    func batching() throws {
        let plan = try table4Plan(results: URL(fileURLWithPath: "/r"))
        let (r20, vgg) = (plan.teachers[0], plan.teachers[1])
        let t = SlurmBatching.teachers(plan.runs, suite: "t4")
        #expect(t.count == 1 && t[0].runs.map(\.label) == [r20.label, vgg.label] && t[0].dependency == nil && t[0].name == "sqakd-t4-teachers")
        let s = SlurmBatching.students(plan.runs, suite: "t4") { $0 == r20.id ? "7_0" : $0 == vgg.id ? "7_1" : nil }
        #expect(s.map(\.dependency) == ["7_0", "7_1"] && s.map(\.runs.count) == [6, 2])
        #expect(s.map(\.name) == ["sqakd-t4-students-resnet20", "sqakd-t4-students-vgg8"])
        #expect(s[0].runs.map(\.label) == plan.students.filter { $0.teacherID == r20.id }.map(\.label))
        // Finished teachers: one array, no dependency; arrays are cut at the size limit.
        let free = SlurmBatching.students(plan.runs, suite: "t4", maxArraySize: 3) { _ in nil }
        #expect(free.map(\.runs.count) == [3, 3, 2] && free.allSatisfy { $0.dependency == nil && $0.name == "sqakd-t4-students" })
        #expect(free.flatMap(\.runs).map(\.label) == plan.students.map(\.label))
    }

    @Test("the job script: array, afterok, options, absolute paths, threads = CPUs per task, console appended")
    func script() throws {
        let plan = try table4Plan(results: URL(fileURLWithPath: "/shared/results"))
        let students = Array(plan.students.prefix(2))
        let options = SlurmOptions(partition: "cpu", account: "proj7", time: "1-00:00:00", cpusPerTask: 4, memory: "8G",
                                   extraLines: ["--qos=long", "--constraint=avx512"])
        let text = SlurmScript(options: options, executable: "/opt/sqakd", workingDirectory: "/home/me/my work", dataRoot: "/data",
                               logDirectory: "/shared/results/table4-cifar10/slurm")
            .render(SlurmSubmission(name: "sqakd-t4-students-resnet20", runs: students, dependency: "41_0"))
        let expected = """
            #!/bin/bash
            # sqakd-t4-students-resnet20: 2 run(s) of sqakd, one array task each; written by `sqakd sweep run --executor slurm`.
            #SBATCH --job-name=sqakd-t4-students-resnet20
            #SBATCH --array=0-1
            #SBATCH --ntasks=1
            #SBATCH --cpus-per-task=4
            #SBATCH --dependency=afterok:41_0
            #SBATCH --kill-on-invalid-dep=yes
            #SBATCH --partition=cpu
            #SBATCH --account=proj7
            #SBATCH --time=1-00:00:00
            #SBATCH --mem=8G
            #SBATCH --output=/shared/results/table4-cifar10/slurm/%A_%a.out
            #SBATCH --open-mode=append
            #SBATCH --chdir=/home/me/my work
            #SBATCH --qos=long
            #SBATCH --constraint=avx512
            set -u
            unset SQAKD_SWEEP_PARENT
            runs=(
              /shared/results/table4-cifar10/runs/\(students[0].id)  # \(students[0].label)
              /shared/results/table4-cifar10/runs/\(students[1].id)  # \(students[1].label)
            )
            dir=${runs[$SLURM_ARRAY_TASK_ID]}
            echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) slurm task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname -s): /opt/sqakd train --config \\"$dir/config.json\\" --output \\"$dir\\" --threads 4 --data-root /data" >> "$dir/console.txt"
            exec /opt/sqakd train --config "$dir/config.json" --output "$dir" --threads 4 --data-root /data >> "$dir/console.txt" 2>&1

            """
        #expect(text == expected)
        // A teacher array has no dependency; odd paths are quoted.
        let t = SlurmScript(options: SlurmOptions(), executable: "/opt/my sqakd", workingDirectory: "/w", dataRoot: nil, logDirectory: "/l")
            .render(SlurmSubmission(name: "t", runs: [plan.teachers[0]], dependency: nil))
        #expect(!t.contains("--dependency") && t.contains("#SBATCH --array=0-0") && t.contains("exec '/opt/my sqakd' train"))
        #expect(shellQuoted("it's") == #"'it'\''s'"#)
    }

    @Test("squeue, sacct and scontrol output parsed; running and pending states are not ends")
    func parsing() {
        let q = SlurmQueueSnapshot.parse("12_0|RUNNING|None\n12_3|PENDING|Dependency\n\n13|PENDING|Resources\n")
        #expect(q.tasks.count == 3 && q.tasks["12_3"] == .init(state: "PENDING", reason: "Dependency"))
        let job = SlurmJob(jobID: "12", arrayTask: 3, submittedAt: "", script: "", output: "")
        #expect(job.task == "12_3" && q.entry(job)?.state == "PENDING")

        let sacct = "12_3|CANCELLED by 0|0:15\n12_3.batch|CANCELLED|0:15\n12_4|COMPLETED|0:0\n"
        #expect(SlurmTaskEnd.parseSacct(sacct, task: "12_3") == SlurmTaskEnd(state: "CANCELLED", exitCode: 0, signal: 15, reason: nil))
        #expect(SlurmTaskEnd.parseSacct(sacct, task: "12_4")?.succeeded == true)
        #expect(SlurmTaskEnd.parseSacct(sacct, task: "12_5") == nil)

        let failed = "JobId=14 ArrayJobId=12 ArrayTaskId=1 JobName=x JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:02"
        #expect(SlurmTaskEnd.parseScontrol(failed) == SlurmTaskEnd(state: "FAILED", exitCode: 3, signal: 0, reason: "NonZeroExitCode"))
        let dep = "JobId=2 JobState=CANCELLED Reason=DependencyNeverSatisfied ExitCode=0:0"
        #expect(SlurmTaskEnd.parseScontrol(dep)?.reason == "DependencyNeverSatisfied")
        #expect(SlurmTaskEnd.parseScontrol("JobId=2 JobState=RUNNING Reason=None ExitCode=0:0") == nil)
        #expect(SlurmTaskEnd.parseScontrol("JobId=2 JobState=COMPLETED Reason=None ExitCode=0:0")?.succeeded == true)
    }

    @Test("failure reasons: time limit and cancel say the run resumes; a failed process says exit status and error line")
    func reasons() {
        func reason(_ e: SlurmTaskEnd?, console: String? = nil, slurm: String? = nil) -> String {
            SlurmExecutor.reason(task: "12_3", end: e, epochsDone: 2, epochs: 5, consoleLine: console, slurmLine: slurm)
        }
        #expect(reason(SlurmTaskEnd(state: "TIMEOUT", exitCode: 0, signal: 0, reason: "TimeLimit"))
                == "time limit reached (slurm task 12_3, epoch 2/5 done); the next sweep run resumes it")
        #expect(reason(SlurmTaskEnd(state: "CANCELLED", exitCode: 0, signal: 15, reason: nil))
                == "cancelled (slurm task 12_3, epoch 2/5 done); the next sweep run resumes it")
        #expect(reason(SlurmTaskEnd(state: "CANCELLED", exitCode: 0, signal: 0, reason: "DependencyNeverSatisfied"))
                .hasPrefix(SweepScheduler.teacherFailed))
        #expect(reason(SlurmTaskEnd(state: "FAILED", exitCode: 1, signal: 0, reason: nil), console: "training diverged: loss nan")
                == "exit status 1: training diverged: loss nan (slurm task 12_3 FAILED)")
        #expect(reason(SlurmTaskEnd(state: "OUT_OF_MEMORY", exitCode: 0, signal: 9, reason: nil))
                == "killed by signal 9 (slurm task 12_3 OUT_OF_MEMORY)")
        #expect(reason(nil, slurm: "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***")
                .contains("DUE TO TIME LIMIT"))
        #expect(reason(nil, console: "x") == "slurm task 12_3 left the queue unfinished (epoch 2/5 done): x")

        let console = tempDir("console").appendingPathComponent("console.txt")
        writeText("# header\nrun directory: x\nError: cannot read y\nsome late stdout\n", console)
        #expect(lastErrorLine(console) == "cannot read y")
        writeText("# header\nepoch 1/2 done\n\n", console)
        #expect(lastErrorLine(console) == "epoch 1/2 done")
    }
}

@Suite("Slurm executor with a fake Slurm")
struct SlurmExecutorTests {
    @Test("start: teachers first, students held by afterok on their teacher's task; slurm.json names each run's task")
    func submission() throws {
        let results = tempDir("slurm-submit")
        let plan = try table4Plan(results: results)
        for r in plan.runs { try r.prepareDirectory() }
        let fake = FakeSlurm()
        let lines = Box<[String]>([])
        let ex = try executor(plan, fake, lines: lines)
        #expect(ex.slots == .max && ex.ordersDependencies)
        #expect(ex.start(plan.runs).isEmpty)
        #expect(fake.scripts.count == 3)
        #expect(fake.scripts[0].contains("#SBATCH --job-name=sqakd-table4-cifar10-teachers") && !fake.scripts[0].contains("--dependency"))
        #expect(fake.scripts[1].contains("#SBATCH --array=0-5") && fake.scripts[1].contains("--dependency=afterok:100_0"))
        #expect(fake.scripts[2].contains("#SBATCH --array=0-1") && fake.scripts[2].contains("--dependency=afterok:100_1"))
        #expect(fake.scripts.allSatisfy { $0.contains("--threads 3 --data-root /data") && $0.contains("#SBATCH --chdir=/home/me/sqakd") })
        #expect(SlurmJob.read(plan.teachers[1].runDirectory)?.task == "100_1")
        #expect(SlurmJob.read(plan.students[0].runDirectory)?.task == "101_0")
        let vggStudent = plan.students.first { $0.cell.model == "vgg8" }!
        #expect(SlurmJob.read(vggStudent.runDirectory)?.task == "102_0")
        let scriptFile = try #require(SlurmJob.read(plan.students[0].runDirectory)?.script)
        #expect(scriptFile.hasPrefix(results.appendingPathComponent("table4-cifar10/slurm").path) && FileManager.default.fileExists(atPath: scriptFile))
        #expect(lines.value.contains("submitted job 101: sqakd-table4-cifar10-students-resnet20, 6 task(s) after 100_0"), "\(lines.value)")

        // Ends: nothing while all are queued (timeout), then the tasks that left the queue, with reasons.
        #expect(ex.waitForEnds(timeout: 0.05).isEmpty)
        let teacher = plan.teachers[0]
        try teacher.runDirectory.writeRecord(syntheticRecord(teacher, curve: [50]))
        fake.alive["100_0"] = nil
        fake.ends["100_0"] = SlurmTaskEnd(state: "COMPLETED", exitCode: 0, signal: 0, reason: nil)
        fake.alive["100_1"] = nil
        fake.ends["100_1"] = SlurmTaskEnd(state: "TIMEOUT", exitCode: 0, signal: 0, reason: "TimeLimit")
        let ends = ex.waitForEnds(timeout: nil)
        #expect(ends.map(\.run.label) == [teacher.label, plan.teachers[1].label])
        #expect(ends[0].exitedCleanly && ends[0].exitStatus == 0)
        #expect(!ends[1].exitedCleanly && ends[1].reason == "time limit reached (slurm task 100_1, epoch 0/1 done); the next sweep run resumes it")

        // A later sweep adopts what is still queued and submits a finished teacher's students without dependency.
        let again = FakeSlurm()
        again.alive = fake.alive
        let ex2 = try executor(plan, again)
        let adopted = ex2.adopt(plan.runs)
        #expect(adopted.count == 8 && !adopted.contains { $0.run.cell.isTeacher })
        #expect(adopted[0].note == "task 101_0 pending, submitted by an earlier sweep run")
        #expect(ex2.start([plan.students[0]]).isEmpty && !again.scripts[0].contains("--dependency"))
    }

    @Test("dry run: scripts printed with placeholder dependencies, nothing submitted")
    func dryRun() throws {
        let results = tempDir("slurm-dry")
        let plan = try table4Plan(results: results)
        let fake = FakeSlurm()
        let lines = Box<[String]>([])
        let ex = try executor(plan, fake, dryRun: true, lines: lines)
        #expect(ex.start(plan.runs).isEmpty && fake.scripts.isEmpty)
        let out = lines.value.joined(separator: "\n")
        #expect(lines.value.count == 3 && out.contains("# ---- job script 1: sqakd-table4-cifar10-teachers, 2 task(s) ----"))
        #expect(out.contains("#SBATCH --dependency=afterok:<job 1: sqakd-table4-cifar10-teachers>_1"), "\(out)")
        #expect(!FileManager.default.fileExists(atPath: results.appendingPathComponent("table4-cifar10/slurm").path))
        #expect(ex.waitForEnds(timeout: nil).isEmpty)
    }

    @Test("a sweep through the Slurm executor: failures recorded like local ones; a rerun submits only what is neither finished nor queued")
    func sweep() throws {
        let data = tempDir("slurm-sweep-data"), results = tempDir("slurm-sweep")
        makeCIFAR10(root: data)
        let plan = try table4Plan(results: results)
        let vgg = plan.teachers[1]
        let fake = FakeSlurm()
        fake.completeOnLook = true
        fake.failing = [vgg.directory.path]
        var lines: [String] = []
        let summary = try Sweep(plan: plan, executor: try executor(plan, fake), dataRoot: data.path, output: { lines.append($0) }).run()
        let out = lines.joined(separator: "\n")
        #expect(summary.finished == 7 && summary.failures.count == 3, "\(out)")
        #expect(fake.scripts.count == 3)   // everything at once: teachers, then two held student arrays
        let failure = try #require(SweepFailure.read(vgg.runDirectory))
        #expect(failure.reason == "exit status 1: boom (slurm task 100_1 FAILED)" && failure.exitStatus == 1)
        #expect(out.contains("FAILED vgg8/fp/teacher/seed0: exit status 1: boom (slurm task 100_1 FAILED)"), "\(out)")

        // Rerun: one vgg8 student is still queued from the first sweep (adopted, not resubmitted); the
        // teacher and the other student are submitted again, the student held by afterok on the teacher.
        let vggStudents = plan.students.filter { $0.teacherID == vgg.id }
        let fake2 = FakeSlurm()
        fake2.alive = ["102_1": "PENDING"]
        fake2.dirs = ["102_1": vggStudents[1].directory.path]
        fake2.completeOnLook = true
        try SlurmJob(jobID: "102", arrayTask: 1, submittedAt: "", script: "", output: "").write(vggStudents[1].runDirectory)
        lines = []
        let second = try Sweep(plan: plan, executor: try executor(plan, fake2), dataRoot: data.path, output: { lines.append($0) }).run()
        #expect(second.finished == 10 && second.failures.isEmpty && second.alreadyFinished == 7, "\(lines)")
        #expect(lines[0].contains("7 already finished, 2 to train, 1 already queued"), "\(lines[0])")
        #expect(fake2.scripts.count == 2 && fake2.scripts[1].contains("--dependency=afterok:100_0"))
        #expect(fake2.scripts[0].contains(vgg.directory.path) && fake2.scripts[1].contains(vggStudents[0].directory.path))
        #expect(!fake2.scripts.joined().contains(vggStudents[1].directory.path))
        #expect(SweepFailure.read(vgg.runDirectory) == nil)
    }
}
