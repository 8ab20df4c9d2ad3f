import Datasets
import Foundation
import Kernels
import Models
import NN
import Tensors

/// Trains one model from a `TrainConfig` into a run directory, resuming from the last committed epoch
/// when the directory already holds an unfinished run of the same config (same run id).
///
/// Per epoch e (0-based), as the reference's train_fp.py: lr = schedule(e) for every group; one pass over
/// the shuffled, augmented training set (cross-entropy, backward, optimizer step); evaluation on the test
/// set; the epoch committed as one unit (checkpoint, optimizer state, record; then `best` when test top-1
/// improved; `RunDirectory`), metrics and log rewritten. The reference also evaluates the whole training
/// set each epoch for its logs; we report the running training loss and accuracy of the epoch instead
/// (same information, no extra pass).
///
/// Divergence stops the run: a non-finite batch loss or teacher output (before the step, so the weights
/// stay finite), or at an epoch's end a non-finite or huge (> `divergenceLoss`) mean training or test
/// loss, or a non-finite weight. The record becomes "failed" with the reason and keeps its committed
/// epochs; that epoch's checkpoint (the last finite one) stays; the error is one line.
public final class Trainer {
    public let config: TrainConfig
    public let run: RunDirectory
    public let dataRoot: String?
    public let progress = ProgressLine()
    /// Stop after this many epochs in this session (tests use it to simulate an interruption).
    public var stopAfterEpochs: Int?
    /// Hutchinson samples per tensor and batch of the EWGS δ update (the authors' 50; tests lower it).
    var ewgsDeltaMaxIterations = 50

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
        guard train.count > 0 else { throw ConfigError("the training set \(train.name) is empty; nothing to train on") }
        guard test.count > 0 else { throw ConfigError("the test set \(test.name) is empty; every epoch ends with an evaluation on it") }

