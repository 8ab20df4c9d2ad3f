import Datasets
import Distillation
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
        let kind = try DatasetKind(id: config.dataset)
        // Data that must be prepared first stops the run before its directory exists (one line: what to
        // download, which command to run).
        if datasets == nil { try kind.checkPrepared(root: dataRoot) }
        // The lock before anything else: a run trained by another process is left to it (`RunLockBusy`).
        try run.create()
        let lock = try RunLock(run)
        defer { lock.release() }
        var (train, test) = try datasets ?? (kind.load(root: dataRoot, split: .train), kind.load(root: dataRoot, split: .test))
        if config.trainLimit > 0 { train = train.limited(.first(config.trainLimit)) }
        if config.testLimit > 0 { test = test.limited(.first(config.testLimit)) }
        guard train.count > 0 else { throw ConfigError("the training set \(train.name) is empty; nothing to train on") }
        guard test.count > 0 else { throw ConfigError("the test set \(test.name) is empty; every epoch ends with an evaluation on it") }

        let loader = try BatchLoader(dataset: train, batchSize: config.batchSize, shuffle: true,
                                     augmentation: kind.trainTransform(imageSize: config.imageSize, augment: config.augment),
                                     seed: config.seed)
        let evalTransform = kind.evaluationTransform(imageSize: config.imageSize)
        let setup = try TrainingSetup(config: config, classes: train.classCount, inputChannels: train.channels,
                                      inputHeight: loader.outputSize.height, inputWidth: loader.outputSize.width,
                                      iterationsPerEpoch: loader.batchCount, trainingLabels: train.labels)
        let model = setup.student
        let step = try TrainingStep(setup: setup, objective: setup.objective)
        let initStage = try InitStage(setup: setup, inputHeight: loader.outputSize.height, inputWidth: loader.outputSize.width)

        var record = try resumeOrStart(setup, initStage: initStage)
        let firstEpoch = record.epochs.count
        let initDone = record.initStage?.count ?? 0
        if firstEpoch >= config.epochs, record.status == "finished" {
            progress.finish("run \(run.url.path) already finished (\(config.epochs) epochs); nothing to do")
            return record
        }
        if firstEpoch > 0 {
            run.appendLog("resumed at epoch \(firstEpoch + 1) of \(config.epochs)")
            progress.finish("resuming \(run.url.lastPathComponent) at epoch \(firstEpoch + 1)/\(config.epochs)")
        } else if let initStage, initDone > 0 {
            let at = initDone < initStage.epochs ? "at init epoch \(initDone + 1) of \(initStage.epochs)" : "after the finished init stage, at epoch 1 of \(config.epochs)"
            run.appendLog("resumed \(at)")
            progress.finish("resuming \(run.url.lastPathComponent) \(at)")
        } else if config.isQuantized {
            // Reference §2.2.3: quantizer parameters are initialised from the first shuffled, augmented
            // training batch in one train-mode forward (BN running statistics move once, as there).
            setup.calibrate(loader.batch(0, epoch: 0, order: loader.order(epoch: 0)).images)
        }
        let system = SystemInfo.current()
        if firstEpoch > 0 || initDone > 0, let before = record.system.instructionSets, let now = system.instructionSets,
           before != now {
            // Each ISA sums in its own order: from here on the run's numbers are not those of an uninterrupted run.
            run.appendLog("resumed on other instruction sets (\(before) before, \(now) now): the numbers from here on "
                          + "differ from an uninterrupted run's; cap them with DNNL_MAX_CPU_ISA / OPENBLAS_CORETYPE to match")
            progress.finish("warning: \(run.url.lastPathComponent) was trained on \(before) and resumes on \(now)")
        }
        record.status = "running"
        record.system = system
        try run.writeRecord(record)

        var epochsThisSession = 0
        if let initStage, firstEpoch == 0, initDone < initStage.epochs {
            let initLoader = try BatchLoader(dataset: train, batchSize: config.batchSize, shuffle: true,
                                             augmentation: config.augment ? kind.info.trainAugmentation : .none,
                                             seed: config.seed ^ InitStage.loaderSeedLabel)
            if try trainInitStage(initStage, from: initDone, loader: initLoader, setup: setup,
                                  record: &record, sessionEpochs: &epochsThisSession) {
                return record
            }
        }
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
                let r = step(batch.images, labels: batch.labels, samples: BatchSamples(indices: batch.indices, epoch: epoch))
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
            let eval = try evaluate(model, on: test, batchSize: config.evalBatchSize, transform: evalTransform)
            let trainEval = config.evalTrainSet ? try evaluate(model, on: train, batchSize: config.evalBatchSize, transform: evalTransform) : nil
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

    /// Epochs `done` ..< `stage.epochs` of the initialisation stage (`InitStage`), each committed as a unit:
    /// `init-N.safetensors` (the model; fsp changes it), `init-N.state.safetensors` (the main optimizers,
    /// untouched, the stage's SGD and the objective's modules: ft's Paraphraser), then the record with
    /// `init_stage` appended. Returns true when `stopAfterEpochs` stopped the session.
    func trainInitStage(_ stage: InitStage, from done: Int, loader: BatchLoader, setup: TrainingSetup,
                        record: inout RunRecord, sessionEpochs: inout Int) throws -> Bool {
        if record.initStage == nil { record.initStage = [] }
        let name = config.distill.rawValue
        for e in done..<stage.epochs {
            let started = Date()
            var lossSum = 0.0, seen = 0
            for batch in loader.batches(epoch: e) {
                guard let l = stage.step(batch.images) else {
                    throw diverged(&record, "the \(name) init stage's loss became non-finite in its epoch \(e + 1), batch \(batch.index + 1)")
                }
                lossSum += l * Double(batch.count)
                seen += batch.count
            }
            let seconds = Date().timeIntervalSince(started)
            let m = InitEpochMetrics(epoch: e + 1, lr: stage.lr, loss: lossSum / Double(seen), seconds: seconds,
                                     imagesPerSecond: Double(seen) / max(seconds, 1e-9))
            let meta = setup.checkpointMetadata.merging(["init_epoch": "\(e + 1)"]) { a, _ in a }
            let modelFile = Checkpoint.modelFile(setup.student, metadata: meta)
            if let bad = modelFile.firstNonFinite() {
                throw diverged(&record, "weight '\(bad.name)' became \(bad.value) in the \(name) init stage's epoch \(e + 1)")
            }
            let aux = setup.exportAuxiliary()
            try TrainState(nextEpoch: e + 1,
                           optimizers: setup.exportOptimizers().merging([InitStage.optimizerName: stage.optimizer.exportState()]) { a, _ in a },
                           auxiliary: Dictionary(uniqueKeysWithValues: aux.map { ($0.name, $0.tensor) }),
                           auxiliaryIntegerKeys: Set(aux.filter(\.isInteger).map(\.name))).save(to: run.initState(epoch: e + 1))
            try atomicWrite(try modelFile.encoded(), to: run.initCheckpoint(epoch: e + 1))
            record.initStage!.append(m)
            record.wallSeconds += seconds
            record.updatedAt = isoNow()
            try run.writeRecord(record)
            run.clean(keeping: 0, keepingInit: e + 1)
            let line = String(format: "init %@ epoch %d/%d  lr %.5g  loss %.6g  %.0f img/s  %@", name as NSString, e + 1, stage.epochs,
                              stage.lr, m.loss, m.imagesPerSecond, formatDuration(seconds) as NSString)
            run.appendLog(line)
            progress.finish(line)
            sessionEpochs += 1
            if let stop = stopAfterEpochs, sessionEpochs >= stop { return true }
        }
        return false
    }

    /// Why the initialisation stage's files of its epoch `epoch` cannot resume it, or nil.
    static func unresumableInit(_ model: URL, _ state: URL, epoch: Int) throws -> String? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: model.path), fm.fileExists(atPath: state.path) else {
            return "no checkpoint of its init epoch \(epoch) (\(model.lastPathComponent), \(state.lastPathComponent))"
        }
        let s = try TrainState.load(from: state)
        let file = try SafetensorsFile.read(model)
        guard s.nextEpoch == epoch, file.metadata["init_epoch"] == "\(epoch)", s.optimizers[InitStage.optimizerName] != nil else {
            return "\(model.lastPathComponent) and \(state.lastPathComponent) do not both hold the record's init epoch \(epoch)"
        }
        if let bad = file.firstNonFinite() { return "\(model.lastPathComponent) holds \(bad.value) in '\(bad.name)'" }
        return nil
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
    func resumeOrStart(_ setup: TrainingSetup, initStage: InitStage? = nil) throws -> RunRecord {
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
            let initDone = initStage == nil ? 0 : record.initStage?.count ?? 0
            run.clean(keeping: epochs, keepingInit: initDone)
            if epochs == 0, initDone > 0, let initStage {
                let (modelURL, stateURL) = (run.initCheckpoint(epoch: initDone), run.initState(epoch: initDone))
                if let problem = try Self.unresumableInit(modelURL, stateURL, epoch: initDone) {
                    run.appendLog("starting over: \(problem)")
                    progress.finish("\(run.url.path): \(problem); starting the run over")
                } else {
                    var state = try TrainState.load(from: stateURL)
                    let own = state.optimizers.removeValue(forKey: InitStage.optimizerName)!
                    try setup.restore(model: try SafetensorsFile.read(modelURL).tensors, optimizers: state.optimizers,
                                      auxiliary: state.auxiliary)
                    try initStage.optimizer.importState(own)
                    return record
                }
            }
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
                         parameterCount: setup.student.parameterCount, epochs: [], initStage: initStage == nil ? nil : [],
                         bestTop1: nil, bestEpoch: nil, lastTop1: nil, wallSeconds: 0, startedAt: now, updatedAt: now)
    }
}
