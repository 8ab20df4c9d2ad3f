import Foundation
import Tensors
import Training

/// How a started run ended, as its executor saw it. Whether the run *finished* is the run record's to say
/// (`Sweep` reads it); the executor reports the exit and, for a failure, why.
public struct RunEnd: Sendable {
    public var run: PlannedRun
    /// Wall seconds from start to end, as the executor measured them.
    public var seconds: Double
    /// The training process exited with status 0.
    public var exitedCleanly: Bool
    /// The exit status, or the signal number of a killed process (`failure.json`'s `exitStatus`).
    public var exitStatus: Int32
    /// The failure reason when the record does not say finished: the last error line of the run's console,
    /// or the signal that killed it ("exit status 1: …", "killed by signal 9").
    public var reason: String

    public init(run: PlannedRun, seconds: Double, exitedCleanly: Bool, exitStatus: Int32, reason: String) {
        self.run = run
        self.seconds = seconds
        self.exitedCleanly = exitedCleanly
        self.exitStatus = exitStatus
        self.reason = reason
    }
}

/// Trains a sweep's runs somewhere: child processes on this machine (`LocalExecutor`), or a cluster queue.
/// Every run is `sqakd train --config <run dir>/config.json --output <run dir>`; the run directory is
/// prepared (config written, checked) before `start` (`PlannedRun.prepareDirectory`). The executor holds
/// jobs, never truth: `Sweep` decides what starts (`SweepScheduler`) and reads whether a run finished from
/// its record, so a sweep can always be rerun.
///
/// A queue executor (`SlurmExecutor`) accepts every run at once (`slots` unbounded), including students
/// whose teacher is still queued (`ordersDependencies`: it submits them with
/// `--dependency=afterok:<teacher task>`), gets each batch as job arrays, reports ends from `squeue` plus the
/// records, and adopts the tasks an earlier sweep left in the queue.
public protocol Executor: AnyObject {
    /// How the runs are trained, for the sweep's header line (e.g. "2 job(s), 1 thread(s) per teacher,
    /// 1 per student").
    var summary: String { get }
    /// Runs trained at once at most; the sweep hands out no more than this and divides its ETA by it.
    var slots: Int { get }
    /// Whether it takes a student whose teacher has started but not finished, and holds it until the
    /// teacher has finished successfully. The local executor does not.
    var ordersDependencies: Bool { get }
    /// Starts `runs` (one batch, in plan order; a queue may submit it as one job array). Returns the runs
    /// that could not start, with the reason; the others are running.
    func start(_ runs: [PlannedRun]) -> [(run: PlannedRun, reason: String)]
    /// Waits until at least one started run has ended, or `timeout` seconds (nil: no limit); returns every
    /// run that has ended since the last call, in start order. Returns [] at once when nothing is running.
    func waitForEnds(timeout: Double?) -> [RunEnd]
    /// Of `runs` (not handed out by this sweep), those the executor already holds, such as tasks an
    /// earlier sweep left in the Slurm queue; it reports their ends like those of started runs.
    func adopt(_ runs: [PlannedRun]) -> [(run: PlannedRun, note: String)]
}

extension Executor {
    public func waitForEnds() -> [RunEnd] { waitForEnds(timeout: nil) }
    public func adopt(_ runs: [PlannedRun]) -> [(run: PlannedRun, note: String)] { [] }
}

extension PlannedRun {
    /// Creates the run directory and writes `config.json` (the resolved config, canonical JSON), or checks
    /// that the one there is this run's: the directory is named by the config's hash, so another config
    /// there is a damaged or hand-made folder.
    public func prepareDirectory() throws {
        let dir = runDirectory
        try dir.create()
        if FileManager.default.fileExists(atPath: dir.config.path) {
            guard let stored = try? dir.readConfig(), stored.runID == config.runID else {
                throw SuiteError("\(dir.url.relativePathForDisplay) holds a run with a different config; delete the folder to train this run")
            }
            // The same run with its teacher elsewhere now (a moved results root, another working directory).
            if stored != config { try atomicWrite(config.storedJSON(), to: dir.config) }
        } else {
            try atomicWrite(config.storedJSON(), to: dir.config)
        }
    }

    /// `<run dir>/console.txt`: the training process's standard output and error.
    public var consoleURL: URL { directory.appendingPathComponent("console.txt") }
}
