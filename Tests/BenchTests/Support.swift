import Foundation
@testable import Bench
@testable import Training

/// The repository root (suites/ lives there).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A fresh temporary directory.
func tempDir(_ tag: String) -> URL {
    let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("sqakd-bench-\(tag)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

func writeText(_ text: String, _ url: URL) {
    try! FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try! text.write(to: url, atomically: true, encoding: .utf8)
}

/// The `sqakd` executable built beside the test bundle.
func sqakdExecutable() -> URL {
    let here = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    for dir in [here, here.deletingLastPathComponent(), repoRoot.appendingPathComponent(".build/release"),
                repoRoot.appendingPathComponent(".build/debug")] {
        let u = dir.appendingPathComponent("sqakd")
        if FileManager.default.isExecutableFile(atPath: u.path) { return u }
    }
    return here.appendingPathComponent("sqakd")
}

struct CommandResult {
    var status: Int32
    var output: String
}

/// Runs `sqakd args…` in the repository root (with `environment` added to this process's) and returns its
/// exit status and combined output.
@discardableResult
func sqakd(_ args: [String], cwd: URL = repoRoot, environment: [String: String] = [:]) throws -> CommandResult {
    try command(sqakdExecutable(), args, cwd: cwd, environment: environment)
}

/// Runs `executable args…` and returns its exit status and combined output (through a file, so a daemon
/// it leaves behind cannot hold a pipe open).
@discardableResult
func command(_ executable: URL, _ args: [String], cwd: URL = repoRoot, environment: [String: String] = [:]) throws -> CommandResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    p.currentDirectoryURL = cwd
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let out = tempDir("out").appendingPathComponent("console.txt")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    let h = try FileHandle(forWritingTo: out)
    p.standardOutput = h
    p.standardError = h
    try p.run()
    p.waitUntilExit()
    try h.close()
    return CommandResult(status: p.terminationStatus, output: (try? String(contentsOf: out, encoding: .utf8)) ?? "")
}

/// A finished run record for `run` whose test top-1 per epoch is `curve`.
func syntheticRecord(_ run: PlannedRun, curve: [Double]) -> RunRecord {
    let epochs = curve.enumerated().map { e, acc in
        EpochMetrics(epoch: e + 1, lr: 0.1, trainLoss: 1.0 / Double(e + 1), trainTop1: acc - 1, testLoss: 0.5, testTop1: acc,
                     testTop5: 99, seconds: 60, imagesPerSecond: 500)
    }
    let best = curve.enumerated().max { $0.element < $1.element }!
    return RunRecord(runID: run.id, status: "finished", failure: nil, config: run.config, system: SystemInfo.current(),
                     parameterCount: 1000, epochs: epochs, bestTop1: best.element, bestEpoch: best.offset + 1, lastTop1: curve.last!,
                     wallSeconds: 60 * Double(curve.count), startedAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:00Z")
}

/// Writes synthetic CIFAR-10 binaries (data_batch_1…5 with `perBatch` records each, test_batch with
/// `test` records) under `root`/cifar-10-batches-bin; labels cycle over the classes.
func makeCIFAR10(root: URL, perBatch: Int = 60, test: Int = 50) {
    let dir = root.appendingPathComponent("cifar-10-batches-bin")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    func records(_ n: Int, offset: Int) -> Data {
        var d = Data(capacity: n * 3073)
        for i in 0..<n {
            let label = (i + offset) % 10
            d.append(UInt8(label))
            // A class-dependent colour plus texture, so a model can learn something.
            for c in 0..<3 { for k in 0..<1024 { d.append(UInt8(truncatingIfNeeded: label * 23 + c * 50 + (k * (label + 1)) % 40)) } }
        }
        return d
    }
    for b in 1...5 { try! records(perBatch, offset: b).write(to: dir.appendingPathComponent("data_batch_\(b).bin")) }
    try! records(test, offset: 0).write(to: dir.appendingPathComponent("test_batch.bin"))
}

/// Writes synthetic CIFAR-100 binaries (train.bin with `train` records, test.bin with `test`) under
/// `root`/cifar-100-binary: coarse label, fine label (cycling over the 100 classes), 3072 class-dependent pixels.
func makeCIFAR100(root: URL, train: Int = 300, test: Int = 50) {
    let dir = root.appendingPathComponent("cifar-100-binary")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    func records(_ n: Int, offset: Int) -> Data {
        var d = Data(capacity: n * 3074)
        for i in 0..<n {
            let label = (i + offset) % 100
            d.append(UInt8(label / 5))
            d.append(UInt8(label))
            for c in 0..<3 { for k in 0..<1024 { d.append(UInt8(truncatingIfNeeded: label * 7 + c * 50 + (k * (label % 10 + 1)) % 40)) } }
        }
        return d
    }
    try! records(train, offset: 1).write(to: dir.appendingPathComponent("train.bin"))
    try! records(test, offset: 0).write(to: dir.appendingPathComponent("test.bin"))
}
