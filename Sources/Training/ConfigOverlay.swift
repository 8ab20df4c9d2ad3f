import Foundation
import Tensors
import Models

/// A JSON-like value of a config key as it was written.
public enum ConfigValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    /// Unquoted text from a YAML file or the command line, read as the key's type by the decoder.
    case text(String)
    case array([ConfigValue])
    case object([String: ConfigValue])
    case null

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ConfigValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ConfigValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .bool(let b): try c.encode(b)
        case .integer(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s), .text(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }

    public var description: String {
        switch self {
        case .bool(let b): return "\(b)"
        case .integer(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .text(let s): return "'\(s)'"
        case .array: return "a list"
        case .object: return "a mapping"
        case .null: return "null"
        }
    }
}

/// Where a config value came from, for error lines: `suites/x.yaml:23`, `--set lr=0.1`,
/// `--config run.json`, `budget reduced`, `plan`.
public struct ConfigSource: Sendable, Equatable, CustomStringConvertible {
    /// File and line, flag, or layer name.
    public var location: String
    /// The key path of the mapping the value sat in ("student", "grid[0].overrides[1]"), for messages.
    public var keyPath: String

    public init(_ location: String, keyPath: String = "") {
        self.location = location
        self.keyPath = keyPath
    }

    public var description: String { location }

    /// `key` as the user wrote it: "student.lr" for a suite block, "lr" for a flag.
    func qualified(_ key: String) -> String { keyPath.isEmpty ? key : "\(keyPath).\(key)" }
}

/// A value and where it came from.
public struct ConfigEntry: Sendable, Equatable {
    public var value: ConfigValue
    public var source: ConfigSource

    public init(_ value: ConfigValue, _ source: ConfigSource) {
        self.value = value
        self.source = source
    }
}

/// One layer of settings: snake_case key → value with provenance. Layers are applied in order, the later
/// winning per key; `TrainConfig.resolve` turns them into a config. Mappings are flattened to dotted keys
/// (`quantizer_settings.delta`), so a later layer overrides one setting of a map, not the whole map.
public struct ConfigOverlay: Sendable, Equatable {
    public private(set) var entries: [String: ConfigEntry] = [:]
    /// Keys in the order they were first set (error messages follow the file).
    public private(set) var order: [String] = []

    public init() {}

    /// `values` with one source for all of them.
    public init(_ values: [String: ConfigValue], source: ConfigSource) {
        for (k, v) in values.sorted(by: { $0.key < $1.key }) { set(k, v, source) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public subscript(key: String) -> ConfigEntry? { entries[key] }

    /// Sets `key` (objects flatten to `key.sub`).
    public mutating func set(_ key: String, _ value: ConfigValue, _ source: ConfigSource) {
        if case .object(let o) = value {
            for (k, v) in o.sorted(by: { $0.key < $1.key }) { set("\(key).\(k)", v, source) }
            return
        }
        if entries[key] == nil { order.append(key) }
        entries[key] = ConfigEntry(value, source)
    }

    /// This layer with `other`'s entries over it.
    public func overridden(by other: ConfigOverlay) -> ConfigOverlay {
        var r = self
        for k in other.order { r.set(k, other.entries[k]!.value, other.entries[k]!.source) }
        return r
    }

    /// All layers merged in order.
    public static func merged(_ layers: [ConfigOverlay]) -> ConfigOverlay {
        layers.reduce(ConfigOverlay()) { $0.overridden(by: $1) }
    }

    /// `key=value` assignments from the command line (`--set lr=0.05`, `--set quantizer_settings.delta=0`);
    /// values are text, read as the key's type.
    public static func assignments(_ items: [String], flag: String = "--set") throws -> ConfigOverlay {
        var o = ConfigOverlay()
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw ConfigError("\(flag) expects key=value, got '\(item)'") }
            o.set(parts[0], .text(parts[1]), ConfigSource("\(flag) \(item)"))
        }
        return o
    }

    /// A JSON object file (`--config run.json`, a run's `config.json`).
    public static func json(_ data: Data, source: ConfigSource) throws -> ConfigOverlay {
        let value: ConfigValue
        do { value = try JSONDecoder().decode(ConfigValue.self, from: data) } catch {
            throw ConfigError("\(source): not valid JSON: \(error)")
        }
        guard case .object(let o) = value else { throw ConfigError("\(source): expected a JSON object of config keys") }
        return ConfigOverlay(o, source: source)
    }
}

