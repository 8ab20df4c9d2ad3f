import Foundation
import Tensors
import Training
import Yams

/// A suite file error: one line naming the file, the line and the key.
public struct SuiteError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Typed, position-aware access to a YAML mapping: every read names the file, line and key path when the
/// value is missing or of the wrong type, and `checkKeys` rejects keys the schema does not know.
struct YAMLMapping {
    let file: String
    let path: String
    let node: Node
    let pairs: [(key: String, value: Node)]

    init(file: String, path: String, node: Node) throws {
        guard let mapping = node.mapping else {
            throw SuiteError("\(Self.location(file, node)): \(path.isEmpty ? "the suite" : "'\(path)'") must be a mapping of key: value")
        }
        self.file = file
        self.path = path
        self.node = node
        var pairs: [(String, Node)] = []
        for (k, v) in mapping {
            guard let key = k.string else { throw SuiteError("\(Self.location(file, k)): keys must be strings") }
            if pairs.contains(where: { $0.0 == key }) {
                throw SuiteError("\(Self.location(file, k)): duplicate key '\(qualified(key, in: path))'")
            }
            pairs.append((key, v))
        }
        self.pairs = pairs
    }

    static func location(_ file: String, _ node: Node) -> String {
        if let m = node.mark { return "\(file):\(m.line)" }
        return file
    }

    func location(_ node: Node) -> String { Self.location(file, node) }
    func keyPath(_ key: String) -> String { qualified(key, in: path) }

    func value(_ key: String) -> Node? { pairs.first { $0.key == key }?.value }

    func keyNode(_ key: String) -> Node? {
        node.mapping?.first { $0.key.string == key }?.key
    }

    func checkKeys(_ allowed: [String]) throws {
        for (key, _) in pairs where !allowed.contains(key) {
            let at = keyNode(key).map(location) ?? file
            throw SuiteError("\(at): unknown key '\(keyPath(key))'; valid keys here: \(allowed.joined(separator: ", "))")
        }
    }

    func error(_ key: String, _ message: String) -> SuiteError {
        let at = value(key).map(location) ?? location(node)
        return SuiteError("\(at): '\(keyPath(key))' \(message)")
    }

    func required(_ key: String) throws -> Node {
        guard let v = value(key) else { throw SuiteError("\(location(node)): missing key '\(keyPath(key))'") }
        return v
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard v.scalar != nil, let s = v.string, !s.isEmpty else { throw error(key, "must be a non-empty string") }
        return s
    }

    func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let s = v.scalar?.string, let i = Int(s) else { throw error(key, "must be an integer, got '\(v.scalar?.string ?? "a collection")'") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard let s = v.scalar?.string, let d = Double(s), d.isFinite else {
            throw error(key, "must be a number, got '\(v.scalar?.string ?? "a collection")'")
        }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        switch v.scalar?.string.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw error(key, "must be true or false, got '\(v.scalar?.string ?? "a collection")'")
        }
    }

    /// A list of scalars; a single scalar counts as a one-element list.
    func strings(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        if let s = v.scalar?.string { return [s] }
        guard let seq = v.sequence else { throw error(key, "must be a list") }
        return try seq.map { item in
            guard let s = item.scalar?.string, !s.isEmpty else { throw SuiteError("\(location(item)): '\(keyPath(key))' items must be strings") }
            return s
        }
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let items = try strings(key) else { return nil }
        return try items.map { s in
            guard let i = Int(s) else { throw error(key, "items must be integers, got '\(s)'") }
            return i
        }
    }

    func mapping(_ key: String) throws -> YAMLMapping? {
        guard let v = value(key) else { return nil }
        return try YAMLMapping(file: file, path: keyPath(key), node: v)
    }

    func mappings(_ key: String) throws -> [YAMLMapping]? {
        guard let v = value(key) else { return nil }
        guard let seq = v.sequence else { throw error(key, "must be a list of mappings") }
        return try seq.enumerated().map { i, item in try YAMLMapping(file: file, path: "\(keyPath(key))[\(i)]", node: item) }
    }
}

extension YAMLMapping {
    /// The mapping as a config layer, each value with its file and line. Plain scalars are text (read as the
    /// key's type by `TrainConfig.resolve`), quoted ones strings, `~` / `null` / nothing null; nested
    /// mappings flatten to dotted keys (`quantizer_settings: {delta: 0}` → `quantizer_settings.delta`).
    /// `skipping` names keys that belong to the surrounding schema (an override's conditions).
    func overlay(skipping: [String] = []) throws -> ConfigOverlay {
        var o = ConfigOverlay()
        func add(_ key: String, _ keyNode: Node?, _ value: Node) throws {
            let source = ConfigSource(location(keyNode ?? value), keyPath: path)
            if let scalar = value.scalar {
                let plain = scalar.style == .plain || scalar.style == .any
                if plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                    o.set(key, .null, source)
                } else {
                    o.set(key, plain ? .text(scalar.string) : .string(scalar.string), source)
                }
            } else if let mapping = value.mapping {
                for (k, v) in mapping {
                    guard let sub = k.string else { throw SuiteError("\(location(k)): keys must be strings") }
                    try add("\(key).\(sub)", k, v)
                }
            } else {
                o.set(key, .array([]), source)
            }
        }
        for (key, value) in pairs where !skipping.contains(key) { try add(key, keyNode(key), value) }
        return o
    }
}

/// Config files for `sqakd train --config`: JSON (`.json`) or YAML, snake_case `TrainConfig` keys.
public enum ConfigFile {
    public static func overlay(_ path: String) throws -> ConfigOverlay {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ConfigError("cannot read config \(path): \(fileErrorReason(error))") }
        if url.pathExtension.lowercased() == "json" { return try ConfigOverlay.json(data, source: ConfigSource("--config \(path)")) }
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: String(decoding: data, as: UTF8.self)) else { return ConfigOverlay() }
            root = n
        } catch {
            throw ConfigError("--config \(path): not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        do { return try YAMLMapping(file: path, path: "", node: root).overlay() } catch let e as SuiteError { throw ConfigError(e.description) }
    }
}

private func qualified(_ key: String, in path: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
