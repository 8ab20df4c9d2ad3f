import Foundation
import Testing
@testable import Bench
@testable import Training

/// Starts `sqakd args…` in the repository root with its output to a file; returns the process and the file.
private func launch(_ args: [String]) throws -> (Process, URL) {
    let p = Process()
    p.executableURL = sqakdExecutable()
    p.arguments = args
    p.currentDirectoryURL = repoRoot
    let out = tempDir("concurrent-out").appendingPathComponent("output.txt")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    let h = try FileHandle(forWritingTo: out)
    p.standardOutput = h
    p.standardError = h
    try p.run()
    return (p, out)
}

@Suite("Concurrent sweeps on one results folder (real Fashion-MNIST)")
struct ConcurrentSweepTests {
    @Test("two sweeps at once: every run trained exactly once, records intact, both exit 0")
    func twoSweeps() throws {
        let results = tempDir("concurrent")
        let args = ["sweep", "run", "smoke", "--results", results.path, "--jobs", "1", "--threads", "1"]
        let (a, aOut) = try launch(args)
        let (b, bOut) = try launch(args)
        a.waitUntilExit()
        b.waitUntilExit()
        let outA = try String(contentsOf: aOut, encoding: .utf8), outB = try String(contentsOf: bOut, encoding: .utf8)
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0, "\(outA)\n----\n\(outB)")

        // Each sweep accounts for all 5 runs; together they trained each once.
        func counts(_ out: String) -> (trained: Int, elsewhere: Int)? {
            guard let line = out.split(separator: "\n").last(where: { $0.contains("5/5 runs finished (") }) else { return nil }
            let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            // "sweep smoke: 5/5 runs finished (T trained now, 0 before[, E elsewhere]), 0 failed, in …"
            return (numbers[2], line.contains("elsewhere") ? numbers[4] : 0)
        }
        let ca = try #require(counts(outA), "\(outA)"), cb = try #require(counts(outB), "\(outB)")
        #expect(ca.trained + ca.elsewhere == 5 && cb.trained + cb.elsewhere == 5, "\(outA)\n----\n\(outB)")
        #expect(ca.trained + cb.trained == 5, "\(outA)\n----\n\(outB)")
        #expect(!outA.contains("FAILED") && !outB.contains("FAILED"))

        let plan = try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/smoke.yaml")), resultsRoot: results)
        for r in plan.runs {
            let rec = try r.runDirectory.readRecord()
            #expect(rec.status == "finished" && rec.epochs.map(\.epoch) == Array(1...r.config.epochs), "\(r.label)")
            // Trained once: one line per epoch in the log, no resume.
            let log = try String(contentsOf: r.runDirectory.log, encoding: .utf8)
            let epochLines = log.split(separator: "\n").filter { $0.hasPrefix("epoch ") }
            #expect(epochLines.count == r.config.epochs && !log.contains("resumed"), "\(r.label): \(log)")
            #expect(SweepFailure.read(r.runDirectory) == nil)
            // The console is appended by both sweeps' children: every line whole, each header line intact.
            let console = try String(contentsOf: r.consoleURL, encoding: .utf8)
            for line in console.split(separator: "\n") where line.hasPrefix("#") {
                #expect(line.range(of: #"^# \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ sweep smoke: /.* train --config /.*/config\.json --output /.* --threads 1$"#,
                                   options: .regularExpression) != nil, "\(r.label): \(line)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: plan.runsDirectory.path).count == plan.runs.count)
    }
}