/// The keys of `TrainConfig`, derived from its properties: snake_case key, Swift name and kind.
public enum ConfigSchema {
    public enum Kind: Sendable, Equatable {
        case string, integer, number, bool
        /// An integer ≥ 0 (`UInt64`).
        case count
        /// One of the spellings of a `ConfigChoice`.
        case choice([String])
        /// A map of numbers (`quantizer_settings`), set key by key.
        case numberMap

        var expected: String {
            switch self {
            case .string: return "a string"
            case .integer: return "an integer"
            case .count: return "an integer ≥ 0"
            case .number: return "a number"
            case .bool: return "true or false"
            case .choice(let c): return "one of \(c.joined(separator: ", "))"
            case .numberMap: return "a mapping of names to numbers"
            }
        }
    }

    public struct Key: Sendable {
        /// snake_case, as on disk and on the command line.
        public var name: String
        /// The Swift property.
        public var property: String
        public var kind: Kind
        /// Whether the key may be absent (an optional property).
        public var optional: Bool
    }

    /// Every key, in declaration order.
    public static let keys: [Key] = Mirror(reflecting: TrainConfig()).children.map { child in
        let property = child.label!
        let (kind, optional) = kindOf(child.value, property: property)
        return Key(name: snakeCase(property), property: property, kind: kind, optional: optional)
    }

    static let byName: [String: Key] = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })
    static let byProperty: [String: Key] = Dictionary(uniqueKeysWithValues: keys.map { ($0.property, $0) })

    public static var names: [String] { keys.map(\.name) }

    private static func kindOf(_ value: Any, property: String) -> (Kind, Bool) {
        let t = type(of: value)
        if let c = value as? any ConfigChoice { return (.choice(spellings(of: c)), false) }
        if t == Bool.self { return (.bool, false) }
        if t == Int.self { return (.integer, false) }
        if t == Int?.self { return (.integer, true) }
        if t == UInt64.self { return (.count, false) }
        if t == Double.self { return (.number, false) }
        if t == Double?.self { return (.number, true) }
        if t == String.self { return (.string, false) }
        if t == String?.self { return (.string, true) }
        if t == [String: Double].self { return (.numberMap, false) }
        preconditionFailure("TrainConfig.\(property) has type \(t), which ConfigSchema cannot read; use String, Int, Int?, UInt64, Double, Double?, Bool, String?, [String: Double] or a ConfigChoice enum")
    }

    private static func spellings<T: ConfigChoice>(of _: T) -> [String] { T.spellings }

    /// camelCase → snake_case, an upper-case run counting as one word: quantizerLR → quantizer_lr,
    /// runID → run_id, bestTop1 → best_top1.
    public static func snakeCase(_ s: String) -> String {
        var out = ""
        let chars = Array(s)
        for (i, ch) in chars.enumerated() {
            if ch.isUppercase {
                let prevLower = i > 0 && (chars[i - 1].isLowercase || chars[i - 1].isNumber)
                let nextLower = i + 1 < chars.count && chars[i + 1].isLowercase
                let prevUpper = i > 0 && chars[i - 1].isUppercase
                if i > 0 && (prevLower || (prevUpper && nextLower)) { out.append("_") }
                out.append(Character(ch.lowercased()))
            } else {
                out.append(ch)
            }
        }
        return out
    }
}

extension TrainConfig {
    /// The one strict decoder for user input: the layers are merged in order, the recipe is chosen from the
    /// merged `quantizer`, `style` and `distill` (`Recipe`), and the merged values are applied over the
    /// recipe's defaults. An unknown key, a value of the wrong type and an invalid value are one error line
    /// naming the key and where the value came from ("suites/x.yaml:23: 'student.lr' must be a positive
    /// number, got -1").
    public static func resolve(_ layers: [ConfigOverlay]) throws -> TrainConfig {
        let merged = ConfigOverlay.merged(layers)
        func spelled<T: ConfigChoice>(_ key: String, _: T.Type) -> T? {
            switch merged[key]?.value {
            case .string(let s)?, .text(let s)?: return T(rawValue: s)
            default: return nil
            }
        }
        let quantizer: String
        switch merged["quantizer"]?.value {
        case .string(let s)?, .text(let s)?: quantizer = s
        default: quantizer = TrainConfig().quantizer
        }
        let recipe = Recipe(quantizer: quantizer, style: spelled("style", QuantizationStyle.self) ?? .cifar)
        let base = recipe.defaults(distill: spelled("distill", DistillationMethod.self) ?? .none)
        let config = try decode(merged, onto: base)
        if let issue = config.issues().first {
            let entry = merged[issue.key] ?? merged.order.first { $0.hasPrefix(issue.key + ".") }.flatMap { merged[$0] }
            let source = entry?.source ?? ConfigSource("recipe \(recipe.rawValue)")
            throw ConfigError("\(source): '\(source.qualified(issue.key))' \(issue.message)")
        }
        return config
    }

