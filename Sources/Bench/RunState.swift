import Foundation
import Tensors
import Training

/// What the disk says about a planned run.
public enum RunState: Equatable, Sendable {
    case pending
    /// Being trained now (another process holds the run's lock).
    case running(epochsDone: Int)
    /// Started, stopped before its last epoch; the next sweep resumes it.
    case interrupted(epochsDone: Int)
    case finished
    case failed(reason: String)

    public var symbol: String {
        switch self {
        case .pending: return "·"
        case .running: return "▶"
        case .interrupted: return "…"
        case .finished: return "✓"
        case .failed: return "✗"
        }
    }

    public var isFinished: Bool { self == .finished }

    /// Reads the state of `run` (record, failure note, lock).
    public static func of(_ run: PlannedRun) -> RunState {
        let dir = run.runDirectory
        let record = try? dir.readRecord()
        if let r = record, r.status == "finished", r.config.runID == run.id, r.epochs.count >= run.config.epochs { return .finished }
        let done = record?.epochs.count ?? 0
        if RunLock.isHeld(dir) { return .running(epochsDone: done) }
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
