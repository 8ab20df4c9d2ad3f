import Foundation
import Testing
@testable import Bench
@testable import Training

private let smallSuite = """
    dataset: fashion-mnist
    grid:
      - model: resnet20
        quantizers: [ewgs]
        bits: [2]

    """

/// Runs `sqakd args…` in the repository root with `environment` added; exit status and combined output.
private func sqakdWith(_ args: [String], environment: [String: String] = [:]) throws -> CommandResult {
    let p = Process()
    p.executableURL = sqakdExecutable()
    p.arguments = args
    p.currentDirectoryURL = repoRoot
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
}

/// Faults and bad input at the sweep and command level: one line naming the file, key or value, a
/// non-zero exit that is not the usage exit (64), no usage text.
@Suite struct SweepFaultTests {
    @Test func hugeSeedCountsAreRefused() throws {
        let e = #expect(throws: SuiteError.self) {
            try Suite.parse(smallSuite + "seeds: 2000000000\n", file: URL(fileURLWithPath: "/tmp/s.yaml"))
        }
        #expect(e?.description.contains("seeds") == true && e?.description.contains("1...1000, got 2000000000") == true, "\(e?.description ?? "")")
        let suite = try Suite.parse(smallSuite, file: URL(fileURLWithPath: "/tmp/s.yaml"))
        #expect(throws: SuiteError.self) { try Plan(suite: suite, seeds: 2_000_000_000, resultsRoot: tempDir("seeds")) }
    }

    @Test func momentumInASuiteIsAConfigError() throws {
        let e = #expect(throws: SuiteError.self) {
            try Suite.parse(smallSuite + "student:\n  momentum: -5\n", file: URL(fileURLWithPath: "/tmp/s.yaml"))
        }
        #expect(e?.description.hasPrefix("/tmp/s.yaml:7: 'student.momentum' must be ≥ 0, got -5.0") == true, "\(e?.description ?? "")")
    }

    /// Results written when ids hashed the teacher's path are found where they are (status, resume,
    /// report) until `sqakd results migrate` renames them; then the plan uses the new folders.
    @Test func unmigratedFoldersAreFoundWhereTheyAre() throws {
        let root = tempDir("unmigrated")
        defer { try? FileManager.default.removeItem(at: root) }
        let suite = try Suite.parse(smallSuite, file: URL(fileURLWithPath: "/tmp/s.yaml"))
        let student = try #require(try Plan(suite: suite, resultsRoot: root).students.first)
        #expect(student.config.pathRunID != student.id)
        let old = RunDirectory(student.directory.deletingLastPathComponent().appendingPathComponent(student.config.pathRunID))
        try old.create()
        try student.config.storedJSON().write(to: old.config)
        var record = syntheticRecord(student, curve: Array(repeating: 50, count: student.config.epochs))
        record.runID = student.config.pathRunID
        try old.writeRecord(record)

        let before = try Plan(suite: suite, resultsRoot: root)
        let s = try #require(before.students.first { $0.id == student.id })
        #expect(s.directory.lastPathComponent == student.config.pathRunID)
        #expect(RunState.of(s) == .finished)
        #expect(before.unmigrated.map(\.id) == [student.id])
        #expect(try SuiteResults.load(suite: suite, resultsRoot: root).cells.count == 1)

        try ResultsMigration(root: root).apply()
        let after = try Plan(suite: suite, resultsRoot: root)
        let t = try #require(after.students.first { $0.id == student.id })
        #expect(after.unmigrated.isEmpty && t.directory.lastPathComponent == student.id && RunState.of(t) == .finished)
        #expect(try RunDirectory(t.directory).readRecord().runID == student.id)
    }

    /// failure.json used to record the "run directory: …" line that stdout flushed after the error.
    @Test func failureReasonIsTheErrorLine() {
        let console = """

            # 2026-01-01T00:00:00Z sweep smoke: sqakd train …
            Error: an earlier attempt's error

            # 2026-01-02T00:00:00Z sweep smoke: sqakd train …
            Error: training diverged: test loss became nan at the end of epoch 2
            run directory: results/smoke/runs/0123456789abcdef

            """
        #expect(LocalExecutor.reason(exitStatus: 1, console: console)
                == "exit status 1: training diverged: test loss became nan at the end of epoch 2")
        #expect(LocalExecutor.reason(exitStatus: 1, console: "# header\nsome last line\n") == "exit status 1: some last line")
        #expect(LocalExecutor.reason(exitStatus: 3, console: "") == "exit status 3")
    }

    /// `check` passed when stored values were ±1e308 (an infinite spread, so an infinite tolerance).
    @Test func checkRejectsOutOfRangeStoredValues() throws {
        let suite = try Suite.parse(smallSuite, file: URL(fileURLWithPath: "/tmp/s.yaml"))
        let csv = tempDir("check").appendingPathComponent("cells.csv")
        let row = [suite.name, "fashion-mnist", "resnet20", "ewgs", "2", "sqakd", "smoke", "1", "2", "2", "0", "0", "0", "0", "",
                   "1e308;-1e308", "50;50"]
        writeText(CSV.line(Tables.cellsHeaderV1) + CSV.line(row), csv)
        let e = #expect(throws: SuiteError.self) { try RegressionCheck.readCSV(csv, suite: suite) }
        #expect(e?.description.contains(":2: best_values holds 1e+308, not a top-1 accuracy in [0, 100]") == true, "\(e?.description ?? "")")

        let cell = CellKey(model: "resnet20", quantizer: "ewgs", bits: 2, method: .sqakd)
        let new = CellNumbers(cell: cell, budget: "smoke", epochs: 1, best: Summary([50]), last: Summary([50]))
        let wide = CellNumbers(cell: cell, budget: "smoke", epochs: 1, best: Summary([1e308, -1e308]), last: Summary([50, 50]))
        #expect(!RegressionCheck().compare(new: [new], stored: [wide]).passed)
    }

    @Test func commandErrorsAreOneLineWithoutUsage() throws {
        let dir = tempDir("cli")
        let cases: [(args: [String], env: [String: String], expect: String)] = [
            (["train", "--momentum", "-5", "--output", dir.appendingPathComponent("m").path], [:], "--momentum: 'momentum' must be ≥ 0, got -5.0"),
            (["train", "--nesterov", "--momentum", "0", "--output", dir.appendingPathComponent("n").path], [:],
             "--nesterov: 'nesterov' needs momentum > 0 (SGD), got momentum 0.0"),
            (["results", "migrate", "/nonexistent/results"], [:], "/nonexistent/results: no such folder"),
            (["data", "verify", "fashion-mnist"], ["SQAKD_DATA": "/nonexistent/data"], "/nonexistent/data/fashion-mnist: 4 missing"),
            (["eval", "--checkpoint", "/nonexistent/x.safetensors", "--dataset", "fashion-mnist-1ch", "--data-root", "/nonexistent/d"], [:],
             "Fashion-MNIST test: missing 2 of 2 file(s) in /nonexistent/d/fashion-mnist"),
        ]
        for c in cases {
            let r = try sqakdWith(c.args, environment: c.env)
            #expect(r.status == 1, "\(c.args): exit \(r.status)\n\(r.output)")
            #expect(r.output.contains(c.expect), "\(c.args): \(r.output)")
            #expect(!r.output.contains("Usage:") && !r.output.contains("NSCocoaErrorDomain"), "\(c.args): \(r.output)")
        }
    }

    /// `--threads 1000` runs on the cores there are, saying so in one line.
    @Test func threadsAreCappedAtTheCoreCount() throws {
        let r = try sqakdWith(["train", "--threads", "1000", "--momentum", "-5"])
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #expect(r.output.contains("note: --threads 1000 is more than the \(cores) core(s) available; using \(cores)"), "\(r.output)")
    }
}

/// The kill -9 soak's short variant (`make soak` runs 20 kills): a tiny run SIGKILLed at 3 random moments
/// and resumed each time ends with the uninterrupted run's record and checkpoint bytes.
@Suite struct KillSoakTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3"))
    func threeKillsResumeBitIdentical() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [repoRoot.appendingPathComponent("scripts/kill9_soak.py").path, "--sqakd", sqakdExecutable().path,
                       "--kills", "3", "--epochs", "3", "--seed", "3"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(out)")
        #expect(out.contains("3/3 kills left a consistent, resumable run directory; final record identical"), "\(out)")
    }
}