    /// `overlay`'s values over `base`, checking every key and type; no range checks (`issues()`).
    public static func decode(_ overlay: ConfigOverlay, onto base: TrainConfig) throws -> TrainConfig {
        var map = base.camelCaseMap()
        for key in overlay.order {
            let entry = overlay.entries[key]!
            func fail(_ message: String) -> ConfigError {
                ConfigError("\(entry.source): '\(entry.source.qualified(key))' \(message)")
            }
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            guard let spec = ConfigSchema.byName[parts[0]] else {
                throw ConfigError("\(entry.source): unknown key '\(entry.source.qualified(key))'; valid keys: \(ConfigSchema.names.joined(separator: ", "))")
            }
            if parts.count == 2 {
                guard spec.kind == .numberMap else { throw fail("is not a mapping; '\(parts[0])' must be \(spec.kind.expected)") }
                guard let v = try typed(entry.value, .number, fail) else { throw fail("must be a number, got null") }
                var m: [String: ConfigValue]
                if case .object(let o)? = map[spec.property] { m = o } else { m = [:] }
                m[parts[1]] = v
                map[spec.property] = .object(m)
            } else if spec.kind == .numberMap {
                throw fail("must be \(spec.kind.expected) (set one entry as \(key).NAME=VALUE), got \(entry.value)")
            } else if let v = try typed(entry.value, spec.kind, fail) {
                map[spec.property] = v
            } else {
                guard spec.optional else { throw fail("must be \(spec.kind.expected), got null") }
                map[spec.property] = nil
            }
        }
        do {
            return try JSONDecoder().decode(TrainConfig.self, from: JSONEncoder().encode(map))
        } catch let DecodingError.dataCorrupted(c), let DecodingError.typeMismatch(_, c) {
            // Values that fit the kind but not the Swift type (a negative seed).
            let property = c.codingPath.first?.stringValue ?? ""
            let name = ConfigSchema.byProperty[property]?.name ?? property
            let entry = overlay[name]
            let at = entry.map { "\($0.source): '\($0.source.qualified(name))'" } ?? "'\(name)'"
            throw ConfigError("\(at) must be \(ConfigSchema.byName[name]?.kind.expected ?? "valid"), got \(entry?.value.description ?? "?")")
        } catch {
            throw ConfigError("cannot build the config: \(error)")
        }
    }

    /// `value` checked against `kind` (text parsed as the kind); nil for null.
    private static func typed(_ value: ConfigValue, _ kind: ConfigSchema.Kind, _ fail: (String) -> ConfigError) throws -> ConfigValue? {
        let got = "got \(value)"
        switch (kind, value) {
        case (_, .null): return nil
        case (.string, .string), (.string, .text): return value.asString
        case (.choice(let valid), .string(let s)), (.choice(let valid), .text(let s)):
            guard valid.contains(s) else { throw fail("must be one of \(valid.joined(separator: ", ")), got '\(s)'") }
            return .string(s)
        case (.integer, .integer): return value
        case (.count, .integer(let i)):
            guard i >= 0 else { throw fail("must be an integer ≥ 0, \(got)") }
            return value
        case (.count, .text(let s)):
            guard let i = Int(s), i >= 0 else { throw fail("must be an integer ≥ 0, \(got)") }
            return .integer(i)
        case (.integer, .text(let s)):
            guard let i = Int(s) else { throw fail("must be an integer, \(got)") }
            return .integer(i)
        case (.number, .integer(let i)): return .double(Double(i))
        case (.number, .double(let d)):
            guard d.isFinite else { throw fail("must be a finite number, \(got)") }
            return value
        case (.number, .text(let s)):
            guard let d = Double(s), d.isFinite else { throw fail("must be a number, \(got)") }
            return .double(d)
        case (.bool, .bool): return value
        case (.bool, .text(let s)):
            switch s.lowercased() {
            case "true", "yes": return .bool(true)
            case "false", "no": return .bool(false)
            default: throw fail("must be true or false, \(got)")
            }
        default:
            throw fail("must be \(kind.expected), \(got)")
        }
    }

