import Datasets
import Foundation
import Tensors
import Training

public struct SweepSummary: Sendable {
    public var total: Int
    public var alreadyFinished: Int
    public var finished: Int
    /// Runs finished by another process (another sweep, a Slurm task) while this sweep waited for them.
    public var finishedElsewhere: Int
    /// Runs handed to the executor and not waited for (`Sweep.waitsForRuns` false: submitted to Slurm).
    public var leftRunning: Int
    /// Label and reason of every run that failed or could not start (its teacher failed).
    public var failures: [(label: String, reason: String)]
    public var wallSeconds: Double
}

/// A sweep: trains a plan's runs that are not finished, through an executor, and says what happens on the
/// console. `SweepScheduler` decides what starts (teachers before the students that need them, students of
/// a failed teacher skipped, nothing twice), the executor (`LocalExecutor`) trains, and each run's record
/// says whether it finished. Finished runs are skipped (their id is the hash of the resolved config),
/// interrupted ones resume from their last checkpoint, and a failed run is recorded (`failure.json`, with
/// the reason) while the sweep goes on; rerunning a sweep picks up where it stopped.
///
/// Two sweeps (or a sweep and a Slurm task, or a hand-started `sqakd train`) may share a results folder:
/// whoever trains a run holds its lock (`RunLock`), a run locked by another process is *elsewhere* (waited
/// for, then read from its record: finished there, failed there, or taken over when the other process
/// stopped early), its students wait for it, and nothing is trained twice.
public final class Sweep {
    public let plan: Plan
    public let executor: any Executor
    public let dataRoot: String?
    /// Wait for the runs handed out to end (default). False: stop once everything that can be handed out
    /// has been (a Slurm sweep that submits and leaves; `sweep status` follows it).
    public var waitsForRuns = true
    /// Seconds between two looks at the locks of runs trained elsewhere.
    public var elsewherePoll = 0.5
    let say: (String) -> Void

