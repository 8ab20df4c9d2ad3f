import Foundation
import Tensors

/// A run's directory:
///   config.json          resolved TrainConfig, every key (`TrainConfig.storedJSON()`)
///   record.json          versioned RunRecord, rewritten atomically after every epoch
///   metrics.csv          one row per epoch, rewritten atomically from the record
///   log.txt              human log, appended
///   last.safetensors     model state dict (PyTorch names) after the latest epoch
///   last.state.safetensors  optimizer state + epoch counter for resume (same epoch as last.safetensors)
///   best.safetensors     model state dict at the best test top-1 so far
public struct RunDirectory: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public var config: URL { url.appendingPathComponent("config.json") }
    public var record: URL { url.appendingPathComponent("record.json") }
    public var metrics: URL { url.appendingPathComponent("metrics.csv") }
    public var log: URL { url.appendingPathComponent("log.txt") }
    public var lastCheckpoint: URL { url.appendingPathComponent("last.safetensors") }
    public var lastState: URL { url.appendingPathComponent("last.state.safetensors") }
    public var bestCheckpoint: URL { url.appendingPathComponent("best.safetensors") }

    public func create() throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw ConfigError("cannot create run directory \(url.path): \(error.localizedDescription)")
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
        do { data = try Data(contentsOf: record) } catch { throw ConfigError("cannot read \(record.path): \(error.localizedDescription)") }
        return try RunRecord.decode(data, source: record.path)
    }

    /// The stored config (`config.json`, schema 1 or 2).
    public func readConfig() throws -> TrainConfig { try TrainConfig.load(config) }

    static func csv(_ epochs: [EpochMetrics]) -> String {
        var s = "epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,seconds,images_per_second\n"
        for e in epochs {
            s += "\(e.epoch),\(e.lr),\(e.trainLoss),\(e.trainTop1),\(e.testLoss),\(e.testTop1),\(e.testTop5),"
            s += String(format: "%.3f,%.1f\n", e.seconds, e.imagesPerSecond)
        }
        return s
    }
}
