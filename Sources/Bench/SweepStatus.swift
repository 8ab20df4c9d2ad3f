import Foundation
import Training

/// `sqakd sweep status`: the grid with the state of every run, read from the run directories.
public struct SweepStatus {
    public let plan: Plan

    public init(plan: Plan) { self.plan = plan }

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
                let state = RunState.of(r)
                var text = state.symbol
                switch state {
                case .pending: counts["pending", default: 0] += 1
                case .running(let e): text += " \(e)/\(r.config.epochs)"; counts["running", default: 0] += 1
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
        let order = ["finished", "running", "interrupted", "failed", "pending"]
        out += "\(plan.runs.count) runs: " + order.compactMap { k in counts[k].map { "\($0) \(k)" } }.joined(separator: ", ") + "\n"
        out += "legend: ✓ finished  ▶ running (epochs done/total)  … interrupted (resumes on the next sweep run)  ✗ failed  · pending\n"
        for f in failures { out += "failed: \(f)\n" }
        return out
    }
}
