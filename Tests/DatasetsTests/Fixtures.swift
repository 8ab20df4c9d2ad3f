import CZlib
import Foundation
@testable import Datasets

/// A fresh temporary directory, removed by `remove()`.
struct TempDir {
    let path: String

    init() {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("sqakd-datasets-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func sub(_ name: String) -> String {
        let p = (path as NSString).appendingPathComponent(name)
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func write(_ bytes: [UInt8], to path: String) {
    let ok = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    precondition(ok, "cannot write \(path)")
}

/// Writes `bytes` gzip-compressed by zlib.
func writeGzip(_ bytes: [UInt8], to path: String) {
    let gz = gzopen(path, "wb")!
    let written = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
    precondition(Int(written) == bytes.count, "gzwrite wrote \(written) of \(bytes.count)")
    gzclose(gz)
}

/// Pixel byte of synthetic image `i` at flat position `k` of its [C, H, W]: distinct enough to catch
/// swapped images, channels or rows.
func pixel(_ i: Int, _ k: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 37 &+ k &* 7 &+ k / 32) }

/// CIFAR records: `labels[r]` label bytes then 3072 pixels `pixel(first + r, k)`.
func cifarRecords(first: Int, labels: [[UInt8]]) -> [UInt8] {
    var out = [UInt8]()
    for (r, l) in labels.enumerated() {
        out += l
        out += (0..<3072).map { pixel(first + r, $0) }
    }
    return out
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

/// An IDX3 image file of n images `pixel(i, k)` of rows×cols.
func idxImages(n: Int, rows: Int = 28, cols: Int = 28, magic: UInt32 = 2051) -> [UInt8] {
    var out = bigEndian(magic) + bigEndian(UInt32(n)) + bigEndian(UInt32(rows)) + bigEndian(UInt32(cols))
    for i in 0..<n { out += (0..<(rows * cols)).map { pixel(i, $0) } }
    return out
}

func idxLabels(_ labels: [UInt8], magic: UInt32 = 2049) -> [UInt8] {
    bigEndian(magic) + bigEndian(UInt32(labels.count)) + labels
}

/// A complete synthetic CIFAR-10 tree under `root`: data_batch_1..5 with 3, 0, 2, 1, 1 records, test 2.
/// Train labels are (record number) % 10.
@discardableResult
func makeCIFAR10(root: TempDir) -> String {
    let dir = root.sub("cifar-10-batches-bin")
    var first = 0
    for (b, n) in [3, 0, 2, 1, 1].enumerated() {
        let labels = (0..<n).map { [UInt8((first + $0) % 10)] }
        write(cifarRecords(first: first, labels: labels), to: dir + "/data_batch_\(b + 1).bin")
        first += n
    }
    write(cifarRecords(first: 100, labels: [[9], [0]]), to: dir + "/test_batch.bin")
    return dir
}

/// Synthetic Fashion-MNIST IDX files in `dir`, train n images with labels i % 10, test 3 images.
func makeFashion(dir: String, trainCount n: Int = 5, gzip: Bool = true) {
    let put: ([UInt8], String) -> Void = { bytes, name in
        if gzip { writeGzip(bytes, to: dir + "/" + name + ".gz") } else { write(bytes, to: dir + "/" + name) }
    }
    put(idxImages(n: n), "train-images-idx3-ubyte")
    put(idxLabels((0..<n).map { UInt8($0 % 10) }), "train-labels-idx1-ubyte")
    put(idxImages(n: 3), "t10k-images-idx3-ubyte")
    put(idxLabels([7, 8, 9]), "t10k-labels-idx1-ubyte")
}

/// A dataset of n random-ish 3×32×32 images, labels i % 10.
func syntheticDataset(_ n: Int, channels: Int = 3, size: Int = 32) -> Dataset {
    let d = channels * size * size
    var images = [UInt8](repeating: 0, count: n * d)
    for i in 0..<n { for k in 0..<d { images[i * d + k] = pixel(i, k) } }
    let norm = channels == 3 ? Normalization.cifar10 : Normalization.fashionMNISTRaw
    return Dataset(name: "synthetic", channels: channels, height: size, width: size, images: images,
                   labels: (0..<n).map { Int32($0 % 10) }, classCount: 10, normalization: norm)
}

/// Throws-check helper: the error's message, or nil if `body` did not throw.
func errorMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return "\(error)"
    }
}
