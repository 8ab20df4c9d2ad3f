import Foundation
import Tensors

/// `sqakd results migrate`: renames run directories named by an earlier run id to their id now, and
/// rewrites their files to the current schema:
/// - schema-1 directories (camelCase `config.json` / `record.json`, named by `TrainConfig.schema1RunID`):
///   snake_case files;
/// - directories named by the id that hashed `teacher` / `init_from` as written (`TrainConfig.pathRunID`,
///   before ids counted a teacher by its run id): the record's `run_id`.
/// Every `init_from` / `teacher` path component that names an old id is replaced by the new id.
///
/// Idempotent and safe to rerun after an interruption: each directory's old and new ids are all
/// recomputed from its config (each earlier formula over the config with the paths of its time, `runID`
/// over it with new paths), so a half-migrated folder is finished, and a migrated one is left as it is.
/// Files are replaced atomically; a directory is renamed last (within its parent folder).
public struct ResultsMigration {
    public struct Run: Sendable {
        public var directory: URL
        public var oldID: String
        public var newID: String
        /// Whether its files or name change.
        public var changes: Bool
    }

    public var runs: [Run] = []
    public var warnings: [String] = []

    /// Plans the migration of every run directory (a folder holding `config.json`) below `root`.
    public init(root: URL) throws {
        let dirs = Self.runDirectories(below: root)
        var loaded: [(dir: URL, config: TrainConfig, record: RunRecord?)] = []
        for d in dirs {
            let run = RunDirectory(d)
            do {
                let config = try run.readConfig()
                let record = FileManager.default.fileExists(atPath: run.record.path) ? try run.readRecord() : nil
                loaded.append((d, config, record))
            } catch {
                warnings.append("\(d.path): skipped: \(error)")
            }
        }
        let names = Set(loaded.map { $0.dir.lastPathComponent })
        // Any earlier id (schema 1, path-hashing) → new id; new id → the id of each earlier formula.
        var oldToNew: [String: String] = [:], newToSchema1: [String: String] = [:], newToPath: [String: String] = [:]
        var pending = loaded
        var planned: [(dir: URL, config: TrainConfig, record: RunRecord?, old: String, new: String)] = []
        while !pending.isEmpty {
            var next: [(dir: URL, config: TrainConfig, record: RunRecord?)] = []
            for item in pending {
                let refs = [item.config.initFrom, item.config.teacher].compactMap { $0 }.flatMap { $0.split(separator: "/").map(String.init) }
                // Wait for the runs it names that are not mapped yet.
                if refs.contains(where: { names.contains($0) && oldToNew[$0] == nil && newToPath[$0] == nil && $0 != item.dir.lastPathComponent }) {
                    next.append(item)
                    continue
                }
                func rewrite(_ path: String?, _ map: [String: String]) -> String? {
                    path.map { p in p.split(separator: "/", omittingEmptySubsequences: false).map { map[String($0)] ?? String($0) }.joined(separator: "/") }
                }
                func config(_ map: [String: String]) -> TrainConfig {
                    var c = item.config
                    c.initFrom = rewrite(item.config.initFrom, map)
                    c.teacher = rewrite(item.config.teacher, map)
                    return c
                }
                let newConfig = config(oldToNew)
                let schema1 = config(newToSchema1).schema1RunID, path = config(newToPath).pathRunID, new = newConfig.runID
                let name = item.dir.lastPathComponent
                guard [schema1, path, new].contains(name) else {
                    warnings.append("\(item.dir.path): named neither by its schema-1 id \(schema1), nor by its id of before \(path), nor by its id \(new); left as it is")
                    continue
                }
                for old in [schema1, path, name] where old != new { oldToNew[old] = new }
                newToSchema1[new] = schema1
                newToPath[new] = path
                planned.append((item.dir, newConfig, item.record, name, new))
            }
            if next.count == pending.count {
                for item in next { warnings.append("\(item.dir.path): its teacher / init_from runs could not be mapped (a cycle); left as it is") }
                break
            }
            pending = next
        }
        for p in planned {
            let run = RunDirectory(p.dir)
            var changes = p.dir.lastPathComponent != p.new
            changes = changes || (try? Data(contentsOf: run.config)) != p.config.storedJSON()
            if var r = p.record {
                r.config = p.config
                r.runID = p.new
                r.schema = RunRecord.currentSchema
                changes = changes || (try? Data(contentsOf: run.record)) != (try? JSON.encode(r))
            }
            runs.append(Run(directory: p.dir, oldID: p.old, newID: p.new, changes: changes))
        }
        stagedRecords = Dictionary(uniqueKeysWithValues: planned.map { ($0.dir, ($0.config, $0.record, $0.new)) })
    }

    private var stagedRecords: [URL: (TrainConfig, RunRecord?, String)] = [:]

    /// Writes the planned changes; returns the directories changed.
    @discardableResult
    public func apply() throws -> [Run] {
        var changed: [Run] = []
        for run in runs where run.changes {
            guard let (config, record, newID) = stagedRecords[run.directory] else { continue }
            let dir = RunDirectory(run.directory)
            try atomicWrite(config.storedJSON(), to: dir.config)
            if var r = record {
                r.config = config
                r.runID = newID
                r.schema = RunRecord.currentSchema
                try atomicWrite(JSON.encode(r), to: dir.record)
            }
            if run.directory.lastPathComponent != newID {
                let target = run.directory.deletingLastPathComponent().appendingPathComponent(newID)
                guard !FileManager.default.fileExists(atPath: target.path) else {
                    throw ConfigError("cannot rename \(run.directory.path) to \(newID): \(target.path) exists")
                }
                do { try FileManager.default.moveItem(at: run.directory, to: target) } catch {
                    throw ConfigError("cannot rename \(run.directory.path) to \(target.path): \(fileErrorReason(error))")
                }
            }
            changed.append(run)
        }
        return changed
    }

    /// Folders holding a `config.json`, sorted, not descending into them.
    static func runDirectories(below root: URL) -> [URL] {
        let fm = FileManager.default
        var out: [URL] = []
        func walk(_ dir: URL) {
            if fm.fileExists(atPath: dir.appendingPathComponent("config.json").path) { out.append(dir); return }
            guard let items = try? fm.contentsOfDirectory(atPath: dir.path) else { return }
            for item in items.sorted() where !item.hasPrefix(".") {
                var isDir: ObjCBool = false
                let url = dir.appendingPathComponent(item)
                if fm.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue { walk(url) }
            }
        }
        walk(root)
        return out
    }
}