    /// The synthesized encoding (Swift property names) as a value map.
    func camelCaseMap() -> [String: ConfigValue] {
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        guard case .object(let o)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            preconditionFailure("TrainConfig does not encode to a JSON object")
        }
        return o
    }

    /// Every key with its value (snake_case keys; absent optionals left out).
    public var values: [String: ConfigValue] {
        Dictionary(uniqueKeysWithValues: camelCaseMap().map { (ConfigSchema.byProperty[$0.key]!.name, $0.value) })
    }

    /// The keys whose value differs from `TrainConfig()` (the base defaults).
    public var changedValues: [String: ConfigValue] {
        let base = TrainConfig().values
        return values.filter { base[$0.key] != $0.value }
    }

    /// The full config as pretty JSON with sorted snake_case keys: `config.json`, `--config` files.
    public func storedJSON() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        var d = (try? e.encode(values)) ?? Data()
        d.append(0x0A)
        return d
    }

    /// 16 hex digits of FNV-1a-64 over the compact sorted-key JSON of `identityValues`. A key added later
    /// with a default that keeps the old behaviour leaves every existing id as it was. A student's id
    /// depends on its teacher's run id, not on where the teacher lives: the same sweep run from another
    /// directory, or over a moved results root, finds the same run directories.
    public var runID: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return fnv1a64((try? e.encode(identityValues)) ?? Data())
    }

    /// `changedValues` with `teacher` and `init_from` reduced to what they name (`runReference`).
    public var identityValues: [String: ConfigValue] {
        var v = changedValues
        for key in ["teacher", "init_from"] {
            if case .string(let path)? = v[key] { v[key] = .string(Self.runReference(path)) }
        }
        return v
    }

    /// The identity of a `teacher` / `init_from` value: a run directory named by its run id (16 hex
    /// digits, as sweeps name them, or `sqakd train`'s default `<model>-<dataset>…-<id>`) is that id,
    /// wherever it lives ("results/x/runs/08f44b07b5901a25", "/scratch/r/08f44b07b5901a25/" →
    /// "08f44b07b5901a25"); any other path (a .safetensors file) counts as written.
    public static func runReference(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let hex = Set("0123456789abcdef")
        func isID<S: StringProtocol>(_ s: S) -> Bool { s.count == 16 && s.allSatisfy(hex.contains) }
        if isID(name) { return name }
        if name.count > 17, name.dropLast(16).hasSuffix("-"), isID(name.suffix(16)) { return String(name.suffix(16)) }
        return path
    }

    /// The run id before ids hashed the teacher's identity (`teacher` / `init_from` hashed as written,
    /// cwd-relative): what `results migrate` maps from.
    public var pathRunID: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return fnv1a64((try? e.encode(changedValues)) ?? Data())
    }

    /// The run id of record schema 1: FNV-1a-64 of the full camelCase pretty sorted-key JSON (what
    /// `results migrate` maps from).
    /// Keys that schema 1 did not have leave its hash: the JSON is re-encoded without them (same encoder,
    /// same text for every other value).
    public var schema1RunID: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        var map = camelCaseMap()
        let defaults = TrainConfig().camelCaseMap()
        for key in Self.propertiesAfterSchema1 where map[key] == defaults[key] { map[key] = nil }
        return fnv1a64((try? e.encode(map)) ?? Data())
    }

    /// Properties added after record schema 1; at their defaults they are left out of `schema1RunID`.
    static let propertiesAfterSchema1 = ["evalTrainSet", "ewgsDeltaUpdateEvery", "ewgsDeltaProbe", "fpEdgeLayers",
                                          "perLayerActivationQuantizers", "randomInit", "imageSize"]

    /// A stored config (`config.json`, a record's `config`): its keys over `TrainConfig()`, no recipe, strict
    /// on keys and types. Schema-1 files (camelCase keys) are read too.
    public init(stored object: [String: ConfigValue], source: ConfigSource) throws {
        var o = object
        if o.keys.contains(where: { k in ConfigSchema.byName[k] == nil && ConfigSchema.byProperty[k] != nil }) {
            o = Dictionary(uniqueKeysWithValues: o.map { (ConfigSchema.byProperty[$0.key]?.name ?? $0.key, $0.value) })
        }
        self = try TrainConfig.decode(ConfigOverlay(o, source: source), onto: TrainConfig())
    }

    /// Reads a stored JSON config file (see `init(stored:source:)`).
    public static func load(_ url: URL) throws -> TrainConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ConfigError("cannot read \(url.path): \(fileErrorReason(error))") }
        let source = ConfigSource(url.path)
        guard case .object(let o)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw ConfigError("\(url.path): expected a JSON object of config keys")
        }
        return try TrainConfig(stored: o, source: source)
    }
}

extension ConfigValue {
    var asString: ConfigValue {
        switch self {
        case .text(let s): return .string(s)
        default: return self
        }
    }
}

/// 16 hex digits of FNV-1a-64.
func fnv1a64(_ bytes: Data) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return String(format: "%016llx", h)
}
