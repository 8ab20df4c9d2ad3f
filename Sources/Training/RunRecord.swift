import Foundation
import Tensors

/// One epoch's measurements. Timing fields are the only ones that differ between two runs of the same
/// config, seed and thread count.
public struct EpochMetrics: Codable, Equatable, Sendable {
    public var epoch: Int
    public var lr: Double
    public var trainLoss: Double
    public var trainTop1: Double
    public var testLoss: Double
    public var testTop1: Double
    public var testTop5: Double
    public var seconds: Double
    public var imagesPerSecond: Double

    /// The metrics without timing, for determinism checks.
    public var numbers: [Double] { [Double(epoch), lr, trainLoss, trainTop1, testLoss, testTop1, testTop5] }
}

/// The versioned JSON record of a run (`record.json`). Reports are rebuilt from these alone.
public struct RunRecord: Codable, Sendable {
    public static let currentSchema = 1
    public var schema: Int = RunRecord.currentSchema
    public var runID: String
    /// "running", "finished" or "failed".
    public var status: String
    public var failure: String?
    public var config: TrainConfig
    public var system: SystemInfo
    public var parameterCount: Int
    public var epochs: [EpochMetrics]
    /// Best test top-1 over epochs (the paper's convention: selected on the test set) and its epoch.
    public var bestTop1: Double?
    public var bestEpoch: Int?
    public var lastTop1: Double?
    /// Wall time summed over all sessions of the run (a resumed run adds up).
    public var wallSeconds: Double
    public var startedAt: String
    public var updatedAt: String
}

enum JSON {
    static func encode<T: Encodable>(_ v: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        var d = try e.encode(v)
        d.append(0x0A)
        return d
    }

    static func decode<T: Decodable>(_ t: T.Type, from url: URL) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ConfigError("cannot read \(url.path): \(error.localizedDescription)") }
        do { return try JSONDecoder().decode(t, from: data) } catch let e as ConfigError { throw e } catch {
            throw ConfigError("\(url.path) is not a valid \(t) JSON file: \(error)")
        }
    }
}

func isoNow() -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date())
}