        let loader = try BatchLoader(dataset: train, batchSize: config.batchSize, shuffle: true,
                                     augmentation: config.augment ? kind.info.trainAugmentation : .none, seed: config.seed)
        let setup = try TrainingSetup(config: config, classes: train.classCount, inputChannels: train.channels,
                                      inputHeight: train.height, inputWidth: train.width, iterationsPerEpoch: loader.batchCount)
        let model = setup.student
        let step = try TrainingStep(setup: setup, objective: setup.objective)

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
            if config.ewgsDeltaUpdateEvery > 0, epoch > 0, epoch % config.ewgsDeltaUpdateEvery == 0 {
                updateEWGSDelta(model: model, loader: loader, epoch: epoch)
            }
            let started = Date()
            let lrs = setup.setLearningRates(epoch: epoch)
            Self.reseedDropout(model, seed: config.seed, epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0
            let batches = loader.batchCount
            for batch in loader.batches(epoch: epoch) {
                if setup.perIterationSchedule { setup.setLearningRates(epoch: epoch, iteration: batch.index) }
                let r = step(batch.images, labels: batch.labels)
                let l = r.loss
                correct += r.correct
                guard r.stepped else {
                    throw diverged(&record, "\(r.cause ?? "loss became \(l)") in epoch \(epoch + 1), batch \(batch.index + 1)")
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
            let trainEval = config.evalTrainSet ? try evaluate(model, on: train, batchSize: config.evalBatchSize) : nil
            let seconds = Date().timeIntervalSince(started)
            var m = EpochMetrics(epoch: epoch + 1, lr: lrs[0], trainLoss: lossSum / Double(seen),
                                 trainTop1: 100 * Double(correct) / Double(seen), testLoss: eval.loss,
                                 testTop1: eval.top1, testTop5: eval.top5, seconds: seconds,
                                 imagesPerSecond: Double(seen) / trainSeconds)
            m.trainEvalLoss = trainEval?.loss
            m.trainEvalTop1 = trainEval?.top1
            let meta = setup.checkpointMetadata.merging(["epoch": "\(epoch + 1)", "test_top1": "\(eval.top1)"]) { a, _ in a }
            let modelFile = Checkpoint.modelFile(model, metadata: meta)
            if let cause = Self.divergence(trainLoss: m.trainLoss, testLoss: m.testLoss, model: modelFile) {
                throw diverged(&record, "\(cause) at the end of epoch \(epoch + 1)")
            }
            record.epochs.append(m)
            record.lastTop1 = eval.top1
            let improved = record.bestTop1.map { eval.top1 > $0 } ?? true
            if improved {
                record.bestTop1 = eval.top1
                record.bestEpoch = epoch + 1
            }
            // One unit (RunDirectory): the epoch's files under its own names, then the record (the commit),
            // then `best` and the removal of the previous epoch's files.
            let modelBytes = try modelFile.encoded()
            let aux = setup.exportAuxiliary()
            try TrainState(nextEpoch: epoch + 1, optimizers: setup.exportOptimizers(),
                           auxiliary: Dictionary(uniqueKeysWithValues: aux.map { ($0.name, $0.tensor) }),
                           auxiliaryIntegerKeys: Set(aux.filter(\.isInteger).map(\.name))).save(to: run.state(epoch: epoch + 1))
            try atomicWrite(modelBytes, to: run.checkpoint(epoch: epoch + 1))
            record.wallSeconds += seconds
            record.updatedAt = isoNow()
            if epoch + 1 == config.epochs { record.status = "finished" }
            try run.writeRecord(record)
            if improved { try atomicWrite(modelBytes, to: run.bestCheckpoint) }
            run.clean(keeping: epoch + 1)
            let line = String(format: "epoch %d/%d  lr %.5g  train loss %.4f  train %@ %.2f%%  test loss %.4f  top-1 %.2f%%  top-5 %.2f%%  %.0f img/s  %@",
                              epoch + 1, config.epochs, lrs[0], m.trainLoss, (step.objective.usesLabels ? "acc" : "agreement") as NSString,
                              m.trainTop1, m.testLoss, m.testTop1, m.testTop5, m.imagesPerSecond, formatDuration(seconds) as NSString)
            let full = trainEval.map { String(format: "  train-set eval loss %.4f top-1 %.2f%%", $0.loss, $0.top1) } ?? ""
            run.appendLog(line + full)
            progress.finish(line + full)
            epochsThisSession += 1
            if let stop = stopAfterEpochs, epochsThisSession >= stop, epoch + 1 < config.epochs { break }
        }
        return record
    }

    /// Seeds every `Dropout` of `model` from (seed, epoch, its position in tree order), so the masks of an
    /// epoch do not depend on the epochs before it and a run resumed at an epoch boundary draws the masks of
    /// the uninterrupted run (checkpoints hold no generator state). Models without dropout are untouched.
    static func reseedDropout(_ model: Layer, seed: UInt64, epoch: Int) {
        var k: UInt64 = 0
        model.walk { _, layer in
            if let d = layer as? Dropout {
                d.rng = RNG(seed: seed).derived(0x4452_4F50).derived(UInt64(epoch) << 20 | k)
                k += 1
            }
            return true
        }
    }

    /// The EWGS paper's δ update before epoch `epoch` (0-based; `EWGSDeltaEstimator`), on the first
    /// min(3, batches) batches of that epoch's order, Rademacher vectors from (seed, epoch); logs every
    /// layer's δ_W, δ_A, Tr(H)/numel and Hutchinson sample count, and the seconds it took.
    func updateEWGSDelta(model: any Model, loader: BatchLoader, epoch: Int) {
        let estimator = EWGSDeltaEstimator(model: model, mode: config.ewgsDeltaProbe)
        guard estimator.isApplicable else { return }
        estimator.hutchinson.maxIterations = ewgsDeltaMaxIterations
        let started = Date()
        let order = loader.order(epoch: epoch)
        let batches = (0..<min(3, loader.batchCount)).map { i -> (images: Tensor, labels: [Int32]) in
            let b = loader.batch(i, epoch: epoch, order: order)
            return (b.images, b.labels)
        }
        let rng = RNG(seed: config.seed).derived(0x4557_4753).derived(UInt64(epoch))
        let layers = estimator.update(batches: batches, rng: rng)
        let seconds = Date().timeIntervalSince(started)
        let head = String(format: "ewgs delta update before epoch %d (%d batches, %@, %.1f s):",
                          epoch + 1, batches.count, config.ewgsDeltaProbe.rawValue as NSString, seconds)
        run.appendLog(head)
        progress.finish(head)
        func f(_ v: Float?) -> String { v.map { String(format: "%.6g", $0) } ?? "-" }
        func d(_ v: Double?) -> String { v.map { String(format: "%.4g", $0) } ?? "-" }
        for l in layers {
            run.appendLog("  \(l.path)  delta_w \(f(l.deltaWeight))  delta_a \(f(l.deltaActivation))  trace/numel_w \(d(l.traceWeight))  trace/numel_a \(d(l.traceActivation))  samples_w \(l.iterationsWeight)  samples_a \(l.iterationsActivation)")
        }
    }

    /// The largest mean loss (training or test) of an epoch that is not divergence. A healthy run starts
    /// near chance (ln C: 2.3 for 10 classes, 5.3 for 200) and goes down; a loss of 1e6 means logits a
    /// million apart, i.e. weights that have blown up (Adam at lr 1e4 reaches a test loss of 3e14 with
    /// every number still finite). Set far above anything a converging run or an over-confident
    /// overfitted one reaches (tens), so it can only stop runs that have already diverged.
    public static let divergenceLoss = 1e6

    /// Why an epoch counts as diverged, or nil: a non-finite or huge (> `divergenceLoss`) mean training
    /// or test loss, or a non-finite weight or buffer in the model.
    static func divergence(trainLoss: Double, testLoss: Double, model: SafetensorsFile) -> String? {
        for (name, v) in [("training loss", trainLoss), ("test loss", testLoss)] where !(v.isFinite && v <= divergenceLoss) {
            return v.isFinite ? "\(name) \(v) above the divergence limit \(divergenceLoss)" : "\(name) became \(v)"
        }
        if let bad = model.firstNonFinite() { return "weight '\(bad.name)' became \(bad.value)" }
        return nil
    }

    /// Records the run as failed with `reason` (the record keeps its committed epochs, and the files of the
    /// last of them stay: the last finite checkpoint) and returns the one-line error to throw.
    private func diverged(_ record: inout RunRecord, _ reason: String) -> Error {
        record.status = "failed"
        record.failure = "diverged: \(reason)"
        record.updatedAt = isoNow()
        do { try run.writeRecord(record) } catch { return error }
        run.appendLog("FAILED: \(record.failure!)")
        let kept = record.epochs.isEmpty ? "no epoch had finished, so there is no checkpoint"
            : "the last finite checkpoint (epoch \(record.epochs.count)) is kept in \(run.url.path)"
        return ConfigError("training diverged: \(reason); \(kept)")
    }

    /// Why the checkpoint pair cannot resume the record's `epochs`, or nil: a file missing (committed
    /// results keep records, not checkpoints), files of another epoch (a kill between the separate renames
    /// of the layout before epoch units), or non-finite weights.
    static func unresumable(_ model: URL, _ state: URL, epochs: Int) throws -> String? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: model.path), fm.fileExists(atPath: state.path) else {
            return "no checkpoint of its epoch \(epochs) (\(model.lastPathComponent), \(state.lastPathComponent))"
        }
        let stateEpoch = try TrainState.load(from: state).nextEpoch
        let file = try SafetensorsFile.read(model)
        guard stateEpoch == epochs, file.metadata["epoch"] == "\(epochs)" else {
            return "\(model.lastPathComponent) (epoch \(file.metadata["epoch"] ?? "?")) and \(state.lastPathComponent) (epoch \(stateEpoch)) do not both hold the record's epoch \(epochs)"
        }
        if let bad = file.firstNonFinite() { return "\(model.lastPathComponent) holds \(bad.value) in '\(bad.name)'" }
        return nil
    }

    /// A fresh record, or the record of an interrupted run of the same config with model, quantizers and
    /// optimizers restored from its last committed epoch (see `RunDirectory` for the layout), or from the
    /// `last.safetensors` pair of runs written before epoch units.
    func resumeOrStart(_ setup: TrainingSetup) throws -> RunRecord {
        let fm = FileManager.default
        if fm.fileExists(atPath: run.config.path) {
            let stored = try run.readConfig()
            guard stored.runID == config.runID else {
                throw ConfigError("\(run.url.path) holds a run with a different config (run id \(stored.runID), this one \(config.runID)); choose another --output or delete it")
            }
            // Same run, its teacher now elsewhere (a moved results root): the config names where it is now.
            if stored != config { try atomicWrite(config.storedJSON(), to: run.config) }
        } else {
            try atomicWrite(config.storedJSON(), to: run.config)
        }
        if fm.fileExists(atPath: run.record.path) {
            var record = try run.readRecord()
            record.config = config
            let epochs = record.epochs.count
            run.clean(keeping: epochs)
            if epochs > 0 {
                let (modelURL, stateURL) = fm.fileExists(atPath: run.checkpoint(epoch: epochs).path)
                    ? (run.checkpoint(epoch: epochs), run.state(epoch: epochs)) : run.legacyCheckpoint
                if let problem = try Self.unresumable(modelURL, stateURL, epochs: epochs) {
                    // Committed results keep records, not checkpoints: a finished run is trained again
                    // (same numbers) when its checkpoints are needed.
                    run.appendLog("starting over: \(problem)")
                    progress.finish("\(run.url.path): \(problem); starting the run over")
                } else {
                    try run.publishBest(record, epoch: epochs)
                    if record.status == "finished", epochs >= config.epochs { return record }
                    let state = try TrainState.load(from: stateURL)
                    let file = try SafetensorsFile.read(modelURL)
                    try setup.restore(model: file.tensors, optimizers: state.optimizers, auxiliary: state.auxiliary)
                    return record
                }
            }
        }
        let now = isoNow()
        return RunRecord(runID: config.runID, status: "running", failure: nil, config: config, system: SystemInfo.current(),
                         parameterCount: setup.student.parameterCount, epochs: [], bestTop1: nil, bestEpoch: nil, lastTop1: nil,
                         wallSeconds: 0, startedAt: now, updatedAt: now)
    }
}
