import Datasets
import Foundation
import Kernels
import Models
import NN
import Tensors

/// Trains one full-precision model from a `TrainConfig` into a run directory, resuming from `last` when
/// the directory already holds an unfinished run of the same config.
///
/// Per epoch e (0-based), as the reference's train_fp.py: lr = schedule(e) for every group; one pass over
/// the shuffled, augmented training set (cross-entropy, backward, optimizer step); evaluation on the test
/// set; `last` checkpoint (+ `best` when test top-1 improved); record, metrics and log rewritten. The
/// reference also evaluates the whole training set each epoch for its logs; we report the running
/// training loss and accuracy of the epoch instead (same information, no extra pass).
public final class Trainer {
    public let config: TrainConfig
    public let run: RunDirectory
    public let dataRoot: String?
    public let progress = ProgressLine()
    /// Stop after this many epochs in this session (tests use it to simulate an interruption).
    public var stopAfterEpochs: Int?

    public init(config: TrainConfig, runDirectory: URL, dataRoot: String? = nil) {
        self.config = config
        self.run = RunDirectory(runDirectory)
        self.dataRoot = dataRoot
    }

    /// Datasets handed in directly (tests) instead of being loaded from `config.dataset`.
    public var datasets: (train: Dataset, test: Dataset)?

    @discardableResult
    public func train() throws -> RunRecord {
        try config.validate()
        // The lock before anything else: a run trained by another process is left to it (`RunLockBusy`).
        try run.create()
        let lock = try RunLock(run)
        defer { lock.release() }
        let kind = try DatasetKind(id: config.dataset)
        var (train, test) = try datasets ?? (kind.load(root: dataRoot, split: .train), kind.load(root: dataRoot, split: .test))
        if config.trainLimit > 0 { train = train.limited(.first(config.trainLimit)) }
        if config.testLimit > 0 { test = test.limited(.first(config.testLimit)) }

        let loader = try BatchLoader(dataset: train, batchSize: config.batchSize, shuffle: true,
                                     augmentation: config.augment ? kind.info.trainAugmentation : .none, seed: config.seed)
        let setup = try TrainingSetup(config: config, classes: train.classCount, inputChannels: train.channels,
                                      iterationsPerEpoch: loader.batchCount)
        let model = setup.student
        let step = try TrainingStep(setup: setup, objective: config.objective)

        var record = try resumeOrStart(setup)
        let firstEpoch = record.epochs.count
        if firstEpoch >= config.epochs, record.status == "finished" {
            progress.finish("run \(run.url.path) already finished (\(config.epochs) epochs); nothing to do")
            return record
        }
        if firstEpoch > 0 {
            run.appendLog("resumed at epoch \(firstEpoch + 1) of \(config.epochs)")
            progress.finish("resuming \(run.url.lastPathComponent) at epoch \(firstEpoch + 1)/\(config.epochs)")
        } else if config.isQuantized {
            // Reference §2.2.3: quantizer parameters are initialised from the first shuffled, augmented
            // training batch in one train-mode forward (BN running statistics move once, as there).
            setup.calibrate(loader.batch(0, epoch: 0, order: loader.order(epoch: 0)).images)
        }
        record.status = "running"
        record.system = SystemInfo.current()
        try run.writeRecord(record)

        var epochsThisSession = 0
        for epoch in firstEpoch..<config.epochs {
            let started = Date()
            let lrs = setup.setLearningRates(epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0
            let batches = loader.batchCount
            for batch in loader.batches(epoch: epoch) {
                if setup.perIterationSchedule { setup.setLearningRates(epoch: epoch, iteration: batch.index) }
                let r = step(batch.images, labels: batch.labels)
                let l = r.loss
                correct += r.correct
                guard r.stepped else {
                    record.status = "failed"
                    record.failure = "loss became \(l) in epoch \(epoch + 1), batch \(batch.index + 1)"
                    try run.writeRecord(record)
                    run.appendLog("FAILED: \(record.failure!)")
                    throw ConfigError("training diverged: \(record.failure!)")
                }
                lossSum += l * Double(batch.count)
                seen += batch.count
                let elapsed = Date().timeIntervalSince(started)
                let ips = Double(seen) / max(elapsed, 1e-9)
                let remaining = Double(train.count - seen + (config.epochs - epoch - 1) * train.count) / max(ips, 1e-9)
                progress.update(epoch: epoch + 1, epochs: config.epochs, batch: batch.index + 1, batches: batches,
                                loss: lossSum / Double(seen), top1: 100 * Double(correct) / Double(seen),
                                imagesPerSecond: ips, etaSeconds: remaining)
            }
            let trainSeconds = Date().timeIntervalSince(started)
            let eval = try evaluate(model, on: test, batchSize: config.evalBatchSize)
            let seconds = Date().timeIntervalSince(started)
            let m = EpochMetrics(epoch: epoch + 1, lr: lrs[0], trainLoss: lossSum / Double(seen),
                                 trainTop1: 100 * Double(correct) / Double(seen), testLoss: eval.loss,
                                 testTop1: eval.top1, testTop5: eval.top5, seconds: seconds,
                                 imagesPerSecond: Double(seen) / trainSeconds)
            record.epochs.append(m)
            record.lastTop1 = eval.top1
            let meta = setup.checkpointMetadata.merging(["epoch": "\(epoch + 1)", "test_top1": "\(eval.top1)"]) { a, _ in a }
            let improved = record.bestTop1.map { eval.top1 > $0 } ?? true
            if improved {
                record.bestTop1 = eval.top1
                record.bestEpoch = epoch + 1
                try Checkpoint.saveModel(model, to: run.bestCheckpoint, metadata: meta)
            }
            // State first, then the model: `last.safetensors` names the epoch the state belongs to.
            try TrainState(nextEpoch: epoch + 1, optimizers: setup.exportOptimizers()).save(to: run.lastState)
            try Checkpoint.saveModel(model, to: run.lastCheckpoint, metadata: meta)
            record.wallSeconds += seconds
            record.updatedAt = isoNow()
            if epoch + 1 == config.epochs { record.status = "finished" }
            try run.writeRecord(record)
            let line = String(format: "epoch %d/%d  lr %.5g  train loss %.4f  train %@ %.2f%%  test loss %.4f  top-1 %.2f%%  top-5 %.2f%%  %.0f img/s  %@",
                              epoch + 1, config.epochs, lrs[0], m.trainLoss, (step.objective.usesLabels ? "acc" : "agreement") as NSString,
                              m.trainTop1, m.testLoss, m.testTop1, m.testTop5, m.imagesPerSecond, formatDuration(seconds) as NSString)
            run.appendLog(line)
            progress.finish(line)
            epochsThisSession += 1
            if let stop = stopAfterEpochs, epochsThisSession >= stop, epoch + 1 < config.epochs { break }
        }
        return record
    }

    /// A fresh record, or the record of an interrupted run of the same config with model, quantizers and
    /// optimizers restored from `last`.
    func resumeOrStart(_ setup: TrainingSetup) throws -> RunRecord {
        let fm = FileManager.default
        if fm.fileExists(atPath: run.config.path) {
            let stored = try run.readConfig()
            guard stored == config else {
                throw ConfigError("\(run.url.path) holds a run with a different config; choose another --output or delete it")
            }
        } else {
            try atomicWrite(config.storedJSON(), to: run.config)
        }
        if fm.fileExists(atPath: run.record.path), fm.fileExists(atPath: run.lastCheckpoint.path) {
            var record = try run.readRecord()
            if record.status == "finished", record.epochs.count >= config.epochs { return record }
            let state = try TrainState.load(from: run.lastState)
            let file = try SafetensorsFile.read(run.lastCheckpoint)
            guard file.metadata["epoch"] == "\(state.nextEpoch)" else {
                throw ConfigError("\(run.url.path): last.safetensors and last.state.safetensors belong to different epochs; delete them to restart the run")
            }
            try setup.restore(model: file.tensors, optimizers: state.optimizers)
            record.epochs = Array(record.epochs.prefix(state.nextEpoch))
            return record
        }
        let now = isoNow()
        return RunRecord(runID: config.runID, status: "running", failure: nil, config: config, system: SystemInfo.current(),
                         parameterCount: setup.student.parameterCount, epochs: [], bestTop1: nil, bestEpoch: nil, lastTop1: nil,
                         wallSeconds: 0, startedAt: now, updatedAt: now)
    }
}