    public init(plan: Plan, executor: any Executor, dataRoot: String? = nil,
                output: @escaping (String) -> Void = { print($0); fflush(stdout) }) {
        self.plan = plan
        self.executor = executor
        self.dataRoot = dataRoot
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

    public func run() throws -> SweepSummary {
        try Self.checkData(plan.suite.dataset, root: dataRoot)
        if !plan.unmigrated.isEmpty {
            say("note: \(plan.unmigrated.count) run(s) are in folders named by their ids of before; they are used where they are, "
                + "and `sqakd results migrate` renames them")
        }
        let started = Date()
        do { try FileManager.default.createDirectory(at: plan.runsDirectory, withIntermediateDirectories: true) } catch {
            throw SuiteError("cannot create \(plan.runsDirectory.path): \(fileErrorReason(error))")
        }
        let trainImages = (try? DatasetKind(id: plan.suite.dataset).info.trainCount) ?? 50_000
        var eta = SweepETA(trainImages: trainImages,
                           distillationCost: SweepETA.measuredDistillationCost(SuiteResults.readRecords(plan.runsDirectory))
                               ?? SweepETA.defaultDistillationCost)

        var scheduler = try SweepScheduler(runs: plan.runs, store: StoreSnapshot.read(plan.runs))
        for r in scheduler.retrained {
            say("\(r.label) is finished but its checkpoint is not here; training it again for its students")
        }
        let adopted = executor.adopt(scheduler.waiting + scheduler.elsewhere)
        scheduler.adopt(adopted.map(\.run.id))
        let total = plan.runs.count
        let alreadyFinished = scheduler.alreadyFinished
        for r in scheduler.waiting + adopted.map(\.run) { eta.add(eta.cost(of: r, epochsDone: Self.epochsDone(r))) }
        var more = ""
        if !adopted.isEmpty { more += ", \(adopted.count) already queued" }
        if scheduler.elsewhereCount > 0 { more += ", \(scheduler.elsewhereCount) being trained by another process" }
        say("sweep \(plan.suite.name), budget \(plan.budget.name) (\(plan.budget.summary)), \(plan.seeds) seed(s): \(total) runs, "
            + "\(alreadyFinished) already finished, \(scheduler.waitingCount) to train\(more); \(executor.summary); "
            + "results in \(plan.runsDirectory.relativePathForDisplay)")

        var failures: [(String, String)] = []
        var ended = alreadyFinished   // finished + failed, for the [n/total] counter
        var costs: [String: Double] = [:]   // started run → its cost when it started
        func counter() -> String {
            let w = String(total).count
            let n = String(ended)
            return "[\(String(repeating: " ", count: max(0, w - n.count)) + n)/\(total)]"
        }
        func etaText() -> String {
            eta.text(parallel: min(executor.slots, max(1, scheduler.waitingCount + scheduler.startedCount)))
        }
        func fail(_ r: PlannedRun, _ reason: String, exitStatus: Int32) {
            ended += 1
            failures.append((r.label, reason))
            try? SweepFailure(runID: r.id, reason: reason, exitStatus: exitStatus, at: isoTimestamp()).write(r.runDirectory)
        }
        var finishedElsewhere = 0
        func sayElsewhere(_ r: PlannedRun) {
            let owner = RunLock.owner(r.runDirectory).map { " (\($0))" } ?? ""
            say("\(counter()) elsewhere \(r.label): being trained by another process\(owner); waiting for it")
        }
        for (r, note) in adopted { say("\(counter()) queued \(r.label)  (\(r.id)): \(note)") }
        for r in scheduler.elsewhere { sayElsewhere(r) }
        /// Runs trained elsewhere whose lock is free now: finished or failed there, or back to this sweep.
        func lookElsewhere() {
            for r in scheduler.elsewhere where !RunLock.isHeld(r.runDirectory) {
                let state = RunState.of(r)
                switch scheduler.elsewhereEnded(r.id, state: state) {
                case .finished:
                    ended += 1
                    finishedElsewhere += 1
                    let rec = try? r.runDirectory.readRecord()
                    say("\(counter()) done   \(r.label)  (trained elsewhere) best \(String(format: "%.2f", rec?.bestTop1 ?? .nan))%")
                case .failed(let reason):
                    ended += 1
                    failures.append((r.label, reason))
                    say("\(counter()) FAILED \(r.label) (elsewhere): \(reason)")
                case .waiting:
                    eta.add(eta.cost(of: r, epochsDone: Self.epochsDone(r)))
                    say("\(r.label): the other process stopped before the end; training it here")
                case .elsewhere, .started:
                    break
                }
            }
        }

        while !scheduler.isComplete {
            // Hand out what may start: teachers at once, students when their teacher has finished.
            var steps: [SweepScheduler.Step]
            repeat {
                steps = scheduler.next(limit: max(0, executor.slots - scheduler.startedCount),
                                       teacherStartedSuffices: executor.ordersDependencies)
                var refused: [String: String] = [:]
                var batch: [PlannedRun] = []
                for case .start(let r) in steps {
                    costs[r.id] = eta.cost(of: r, epochsDone: Self.epochsDone(r))
                    do { try r.prepareDirectory(); batch.append(r) } catch { refused[r.id] = "\(error)" }
                }
                for (r, reason) in executor.start(batch) { refused[r.id] = reason }
                for step in steps {
                    switch step {
                    case .skip(let r, let reason):
                        eta.ended(eta.cost(of: r, epochsDone: Self.epochsDone(r)), seconds: 0, finished: false)
                        ended += 1
                        failures.append((r.label, reason))
                        say("\(counter()) SKIP   \(r.label): its teacher failed")
                    case .start(let r):
                        if let reason = refused[r.id] {
                            scheduler.failed(r.id, reason: reason)
                            eta.ended(costs.removeValue(forKey: r.id) ?? 0, seconds: 0, finished: false)
                            fail(r, reason, exitStatus: -1)
                            say("\(counter()) FAILED \(r.label): \(reason)")
                        } else {
                            say("\(counter()) start  \(r.label)  (\(r.id))")
                        }
                    }
                }
            } while !steps.isEmpty
            if !waitsForRuns { break }
            if scheduler.startedCount == 0 && scheduler.elsewhereCount == 0 {
                // Nothing can start: every remaining student waits on a teacher that is not in this plan.
                for r in scheduler.abandonWaiting() { failures.append((r.label, SweepScheduler.teacherMissing)) }
                break
            }
            var ends: [RunEnd] = []
            if scheduler.startedCount == 0 {
                Thread.sleep(forTimeInterval: elsewherePoll)
            } else {
                ends = executor.waitForEnds(timeout: scheduler.elsewhereCount > 0 ? elsewherePoll : nil)
            }
            for end in ends {
                let r = end.run
                let cost = costs.removeValue(forKey: r.id) ?? 0
                let record = try? r.runDirectory.readRecord()
                let finished = record.map { $0.status == "finished" && $0.epochs.count >= r.config.epochs } ?? false
                if end.exitStatus == RunLock.busyExitStatus || (!finished && RunLock.isHeld(r.runDirectory)) {
                    // Another process took the run's lock first: it trains the run; this sweep waits for it (and
                    // reads it as done elsewhere if that process has already finished it).
                    scheduler.movedElsewhere(r.id)
                    eta.ended(cost, seconds: 0, finished: false)
                    sayElsewhere(r)
                } else if end.exitedCleanly, let rec = record, finished {
                    SweepFailure.clear(r.runDirectory)
                    scheduler.finished(r.id)
                    ended += 1
                    eta.ended(cost, seconds: end.seconds, finished: true)
                    say("\(counter()) done   \(r.label)  best \(String(format: "%.2f", rec.bestTop1 ?? .nan))% (epoch \(rec.bestEpoch ?? 0)), "
                        + "last \(String(format: "%.2f", rec.lastTop1 ?? .nan))%  \(formatDuration(end.seconds))  · \(etaText())")
                } else {
                    scheduler.failed(r.id, reason: end.reason)
                    eta.ended(cost, seconds: end.seconds, finished: false)
                    fail(r, end.reason, exitStatus: end.exitStatus)
                    say("\(counter()) FAILED \(r.label): \(end.reason)  · \(etaText())")
                }
            }
            lookElsewhere()
        }
        let wall = Date().timeIntervalSince(started)
        let finished = scheduler.finishedCount
        let trained = finished - alreadyFinished - finishedElsewhere
        let leftRunning = scheduler.startedCount
        if leftRunning > 0 {
            say("sweep \(plan.suite.name): \(leftRunning) run(s) handed to the executor and not waited for; "
                + "`sqakd sweep status` follows them, and `sqakd sweep run` again submits only what is neither finished nor queued")
        }
        let notHandedOut = scheduler.waitingCount + scheduler.elsewhereCount
        if !waitsForRuns, notHandedOut > 0 {
            say("sweep \(plan.suite.name): \(notHandedOut) run(s) not handed out: being trained by another process, or waiting for a "
                + "teacher that is; run the sweep again once it has finished")
        }
        say("sweep \(plan.suite.name): \(finished)/\(total) runs finished (\(trained) trained now, \(alreadyFinished) before"
            + (finishedElsewhere > 0 ? ", \(finishedElsewhere) elsewhere" : "") + "), "
            + "\(failures.count) failed, in \(formatDuration(wall))")
        for (label, reason) in failures { say("  failed: \(label): \(reason)") }
        return SweepSummary(total: total, alreadyFinished: alreadyFinished, finished: finished, finishedElsewhere: finishedElsewhere,
                            leftRunning: leftRunning, failures: failures, wallSeconds: wall)
    }

    static func epochsDone(_ r: PlannedRun) -> Int { (try? r.runDirectory.readRecord())?.epochs.count ?? 0 }
}

func isoTimestamp() -> String { ISO8601DateFormatter().string(from: Date()) }
