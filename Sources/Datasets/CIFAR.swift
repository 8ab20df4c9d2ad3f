import Foundation

/// Readers for the official *binary* CIFAR archives (not the python-pickle ones torchvision downloads; the
/// pixels and labels are the same).
///
/// - CIFAR-10, `cifar-10-binary.tar.gz` → `cifar-10-batches-bin/data_batch_{1..5}.bin`, `test_batch.bin`:
///   records of 1 label byte + 3072 pixel bytes.
/// - CIFAR-100, `cifar-100-binary.tar.gz` → `cifar-100-binary/train.bin`, `test.bin`: records of 2 label
///   bytes (coarse 0..<20, then fine 0..<100) + 3072 pixel bytes.
///
/// Pixels are 3×32×32, channel-major (the 1024 red bytes, then green, then blue, each row-major), which is
/// already the [C, H, W] order of `Dataset.images`. Files may hold any number of records.
public enum CIFAR {
    public static let pixelBytes = 3 * 32 * 32

    public struct Variant: Sendable {
        /// Registry id, e.g. "cifar10".
        public let id: String
        public let name: String
        /// Folder the archive extracts to, under the data root.
        public let folder: String
        public let archive: String
        public let archiveMD5: String
        public let trainFiles: [String]
        public let testFiles: [String]
        /// 1 (label) or 2 (coarse, fine).
        public let labelBytes: Int
        public let classCount: Int
        public let coarseClassCount: Int?
        public let normalization: Normalization

        public var recordSize: Int { labelBytes + CIFAR.pixelBytes }
        public func files(_ split: Split) -> [String] { split == .train ? trainFiles : testFiles }

        /// What to do when files are missing.
        public func howToGet(root: String) -> String {
            "Download \(archive) (MD5 \(archiveMD5)) from https://www.cs.toronto.edu/~kriz/cifar.html and "
                + "extract it under the data root \(root) (`tar xzf \(archive) -C \(root)` creates \(folder)/). "
                + "The data root is the --data-root option, else $\(DataRoot.environmentVariable), else ./data."
        }
    }

    public static let cifar10 = Variant(
        id: "cifar10", name: "CIFAR-10", folder: "cifar-10-batches-bin", archive: "cifar-10-binary.tar.gz",
        archiveMD5: "c32a1d4ab5d03f1284b67883e8d87530",
        trainFiles: (1...5).map { "data_batch_\($0).bin" }, testFiles: ["test_batch.bin"],
        labelBytes: 1, classCount: 10, coarseClassCount: nil, normalization: .cifar10)

    public static let cifar100 = Variant(
        id: "cifar100", name: "CIFAR-100", folder: "cifar-100-binary", archive: "cifar-100-binary.tar.gz",
        archiveMD5: "03b5dce01913d631647c71ecec9e9cb8",
        trainFiles: ["train.bin"], testFiles: ["test.bin"],
        labelBytes: 2, classCount: 100, coarseClassCount: 20, normalization: .cifar100)

    /// Reads `split` of `variant` from `<root>/<variant.folder>/`.
    /// Throws `.missingFiles` (before reading anything), `.wrongSize`, `.labelOutOfRange`, `.unreadable`.
    public static func load(_ variant: Variant, root: String, split: Split) throws -> Dataset {
        let directory = (root as NSString).appendingPathComponent(variant.folder)
        let paths = variant.files(split).map { (directory as NSString).appendingPathComponent($0) }
        let missing = paths.filter { !FileIO.exists($0) }
        if !missing.isEmpty {
            throw DatasetError.missingFiles(dataset: "\(variant.name) \(split.rawValue)", directory: directory,
                                            expected: variant.files(split), missing: missing,
                                            howToGet: variant.howToGet(root: root))
        }
        let record = variant.recordSize
        var total = 0
        for path in paths {
            let size = FileIO.size(path) ?? 0
            if size % record != 0 { throw DatasetError.wrongSize(file: path, size: size, recordSize: record) }
            total += size / record
        }

        var images = [UInt8](repeating: 0, count: total * pixelBytes)
        var labels = [Int32](repeating: 0, count: total)
        var coarse = [Int32](repeating: 0, count: variant.labelBytes == 2 ? total : 0)
        var n = 0
        for path in paths {
            let bytes = try FileIO.read(path)
            if bytes.count % record != 0 { throw DatasetError.wrongSize(file: path, size: bytes.count, recordSize: record) }
            let records = bytes.count / record
            try bytes.withUnsafeBufferPointer { src in
                try images.withUnsafeMutableBufferPointer { dst in
                    for r in 0..<records {
                        let base = src.baseAddress! + r * record
                        let fine = Int(base[variant.labelBytes - 1])
                        guard fine < variant.classCount else {
                            throw DatasetError.labelOutOfRange(file: path, record: r, label: fine, classCount: variant.classCount)
                        }
                        labels[n + r] = Int32(fine)
                        if variant.labelBytes == 2, let coarseCount = variant.coarseClassCount {
                            let c = Int(base[0])
                            guard c < coarseCount else {
                                throw DatasetError.labelOutOfRange(file: path, record: r, label: c, classCount: coarseCount)
                            }
                            coarse[n + r] = Int32(c)
                        }
                        (dst.baseAddress! + (n + r) * pixelBytes).update(from: base + variant.labelBytes, count: pixelBytes)
                    }
                }
            }
            n += records
        }
        return Dataset(name: "\(variant.id)-\(split.rawValue)", channels: 3, height: 32, width: 32, images: images,
                       labels: labels, classCount: variant.classCount,
                       coarseLabels: variant.labelBytes == 2 ? coarse : nil,
                       coarseClassCount: variant.coarseClassCount, normalization: variant.normalization)
    }
}
