import Foundation
import Training

/// What the result store says about a plan's runs when a sweep starts: each run's state (its record,
/// failure note and lock, `RunState.of`) and which runs still have their best checkpoint on disk.
/// A run id missing from `states` is pending.
public struct StoreSnapshot: Sendable {
    public var states: [String: RunState]
    /// Ids of the runs whose `best.safetensors` is present (a teacher's students load it).
    public var checkpoints: Set<String>

    public init(states: [String: RunState] = [:], checkpoints: Set<String> = []) {
        self.states = states
        self.checkpoints = checkpoints
    }

    /// Reads the state of every run from its directory.
    public static func read(_ runs: [PlannedRun]) -> StoreSnapshot {
        var s = StoreSnapshot()
        for r in runs {
            s.states[r.id] = RunState.of(r)
            if FileManager.default.fileExists(atPath: r.runDirectory.bestCheckpoint.path) { s.checkpoints.insert(r.id) }
        }
        return s
    }

    public func state(_ id: String) -> RunState { states[id] ?? .pending }
}

/// Decides, from a plan and a `StoreSnapshot`, which runs a sweep starts and when; no processes, no files,
/// no clock (the executor and the driver, `Sweep`, do those). The rules:
/// * A run the store has finished is not trained again, except a finished teacher whose checkpoint is gone
///   while one of its students still has to be trained (committed results hold records, not checkpoints):
///   it is trained again first (same config, same numbers); `retrained` lists those.
/// * Pending, interrupted and failed runs are trained (an interrupted one resumes from its checkpoint, a
///   failed one is tried again).
/// * A run the store says is running (another process holds its lock: another sweep, a Slurm task, a hand-started
///   `sqakd train`) is *elsewhere*: not started, not failed; the sweep waits for it and then reads its state
///   (`elsewhereEnded`). Its students wait for it like for a teacher of this sweep. A started run whose
///   process found the lock taken comes back the same way (`movedElsewhere`).
/// * Runs the executor already holds (queued by an earlier sweep, `adopt`) count as started.
/// * Runs are handed out in plan order (teachers first, then students seed by seed), at most `limit` per
///   call. A student is handed out once its teacher has finished or, for an executor that orders
///   dependencies itself (`Executor.ordersDependencies`, Slurm's `afterok`), once its teacher has started.
/// * A student whose teacher failed is not started: `next` skips it (it fails with the reason
///   `teacherFailed`).
/// * Every run is handed out at most once; `finished(_:)` / `failed(_:reason:)` report how a started run
///   ended.
public struct SweepScheduler: Sendable {
    /// Where a run stands in this sweep.
    public enum Phase: Equatable, Sendable {
        /// To be trained; not handed out yet.
        case waiting
        /// Handed to the executor, not ended yet.
        case started
        /// Being trained by another process; waited for, never handed out while it is.
        case elsewhere
        case finished
        case failed(reason: String)
    }

    /// One decision of `next`.
    public enum Step: Sendable {
        case start(PlannedRun)
        /// Not trained, with the reason (its teacher failed).
        case skip(PlannedRun, reason: String)
    }

    public static let teacherFailed = "not trained: its teacher failed"
    public static let teacherMissing = "not trained: its teacher is not finished"

    /// The plan's runs in plan order.
    public let runs: [PlannedRun]
    public private(set) var phases: [String: Phase] = [:]
    /// Finished teachers trained again for their students because their checkpoint is gone.
    public private(set) var retrained: [PlannedRun] = []
    /// Runs the store had finished when the sweep started (and that are not trained again).
    public let alreadyFinished: Int

    public init(runs: [PlannedRun], store: StoreSnapshot) throws {
        self.runs = runs
        var finished = 0
        for r in runs {
            switch store.state(r.id) {
            case .finished:
                let studentWaits = runs.contains { $0.teacherID == r.id && !store.state($0.id).isFinished }
                if r.cell.isTeacher, !store.checkpoints.contains(r.id), studentWaits {
                    retrained.append(r)
                    phases[r.id] = .waiting
                } else {
                    phases[r.id] = .finished
                    finished += 1
                }
            case .running:
                phases[r.id] = .elsewhere
            case .pending, .queued, .interrupted, .failed:
                phases[r.id] = .waiting
            }
        }
        alreadyFinished = finished
    }

    public func phase(_ id: String) -> Phase? { phases[id] }

