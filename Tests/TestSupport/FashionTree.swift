import Foundation
import Testing

/// Runs /usr/bin/python3 with `arguments`; (status, stdout + stderr).
@discardableResult
public func runPython(_ arguments: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Fashion-MNIST written as a tiny-imagenet-200 tree of 64×64 RGB JPEGs by scripts/make_fashion_tiny_imagenet.py:
/// real images through the Tiny-ImageNet path (no Tiny-ImageNet exists on these machines).
public enum FashionTree {
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static let script = repository.appendingPathComponent("scripts/make_fashion_tiny_imagenet.py").path
    /// python3 with PIL and numpy (Debian's python3-pil, python3-numpy) and Debian's Fashion-MNIST.
    public static let available = runPython(["-c", "import PIL, numpy"]).status == 0
        && FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    public static let skipMessage: Comment = "needs python3-pil, python3-numpy and dataset-fashion-mnist (make deps-test)"

    /// Writes `<dir>/tiny-imagenet-200` (`train` / `val` images per class) and returns its path.
    public static func make(in dir: String, train: Int, val: Int, layout: String = "annotations", greyEvery: Int = 0,
                            sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = runPython([script, "--out", dir, "--train-per-class", "\(train)", "--val-per-class", "\(val)",
                           "--val-layout", layout, "--grayscale-every", "\(greyEvery)"])
        try #require(r.status == 0, "\(script) failed: \(r.output)", sourceLocation: sourceLocation)
        return (dir as NSString).appendingPathComponent("tiny-imagenet-200")
    }
}
