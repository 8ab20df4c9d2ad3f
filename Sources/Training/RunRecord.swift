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
    /// Loss and top-1 of the eval-mode pass over the whole training set (`eval_train_set`); absent otherwise.
    public var trainEvalLoss: Double?
    public var trainEvalTop1: Double?

    /// The metrics without timing, for determinism checks.
    public var numbers: [Double] { [Double(epoch), lr, trainLoss, trainTop1, testLoss, testTop1, testTop5] }

    enum CodingKeys: String, CodingKey {
        case epoch, lr, seconds
        case trainLoss = "train_loss", trainTop1 = "train_top1", testLoss = "test_loss", testTop1 = "test_top1"
        case testTop5 = "test_top5", imagesPerSecond = "images_per_second"
        case trainEvalLoss = "train_eval_loss", trainEvalTop1 = "train_eval_top1"
    }
}

/// The versioned JSON record of a run (`record.json`). Reports are rebuilt from these alone.
///
/// Schema 2: snake_case keys throughout, the config as `TrainConfig.storedJSON()` writes it.
/// Schema 1 (camelCase keys, before the typed config) is read by `RunRecord.decode(_:source:)` and
/// rewritten by `sqakd results migrate`.
public struct RunRecord: Codable, Sendable {
    public static let currentSchema = 2
    public var schema: Int = RunRecord.currentSchema
    public var runID: String
    /// "running", "finished" or "failed".
    public var status: String
    public var failure: String?
    @StoredConfig public var config: TrainConfig
    public var system: SystemInfo
    public var parameterCount: Int
    public var epochs: [EpochMetrics]
    /// The initialisation stage's epochs (fsp, ft: `InitStage`), before `epochs`; absent for methods without one.
    public var initStage: [InitEpochMetrics]?
    /// Best test top-1 over epochs (the paper's convention: selected on the test set) and its epoch.
    public var bestTop1: Double?
    public var bestEpoch: Int?
    public var lastTop1: Double?
    /// Wall time summed over all sessions of the run (a resumed run adds up).
    public var wallSeconds: Double
    public var startedAt: String
    public var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case schema, status, failure, config, system, epochs
        case initStage = "init_stage"
        case runID = "run_id", parameterCount = "parameter_count", bestTop1 = "best_top1", bestEpoch = "best_epoch"
        case lastTop1 = "last_top1", wallSeconds = "wall_seconds", startedAt = "started_at", updatedAt = "updated_at"
    }

    /// Reads a record of schema 1 or 2.
    public static func decode(_ data: Data, source: String) throws -> RunRecord {
        let tree: ConfigValue
        do { tree = try JSONDecoder().decode(ConfigValue.self, from: data) } catch {
            throw ConfigError("\(source) is not valid JSON: \(error)")
        }
        guard case .object(var o) = tree else { throw ConfigError("\(source) is not a run record (not a JSON object)") }
        var body = data
        switch o["schema"] {
        case .integer(2)?:
            break
        case .integer(1)?:
            o = upgradeSchema1(o)
            body = try JSONEncoder().encode(o)
        default:
            throw ConfigError("\(source): unknown record schema \(o["schema"]?.description ?? "(none)"); this build reads 1 and 2")
        }
        do { return try JSONDecoder().decode(RunRecord.self, from: body) } catch let e as ConfigError {
            throw ConfigError("\(source): \(e.description)")
        } catch {
            throw ConfigError("\(source) is not a valid run record: \(error)")
        }
    }

    /// Schema 1 → 2: camelCase keys become snake_case (the config's `quantizerSettings` names stay as written).
    static func upgradeSchema1(_ o: [String: ConfigValue]) -> [String: ConfigValue] {
        func rename(_ v: ConfigValue) -> ConfigValue {
            switch v {
            case .object(let m):
                return .object(Dictionary(uniqueKeysWithValues: m.map { k, v in
                    (ConfigSchema.snakeCase(k), k == "quantizerSettings" ? v : rename(v))
                }))
            case .array(let a): return .array(a.map(rename))
            default: return v
            }
        }
        guard case .object(var r) = rename(.object(o)) else { return o }
        r["schema"] = .integer(2)
        return r
    }
}

/// A `TrainConfig` coded as stored on disk: snake_case keys over the base defaults, strict on keys and types.
@propertyWrapper
public struct StoredConfig: Codable, Sendable {
    public var wrappedValue: TrainConfig

    public init(wrappedValue: TrainConfig) { self.wrappedValue = wrappedValue }

    public init(from decoder: Decoder) throws {
        let object = try [String: ConfigValue](from: decoder)
        wrappedValue = try TrainConfig(stored: object, source: ConfigSource("config"))
    }

    public func encode(to encoder: Encoder) throws { try wrappedValue.values.encode(to: encoder) }
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
        do { data = try Data(contentsOf: url) } catch { throw ConfigError("cannot read \(url.path): \(fileErrorReason(error))") }
        do { return try JSONDecoder().decode(t, from: data) } catch let e as ConfigError { throw e } catch {
            throw ConfigError("\(url.path) is not a valid \(t) JSON file: \(error)")
        }
    }
}

func isoNow() -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date())
}