    /// Runs waiting to be handed out.
    public var waiting: [PlannedRun] { runs.filter { phases[$0.id] == .waiting } }
    public var waitingCount: Int { runs.reduce(0) { $0 + (phases[$1.id] == .waiting ? 1 : 0) } }
    /// Runs handed out and not ended.
    public var startedCount: Int { phases.values.reduce(0) { $0 + ($1 == .started ? 1 : 0) } }
    public var finishedCount: Int { phases.values.reduce(0) { $0 + ($1 == .finished ? 1 : 0) } }
    /// Runs being trained by another process, in plan order.
    public var elsewhere: [PlannedRun] { runs.filter { phases[$0.id] == .elsewhere } }
    public var elsewhereCount: Int { phases.values.reduce(0) { $0 + ($1 == .elsewhere ? 1 : 0) } }
    public var failedCount: Int {
        phases.values.reduce(0) { n, p in
            if case .failed = p { return n + 1 }
            return n
        }
    }
    /// Nothing waiting, started or trained elsewhere.
    public var isComplete: Bool { waitingCount == 0 && startedCount == 0 && elsewhereCount == 0 }

    /// The next decisions, in plan order: up to `limit` runs to start (marked started) and, on the way,
    /// the students of failed teachers (marked failed). `teacherStartedSuffices`: a student may start while
    /// its teacher is still running (the executor holds it until the teacher has finished).
    public mutating func next(limit: Int, teacherStartedSuffices: Bool = false) -> [Step] {
        var steps: [Step] = []
        var started = 0
        for r in runs where phases[r.id] == .waiting {
            if started >= limit { break }
            if let t = r.teacherID {
                switch phases[t] {
                case .finished?: break
                case .started? where teacherStartedSuffices: break
                case .failed?:
                    phases[r.id] = .failed(reason: Self.teacherFailed)
                    steps.append(.skip(r, reason: Self.teacherFailed))
                    continue
                default: continue
                }
            }
            phases[r.id] = .started
            steps.append(.start(r))
            started += 1
        }
        return steps
    }

    /// A started run ended and its record says finished.
    public mutating func finished(_ id: String) {
        precondition(phases[id] == .started, "scheduler: \(id) finished but it was \(String(describing: phases[id]))")
        phases[id] = .finished
    }

    /// A started run could not start or ended without finishing. Its waiting students are skipped by the
    /// next call of `next`.
    public mutating func failed(_ id: String, reason: String) {
        precondition(phases[id] == .started, "scheduler: \(id) failed but it was \(String(describing: phases[id]))")
        phases[id] = .failed(reason: reason)
    }

    /// Waiting (or elsewhere) runs that the executor already holds (queued by an earlier sweep) become started: their
    /// ends come from the executor like those of the runs this sweep hands out.
    public mutating func adopt(_ ids: [String]) {
        for id in ids where phases[id] == .waiting || phases[id] == .elsewhere { phases[id] = .started }
    }

    /// A started run's process found the run locked by another process: it is trained elsewhere.
    public mutating func movedElsewhere(_ id: String) {
        precondition(phases[id] == .started, "scheduler: \(id) moved elsewhere but it was \(String(describing: phases[id]))")
        phases[id] = .elsewhere
    }

    /// A run trained elsewhere is no longer locked; `state` is what the store says now. Finished or failed
    /// there: so here (returns the new phase). Interrupted or pending (the other process stopped before
    /// the end): waiting again, to be trained by this sweep.
    @discardableResult
    public mutating func elsewhereEnded(_ id: String, state: RunState) -> Phase {
        precondition(phases[id] == .elsewhere, "scheduler: \(id) ended elsewhere but it was \(String(describing: phases[id]))")
        let phase: Phase
        switch state {
        case .finished: phase = .finished
        case .failed(let reason): phase = .failed(reason: reason)
        case .running: phase = .elsewhere
        case .pending, .queued, .interrupted: phase = .waiting
        }
        phases[id] = phase
        return phase
    }

    /// When nothing is started and `next` hands out nothing, the runs still waiting wait on a teacher that
    /// is not in the plan: marks them failed (`teacherMissing`) and returns them.
    public mutating func abandonWaiting() -> [PlannedRun] {
        let left = waiting
        for r in left { phases[r.id] = .failed(reason: Self.teacherMissing) }
        return left
    }
}
