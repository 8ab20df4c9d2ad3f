import Foundation
import Tensors
import Training

/// What the disk says about a planned run.
public enum RunState: Equatable, Sendable {
    case pending
    /// Being trained now (a process holds the run's lock, or its Slurm task has started).
    case running(epochsDone: Int)
    /// Submitted to Slurm and waiting in its queue (`slurm.json` names a task squeue lists as pending).
    case queued(task: String)
    /// Started, stopped before its last epoch; the next sweep resumes it.
    case interrupted(epochsDone: Int)
    case finished
    case failed(reason: String)

    public var symbol: String {
        switch self {
        case .pending: return "·"
        case .running: return "▶"
        case .queued: return "○"
        case .interrupted: return "…"
        case .finished: return "✓"
        case .failed: return "✗"
        }
    }

    public var isFinished: Bool { self == .finished }

    /// Reads the state of `run` (record, failure note, lock and, when `queue` is given, its Slurm task).
    public static func of(_ run: PlannedRun, queue: SlurmQueueSnapshot? = nil) -> RunState {
        let dir = run.runDirectory
        let record = try? dir.readRecord()
        if let r = record, r.status == "finished", r.config.runID == run.id, r.epochs.count >= run.config.epochs { return .finished }
        let done = record?.epochs.count ?? 0
        if RunLock.isHeld(dir) { return .running(epochsDone: done) }
        if let q = queue, let job = SlurmJob.read(dir), let entry = q.entry(job) {
            // A started task that has not taken the lock yet is starting up: running.
            return entry.state == "PENDING" ? .queued(task: job.task) : .running(epochsDone: done)
        }
        if let f = SweepFailure.read(dir) { return .failed(reason: f.reason) }
        if let r = record, r.status == "failed" { return .failed(reason: r.failure ?? "failed") }
        if record != nil { return .interrupted(epochsDone: done) }
        return .pending
    }
}

/// Why the sweep's last attempt at a run failed (`failure.json` in the run directory), removed when the
/// run later finishes.
public struct SweepFailure: Codable, Sendable {
    public var runID: String
    public var reason: String
    public var exitStatus: Int32
    public var at: String

    static func url(_ dir: RunDirectory) -> URL { dir.url.appendingPathComponent("failure.json") }

    public static func read(_ dir: RunDirectory) -> SweepFailure? {
        guard let data = try? Data(contentsOf: url(dir)) else { return nil }
        return try? JSONDecoder().decode(SweepFailure.self, from: data)
    }

    func write(_ dir: RunDirectory) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try atomicWrite(e.encode(self), to: Self.url(dir))
    }

    static func clear(_ dir: RunDirectory) { try? FileManager.default.removeItem(at: url(dir)) }
}
