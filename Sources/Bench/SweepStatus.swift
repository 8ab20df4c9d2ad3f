import Foundation
import Training

/// `sqakd sweep status`: the grid with the state of every run, read from the run directories plus, for
/// runs submitted to Slurm (`slurm.json`), squeue (`queue`): queued while their task waits, running once it
/// has started or while a process holds the run's lock.
public struct SweepStatus {
    public let plan: Plan
    public let queue: SlurmQueueSnapshot?
    /// A line saying why `queue` is missing although runs were submitted to Slurm (squeue failed).
    public let queueNote: String?

    public init(plan: Plan, queue: SlurmQueueSnapshot? = nil, queueNote: String? = nil) {
        self.plan = plan
        self.queue = queue
        self.queueNote = queueNote
    }

    /// The status of `plan`, asking `client` about the queue only when some run was submitted to Slurm.
    public static func reading(_ plan: Plan, client: SlurmClient = SlurmCommands()) -> SweepStatus {
        let jobs = plan.runs.compactMap { SlurmJob.read($0.runDirectory)?.jobID }
        guard !jobs.isEmpty else { return SweepStatus(plan: plan) }
        do { return SweepStatus(plan: plan, queue: try client.queue(jobIDs: Array(Set(jobs)).sorted())) } catch {
            return SweepStatus(plan: plan, queueNote: "runs were submitted to Slurm but squeue cannot answer (\(error)); queued runs show as not started")
        }
    }

    public func render() -> String {
        let seedCount = plan.seeds
        var out = "\(plan.suite.name) · budget \(plan.budget.name) (\(plan.budget.summary)) · \(seedCount) seed(s) · "
            + "\(plan.runsDirectory.relativePathForDisplay)\n"
        let cells = plan.cells
        let width = max(28, cells.map { $0.0.description.count }.max() ?? 0)
        out += "cell".padding(toLength: width, withPad: " ", startingAt: 0)
        for s in 0..<seedCount { out += "  " + "seed\(s)".padding(toLength: 8, withPad: " ", startingAt: 0) }
        out += "  best top-1 % (finished seeds)\n"
        var counts: [String: Int] = [:]
        var failures: [String] = []
        for (cell, runs) in cells {
            out += cell.description.padding(toLength: width, withPad: " ", startingAt: 0)
            var best: [Double] = []
            for s in 0..<seedCount {
                guard let r = runs.first(where: { $0.seed == UInt64(s) }) else {
                    out += "  " + String(repeating: " ", count: 8)
                    continue
                }
                let state = RunState.of(r, queue: queue)
                var text = state.symbol
                switch state {
                case .pending: counts["pending", default: 0] += 1
                case .running(let e): text += " \(e)/\(r.config.epochs)"; counts["running", default: 0] += 1
                case .queued: counts["queued", default: 0] += 1
                case .interrupted(let e): text += " \(e)/\(r.config.epochs)"; counts["interrupted", default: 0] += 1
                case .finished:
                    counts["finished", default: 0] += 1
                    if let b = (try? r.runDirectory.readRecord())?.bestTop1 { best.append(b) }
                case .failed(let reason):
                    counts["failed", default: 0] += 1
                    failures.append("\(r.label): \(reason)")
                }
                out += "  " + text.padding(toLength: 8, withPad: " ", startingAt: 0)
            }
            if !best.isEmpty {
                let s = Summary(best)
                out += "  " + s.formatted
            }
            out += "\n"
        }
        let order = ["finished", "running", "queued", "interrupted", "failed", "pending"]
        out += "\(plan.runs.count) runs: " + order.compactMap { k in counts[k].map { "\($0) \(k)" } }.joined(separator: ", ") + "\n"
        out += "legend: ✓ finished  ▶ running (epochs done/total)  ○ queued in Slurm  … interrupted (resumes on the next sweep run)  ✗ failed  · pending\n"
        if let n = queueNote { out += n + "\n" }
        for f in failures { out += "failed: \(f)\n" }
        return out
    }
}
