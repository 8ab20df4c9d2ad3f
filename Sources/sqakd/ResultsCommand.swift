import ArgumentParser
import Foundation
import Training

struct ResultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results", abstract: "Maintain results folders.", subcommands: [Migrate.self])

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rename run directories named by an earlier run id (schema-1 records, or ids that hashed the teacher's path) to their id now, rewriting their files to schema 2.",
            discussion: "Also rewrites every init_from / teacher path that names an old id. Atomic file writes; safe to rerun (a migrated folder is left as it is). Until then sweeps find such folders where they are.")

        @Argument(help: "Results root or suite results folder.") var results: String = "results"
        @Flag(help: "Only list what would change.") var dryRun = false

        func run() throws {
            let root = URL(fileURLWithPath: results)
            guard FileManager.default.fileExists(atPath: root.path) else { throw ConfigError("\(results): no such folder") }
            let migration = try ResultsMigration(root: root)
            for w in migration.warnings { print("warning: \(w)") }
            let changing = migration.runs.filter(\.changes)
            for r in changing { print("\(r.directory.path): \(r.oldID) → \(r.newID)") }
            if !dryRun { try migration.apply() }
            print("\(migration.runs.count) run directories, \(changing.count) \(dryRun ? "to migrate" : "migrated"), \(migration.runs.count - changing.count) already up to date")
            if !migration.warnings.isEmpty { throw ExitCode(1) }
        }
    }
}
