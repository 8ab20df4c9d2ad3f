import Foundation

/// The IDX format (LeCun's MNIST files): a big-endian header, then unsigned bytes.
/// - images: magic 2051 (0x00000803: ubyte, 3 dims), count, rows, cols, then count·rows·cols pixels.
/// - labels: magic 2049 (0x00000801: ubyte, 1 dim), count, then count labels.
public enum IDX {
    public static let imageMagic: UInt32 = 2051
    public static let labelMagic: UInt32 = 2049

    /// Images of an IDX3 ubyte file: [count, rows, cols] pixels, row-major.
    public static func parseImages(_ bytes: [UInt8], file: String) throws -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        try checkHeader(bytes, file: file, magic: imageMagic, headerSize: 16)
        let n = Int(word(bytes, 4)), rows = Int(word(bytes, 8)), cols = Int(word(bytes, 12))
        guard rows > 0, cols > 0 else {
            throw DatasetError.badHeader(file: file, reason: "image dimensions \(rows)×\(cols)")
        }
        let payload = bytes.count - 16
        // The header's dimensions are 32-bit each; their product can overflow Int, so multiply checked.
        let (area, o1) = rows.multipliedReportingOverflow(by: cols)
        let (total, o2) = n.multipliedReportingOverflow(by: area)
        guard !o1, !o2, payload == total else {
            throw DatasetError.badHeader(file: file, reason: "truncated or wrong-sized: the header says \(n) images of "
                + "\(rows)×\(cols) = \(o1 || o2 ? "more than 2^63" : String(total)) bytes, the file holds \(payload) bytes after the 16-byte header")
        }
        return (n, rows, cols, Array(bytes[16...]))
    }

    /// Labels of an IDX1 ubyte file.
    public static func parseLabels(_ bytes: [UInt8], file: String) throws -> [UInt8] {
        try checkHeader(bytes, file: file, magic: labelMagic, headerSize: 8)
        let n = Int(word(bytes, 4))
        let payload = bytes.count - 8
        guard payload == n else {
            throw DatasetError.badHeader(file: file, reason: "truncated or wrong-sized: the header says \(n) labels, "
                + "the file holds \(payload) bytes after the 8-byte header")
        }
        return Array(bytes[8...])
    }

    private static func checkHeader(_ bytes: [UInt8], file: String, magic: UInt32, headerSize: Int) throws {
        guard bytes.count >= 4 else {
            throw DatasetError.badHeader(file: file, reason: "only \(bytes.count) bytes, shorter than the \(headerSize)-byte header")
        }
        let found = word(bytes, 0)
        guard found == magic else { throw DatasetError.badMagic(file: file, found: found, expected: magic) }
        guard bytes.count >= headerSize else {
            throw DatasetError.badHeader(file: file, reason: "only \(bytes.count) bytes, shorter than the \(headerSize)-byte header")
        }
    }

    private static func word(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
}

/// Fashion-MNIST (Zalando): 60,000 train and 10,000 test 28×28 grey images, 10 classes, in IDX files,
/// gzip-compressed (`train-images-idx3-ubyte.gz`, …) or not (the same names without `.gz`).
public enum FashionMNIST {
    /// How the 28×28 grey images are presented to a model.
    public enum Encoding: String, Codable, Sendable {
        /// 3×32×32: zero-padded by 2 pixels on every side and replicated to 3 channels, so CIFAR models
        /// (ResNet-20 on 3-channel 32×32) run unchanged. Our experiments use this.
        case cifarStyle
        /// 1×28×28, the pixels as stored.
        case raw

        public var normalization: Normalization { self == .cifarStyle ? .fashionMNISTCifarStyle : .fashionMNISTRaw }
    }

    public static let classCount = 10
    public static let debianDirectory = "/usr/share/datasets/fashion-mnist"

    /// The IDX base names (without `.gz`) of a split: (images, labels).
    public static func files(_ split: Split) -> (images: String, labels: String) {
        let prefix = split == .train ? "train" : "t10k"
        return ("\(prefix)-images-idx3-ubyte", "\(prefix)-labels-idx1-ubyte")
    }

