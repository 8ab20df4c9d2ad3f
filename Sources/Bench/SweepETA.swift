import Foundation
import Training

/// The sweep's time estimate.
///
/// A run's cost is its remaining image-epochs, (epochs − epochs done, plus `init_epochs` before the first) × training images (`train_limit` when
/// set, else the dataset's training set), times `distillationCost` for a distilled student (SQAKD or a Table 7 method). The sweep times
/// the runs it trains itself: after the first finishes,
///   ETA = remaining cost × (seconds ÷ cost of the runs finished so far) ÷ runs trained at once.
///
/// `distillationCost` is what an SQAKD student's image-epoch costs relative to its baseline's: every step
/// also runs the FP teacher's forward. It is measured from the records already in the results folder
/// (`measuredDistillationCost`) when they hold an SQAKD run and its baseline, else
/// `defaultDistillationCost`. Teachers and baselines count 1.
public struct SweepETA: Sendable {
    /// The SQAKD / baseline cost ratio used when no record measures it. The committed Fashion-MNIST
    /// ResNet-20 records (1 thread per run) measure 1.20 (EWGS 1.20–1.24, LSQ 1.30, PACT 1.15, DoReFa 1.10);
    /// 1.3 is the upper end, kept as the sweep's long-standing figure.
    public static let defaultDistillationCost = 1.3

    public let distillationCost: Double
    /// Training images of one epoch of the dataset (before `train_limit`).
    public let trainImages: Double
    /// Cost of the runs not ended yet.
    public private(set) var remaining = 0.0
    /// Cost and wall seconds of the runs this sweep finished.
    public private(set) var doneCost = 0.0
    public private(set) var doneSeconds = 0.0

    public init(trainImages: Int, distillationCost: Double = SweepETA.defaultDistillationCost) {
        self.trainImages = Double(trainImages)
        self.distillationCost = distillationCost
    }

    /// The cost of `run` from epoch `epochsDone` on.
    public func cost(of run: PlannedRun, epochsDone: Int) -> Double {
        let c = run.config
        let n = c.trainLimit > 0 ? min(Double(c.trainLimit), trainImages) : trainImages
        // An initialisation stage (fsp, ft) counts as epochs of its own until the main stage has begun.
        let epochs = max(0, c.epochs - epochsDone) + (epochsDone == 0 ? c.initStageEpochs : 0)
        return Double(epochs) * n * (run.config.isDistilled ? distillationCost : 1)
    }

    /// Adds runs still to train.
    public mutating func add(_ cost: Double) { remaining += cost }

    /// A run ended: its cost leaves the remainder; a finished run's seconds calibrate the rate.
    public mutating func ended(_ cost: Double, seconds: Double, finished: Bool) {
        remaining -= cost
        if finished {
            doneCost += cost
            doneSeconds += seconds
        }
    }

    /// Seconds left with `parallel` runs at once; nil until a run finished.
    public func secondsLeft(parallel: Int) -> Double? {
        guard doneCost > 0 else { return nil }
        return remaining * doneSeconds / doneCost / Double(max(1, parallel))
    }

    /// "ETA 1h 02m", or "ETA unknown until a run finishes".
    public func text(parallel: Int) -> String {
        guard let s = secondsLeft(parallel: parallel) else { return "ETA unknown until a run finishes" }
        return "ETA " + formatDuration(s)
    }

    /// The SQAKD / baseline cost ratio measured from finished records: for every cell with both (same
    /// dataset, model, quantizer, bits, train_limit, epochs and threads per run), the mean wall seconds
    /// per epoch of its SQAKD runs over those of its baseline runs; the geometric mean over cells. Runs of the
    /// other distillation methods (Table 7 rows sharing the folder) are left out. nil when no cell has both.
    public static func measuredDistillationCost(_ records: [RunRecord]) -> Double? {
        struct Key: Hashable {
            var dataset, model, quantizer: String
            var bits, trainLimit, epochs, threads: Int
        }
        var perEpoch: [Key: (sqakd: [Double], baseline: [Double])] = [:]
        for r in records where r.status == "finished" && r.config.isQuantized && !r.epochs.isEmpty && r.wallSeconds > 0 {
            let c = r.config
            let k = Key(dataset: c.dataset, model: c.model, quantizer: c.quantizer, bits: c.bits, trainLimit: c.trainLimit,
                        epochs: c.epochs, threads: r.system.threads)
            let s = r.wallSeconds / Double(r.epochs.count)
            switch c.distill {
            case .sqakd: perEpoch[k, default: ([], [])].sqakd.append(s)
            case .none: perEpoch[k, default: ([], [])].baseline.append(s)
            default: continue
            }
        }
        let ratios = perEpoch.values.compactMap { v -> Double? in
            guard !v.sqakd.isEmpty, !v.baseline.isEmpty else { return nil }
            return (v.sqakd.reduce(0, +) / Double(v.sqakd.count)) / (v.baseline.reduce(0, +) / Double(v.baseline.count))
        }
        guard !ratios.isEmpty else { return nil }
        return exp(ratios.map { log($0) }.reduce(0, +) / Double(ratios.count))
    }
}
