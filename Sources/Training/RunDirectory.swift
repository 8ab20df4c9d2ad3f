import Foundation
import Tensors

/// A run's directory:
///   config.json                  resolved TrainConfig, every key (`TrainConfig.storedJSON()`)
///   record.json                  versioned RunRecord; renamed into place last at every epoch's end (the commit)
///   metrics.csv                  one row per epoch, rewritten from the record after each commit
///   log.txt                      human log, appended
///   epoch-NNNN.safetensors       model state dict (PyTorch names) after epoch N, N = the record's epoch count
///   epoch-NNNN.state.safetensors optimizer state + next epoch (N), for resume
///   best.safetensors             model state dict at the record's `best_epoch` (best test top-1 so far)
///   init-NNNN.safetensors        model after epoch N of the initialisation stage (fsp, ft; `InitStage`)
///   init-NNNN.state.safetensors  its optimizer and objective-module state (ft: the Paraphraser)
///
/// An initialisation-stage epoch commits like a main one (its files, then the record with `init_stage`
/// appended); its files are removed once the next one, or the main stage's first epoch, has committed.
/// An epoch commits as one unit. Its two checkpoint files are written under the epoch's own names (each
/// atomically: temporary file, fsync, rename), then `record.json` (with the epoch appended) is renamed
/// into place: that rename is the commit. After it, `best.safetensors` is rewritten when the epoch
/// improved (the same bytes as the epoch's model file) and the previous epoch's files are removed. A kill
/// at any moment leaves the record naming an epoch whose files are all present; resume
/// (`committedCheckpoint`) loads them, finishes the publication of `best` when the kill fell between the
/// commit and it (`publishBest`), and removes files of other epochs and hidden temporaries (`clean`).
/// Every rename stays inside the run directory (no rename across directories, safe on NFS).
///
/// Runs written before this layout hold `last.safetensors` + `last.state.safetensors` instead of the
/// epoch files; they are resumed from those (`legacyCheckpoint`), and their first new epoch removes them.
/// `report`, `check` and `sweep status` read `record.json` alone, which has not changed.
public struct RunDirectory: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public var config: URL { url.appendingPathComponent("config.json") }
    public var record: URL { url.appendingPathComponent("record.json") }
    public var metrics: URL { url.appendingPathComponent("metrics.csv") }
    public var log: URL { url.appendingPathComponent("log.txt") }
    public var bestCheckpoint: URL { url.appendingPathComponent("best.safetensors") }

    /// The model after `epoch` (1-based).
    public func checkpoint(epoch: Int) -> URL { url.appendingPathComponent(String(format: "epoch-%04d.safetensors", epoch)) }
    /// The optimizer state after `epoch` (1-based).
    public func state(epoch: Int) -> URL { url.appendingPathComponent(String(format: "epoch-%04d.state.safetensors", epoch)) }

    /// The model after epoch `epoch` (1-based) of the initialisation stage.
    public func initCheckpoint(epoch: Int) -> URL { url.appendingPathComponent(String(format: "init-%04d.safetensors", epoch)) }
    /// The training state after epoch `epoch` of the initialisation stage.
    public func initState(epoch: Int) -> URL { url.appendingPathComponent(String(format: "init-%04d.state.safetensors", epoch)) }

    /// The model and state files of the layout before epoch units (`last.safetensors`, `last.state.safetensors`).
    public var legacyCheckpoint: (model: URL, state: URL) {
        (url.appendingPathComponent("last.safetensors"), url.appendingPathComponent("last.state.safetensors"))
    }

    /// The model file of the last committed epoch (the record's epoch count), in either layout; nil when
    /// the run has no record or no checkpoint of that epoch.
    public func committedCheckpoint() -> URL? {
        guard let epochs = (try? readRecord())?.epochs.count, epochs > 0 else { return nil }
        let fm = FileManager.default
        if fm.fileExists(atPath: checkpoint(epoch: epochs).path) { return checkpoint(epoch: epochs) }
        return fm.fileExists(atPath: legacyCheckpoint.model.path) ? legacyCheckpoint.model : nil
    }

    /// Epoch numbers N of the `epoch-N.safetensors` / `epoch-N.state.safetensors` files present.
    func checkpointEpochs() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return Set(names.compactMap { Self.epoch(ofCheckpointFile: $0) }).sorted()
    }

    /// N of `epoch-N.safetensors` and `epoch-N.state.safetensors` (`prefix` "init-": of the initialisation
    /// stage's files), else nil.
    static func epoch(ofCheckpointFile name: String, prefix: String = "epoch-") -> Int? {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        for suffix in [".state.safetensors", ".safetensors"] where rest.hasSuffix(suffix) {
            return Int(rest.dropLast(suffix.count)).flatMap { $0 >= 1 ? $0 : nil }
        }
        return nil
    }

    /// Removes what a kill can leave behind around the committed epoch `keep` (0: none): hidden temporary
    /// files of `atomicWrite` (`.NAME.tmp-PID-N`), checkpoint files of other epochs, initialisation-stage
    /// files other than `keepInit`'s while no main epoch is committed (all of them after), and the legacy
    /// `last*.safetensors` once `keep`'s epoch files exist. Call it only while holding the run's lock.
    public func clean(keeping keep: Int, keepingInit keepInit: Int = 0) {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
        for name in names {
            let stale: Bool
            if name.hasPrefix("."), name.contains(".tmp-") {
                stale = true
            } else if let e = Self.epoch(ofCheckpointFile: name) {
                stale = e != keep
            } else if let e = Self.epoch(ofCheckpointFile: name, prefix: "init-") {
                stale = keep > 0 || e != keepInit
            } else if name == "last.safetensors" || name == "last.state.safetensors" {
                stale = keep > 0 && fm.fileExists(atPath: checkpoint(epoch: keep).path) && fm.fileExists(atPath: state(epoch: keep).path)
            } else {
                stale = false
            }
            if stale { try? fm.removeItem(at: url.appendingPathComponent(name)) }
        }
    }

    /// Makes `best.safetensors` hold the model of `record.bestEpoch` when that is the committed epoch
    /// `epoch` (a kill between the commit and the publication of `best` leaves the old one).
    public func publishBest(_ record: RunRecord, epoch: Int) throws {
        guard record.bestEpoch == epoch else { return }
        let source = checkpoint(epoch: epoch)
        guard let model = try? Data(contentsOf: source) else { return }
        if (try? Data(contentsOf: bestCheckpoint)) != model { try atomicWrite(model, to: bestCheckpoint) }
    }

    public func create() throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw ConfigError("cannot create run directory \(url.path): \(fileErrorReason(error))")
        }
    }

    public func appendLog(_ line: String) {
        let data = Data((line + "\n").utf8)
        if let h = try? FileHandle(forWritingTo: log) {
            h.seekToEndOfFile()
            h.write(data)
            try? h.close()
        } else {
            try? data.write(to: log)
        }
    }

    public func writeRecord(_ r: RunRecord) throws {
        try atomicWrite(JSON.encode(r), to: record)
        try atomicWrite(Data(Self.csv(r.epochs).utf8), to: metrics)
    }

    /// The record (schema 1 or 2).
    public func readRecord() throws -> RunRecord {
        let data: Data
        do { data = try Data(contentsOf: record) } catch { throw ConfigError("cannot read \(record.path): \(fileErrorReason(error))") }
        return try RunRecord.decode(data, source: record.path)
    }

    /// The stored config (`config.json`, schema 1 or 2).
    public func readConfig() throws -> TrainConfig { try TrainConfig.load(config) }

    /// One row per epoch; runs with `eval_train_set` add the two train-set evaluation columns.
    static func csv(_ epochs: [EpochMetrics]) -> String {
        let trainEval = epochs.contains { $0.trainEvalTop1 != nil }
        var s = "epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,seconds,images_per_second"
            + (trainEval ? ",train_eval_loss,train_eval_top1\n" : "\n")
        for e in epochs {
            s += "\(e.epoch),\(e.lr),\(e.trainLoss),\(e.trainTop1),\(e.testLoss),\(e.testTop1),\(e.testTop5),"
            s += String(format: "%.3f,%.1f", e.seconds, e.imagesPerSecond)
            if trainEval { s += ",\(e.trainEvalLoss.map { "\($0)" } ?? ""),\(e.trainEvalTop1.map { "\($0)" } ?? "")" }
            s += "\n"
        }
        return s
    }
}