    /// The path of `base.gz` in `directory`, else of `base`, else nil.
    public static func locate(_ base: String, in directory: String) -> String? {
        for name in [base + ".gz", base] {
            let path = (directory as NSString).appendingPathComponent(name)
            if FileIO.exists(path) { return path }
        }
        return nil
    }

    public static func howToGet(directory: String) -> String {
        "Install Debian's dataset-fashion-mnist package (`apt-get install dataset-fashion-mnist`; it puts the "
            + "four .gz files in \(debianDirectory)), or put the IDX files (gzip-compressed or not) in \(directory). "
            + "The data root is the --data-root option, else $\(DataRoot.environmentVariable), else ./data; "
            + "Fashion-MNIST is read from <root>/fashion-mnist, falling back to \(debianDirectory) when no root is given."
    }

    /// Reads `split` from `directory` (which holds the IDX files directly).
    /// Throws `.missingFiles`, `.badMagic`, `.badHeader`, `.countMismatch`, `.labelOutOfRange`, `.unreadable`.
    public static func load(directory: String, split: Split, encoding: Encoding) throws -> Dataset {
        let (imageBase, labelBase) = files(split)
        let imagePath = locate(imageBase, in: directory), labelPath = locate(labelBase, in: directory)
        guard let imagePath, let labelPath else {
            let missing = [(imageBase, imagePath), (labelBase, labelPath)].filter { $0.1 == nil }
                .map { (directory as NSString).appendingPathComponent($0.0 + "[.gz]") }
            throw DatasetError.missingFiles(dataset: "Fashion-MNIST \(split.rawValue)", directory: directory,
                                            expected: [imageBase + ".gz", labelBase + ".gz"], missing: missing,
                                            howToGet: howToGet(directory: directory))
        }
        let images = try IDX.parseImages(try FileIO.readGzip(imagePath), file: imagePath)
        let labelBytes = try IDX.parseLabels(try FileIO.readGzip(labelPath), file: labelPath)
        guard images.rows == 28, images.cols == 28 else {
            throw DatasetError.badHeader(file: imagePath, reason: "Fashion-MNIST images are 28×28, this file's are \(images.rows)×\(images.cols)")
        }
        guard images.count == labelBytes.count else {
            throw DatasetError.countMismatch(images: imagePath, imageCount: images.count, labels: labelPath, labelCount: labelBytes.count)
        }
        var labels = [Int32](repeating: 0, count: labelBytes.count)
        for (i, l) in labelBytes.enumerated() {
            guard Int(l) < classCount else {
                throw DatasetError.labelOutOfRange(file: labelPath, record: i, label: Int(l), classCount: classCount)
            }
            labels[i] = Int32(l)
        }
        switch encoding {
        case .raw:
            return Dataset(name: "fashion-mnist-1ch-\(split.rawValue)", channels: 1, height: 28, width: 28,
                           images: images.pixels, labels: labels, classCount: classCount,
                           normalization: encoding.normalization)
        case .cifarStyle:
            return Dataset(name: "fashion-mnist-\(split.rawValue)", channels: 3, height: 32, width: 32,
                           images: padAndReplicate(images.pixels, count: images.count), labels: labels,
                           classCount: classCount, normalization: encoding.normalization)
        }
    }

    /// [n, 28, 28] → [n, 3, 32, 32]: out[i, c, y + 2, x + 2] = raw[i, y, x] for every c; the border is 0.
    public static func padAndReplicate(_ raw: [UInt8], count n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n * 3 * 32 * 32)
        raw.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    for c in 0..<3 {
                        for y in 0..<28 {
                            (dst.baseAddress! + ((i * 3 + c) * 32 + y + 2) * 32 + 2)
                                .update(from: src.baseAddress! + (i * 28 + y) * 28, count: 28)
                        }
                    }
                }
            }
        }
        return out
    }
}
