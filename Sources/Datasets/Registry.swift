import Foundation

/// Where datasets live: `<root>/cifar-10-batches-bin/`, `<root>/cifar-100-binary/`, `<root>/fashion-mnist/`,
/// `<root>/tiny-imagenet/` (prepared by `sqakd data prepare tiny-imagenet`).
public enum DataRoot {
    public static let environmentVariable = "SQAKD_DATA"

    /// Whether neither `root` nor $SQAKD_DATA names a root (only then may a dataset fall back to a system
    /// copy: a root the user named and that lacks the files is an error, not a silent fallback).
    public static func isDefault(_ root: String?) -> Bool {
        (root ?? "").isEmpty && (ProcessInfo.processInfo.environment[environmentVariable] ?? "").isEmpty
    }

    /// `root` when given, else $SQAKD_DATA when set and non-empty, else "./data".
    public static func resolve(_ root: String?) -> String {
        if let root, !root.isEmpty { return root }
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty { return env }
        return "./data"
    }
}

/// Static facts about a dataset kind.
public struct DatasetInfo: Equatable, Sendable {
    public let id: String
    public let name: String
    public let channels: Int
    public let height: Int
    public let width: Int
    public let classCount: Int
    /// Sizes of the official splits.
    public let trainCount: Int
    public let testCount: Int
    public let normalization: Normalization
    /// The reference's train transform for this kind (the test transform is always `.none`).
    public let trainAugmentation: Augmentation
    /// Where the files come from.
    public let source: String
}

/// The datasets the benchmark knows, by the id used in configs and on the command line.
public enum DatasetKind: String, CaseIterable, Codable, Sendable {
    case cifar10 = "cifar10"
    case cifar100 = "cifar100"
    /// Fashion-MNIST, cifar-style: 3×32×32 (zero-padded, grey replicated to 3 channels).
    case fashionMNIST = "fashion-mnist"
    /// Fashion-MNIST, 1×28×28 as stored.
    case fashionMNIST1ch = "fashion-mnist-1ch"
    /// Tiny-ImageNet, 3×64×64 stored, trained at `image_size` (default 224) through the reference's
    /// resized-crop pipelines; prepared packed files (`TinyImageNet`), class count from their manifest.
    case tinyImageNet = "tiny-imagenet"

    /// Parses an id; an unknown one throws with the list of known ids.
    public init(id: String) throws {
        guard let kind = DatasetKind(rawValue: id) else {
            throw DatasetError.invalidSetting("unknown dataset '\(id)'; known: "
                + DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = kind
    }

    public var info: DatasetInfo {
        switch self {
        case .cifar10:
            return DatasetInfo(id: rawValue, name: "CIFAR-10", channels: 3, height: 32, width: 32, classCount: 10,
                               trainCount: 50_000, testCount: 10_000, normalization: .cifar10,
                               trainAugmentation: .cifar,
                               source: "\(CIFAR.cifar10.archive) (MD5 \(CIFAR.cifar10.archiveMD5))")
        case .cifar100:
            return DatasetInfo(id: rawValue, name: "CIFAR-100", channels: 3, height: 32, width: 32, classCount: 100,
                               trainCount: 50_000, testCount: 10_000, normalization: .cifar100,
                               trainAugmentation: .cifar,
                               source: "\(CIFAR.cifar100.archive) (MD5 \(CIFAR.cifar100.archiveMD5))")
        case .fashionMNIST:
            return DatasetInfo(id: rawValue, name: "Fashion-MNIST (3×32×32)", channels: 3, height: 32, width: 32,
                               classCount: 10, trainCount: 60_000, testCount: 10_000,
                               normalization: .fashionMNISTCifarStyle, trainAugmentation: .cifar,
                               source: "Debian package dataset-fashion-mnist")
        case .fashionMNIST1ch:
            return DatasetInfo(id: rawValue, name: "Fashion-MNIST (1×28×28)", channels: 1, height: 28, width: 28,
                               classCount: 10, trainCount: 60_000, testCount: 10_000,
                               normalization: .fashionMNISTRaw, trainAugmentation: .cifar,
                               source: "Debian package dataset-fashion-mnist")
        case .tinyImageNet:
            return DatasetInfo(id: rawValue, name: "Tiny-ImageNet", channels: 3, height: TinyImageNet.side, width: TinyImageNet.side,
                               classCount: TinyImageNet.officialClasses, trainCount: 100_000, testCount: 10_000,
                               normalization: TinyImageNet.normalization,
                               trainAugmentation: .randomResizedCropFlip(size: defaultImageSize),
                               source: "\(TinyImageNet.downloadURL), prepared with `sqakd data prepare tiny-imagenet --from DIR`")
        }
    }

    /// The training resolution when `image_size` is absent: the stored size, except Tiny-ImageNet's 224
    /// (the paper's, reference §7).
    public var defaultImageSize: Int { self == .tinyImageNet ? 224 : info.height }

    /// Whether the pipelines resize (any `image_size`); other kinds train at their stored size only.
    public var isResizable: Bool { self == .tinyImageNet }

    /// The training transform at `imageSize` (nil: `defaultImageSize`); without `augment`, the evaluation one.
    public func trainTransform(imageSize: Int?, augment: Bool) -> Augmentation {
        guard augment else { return evaluationTransform(imageSize: imageSize) }
        return isResizable ? .randomResizedCropFlip(size: imageSize ?? defaultImageSize) : info.trainAugmentation
    }

    /// The evaluation transform at `imageSize`: Tiny-ImageNet resize + centre crop, else normalisation only.
    public func evaluationTransform(imageSize: Int?) -> Augmentation {
        isResizable ? .tinyImageNetEvaluation(imageSize: imageSize ?? defaultImageSize) : .none
    }

    private var cifarVariant: CIFAR.Variant? {
        switch self {
        case .cifar10: return CIFAR.cifar10
        case .cifar100: return CIFAR.cifar100
        case .fashionMNIST, .fashionMNIST1ch, .tinyImageNet: return nil
        }
    }

    /// The folder holding this kind's files. CIFAR: `<root>/<archive folder>`. Fashion-MNIST:
    /// `<root>/fashion-mnist`, else `<root>` itself if it holds the files; with no root given and no files
    /// under the default root, Debian's /usr/share/datasets/fashion-mnist.
    public func directory(root: String? = nil) -> String {
        if self == .tinyImageNet { return TinyImageNet.directory(root: root) }
        let resolved = DataRoot.resolve(root)
        if let variant = cifarVariant { return (resolved as NSString).appendingPathComponent(variant.folder) }
        let sub = (resolved as NSString).appendingPathComponent("fashion-mnist")
        let probe = FashionMNIST.files(.train).images
        if FashionMNIST.locate(probe, in: sub) != nil { return sub }
        if FashionMNIST.locate(probe, in: resolved) != nil { return resolved }
        if DataRoot.isDefault(root), FashionMNIST.locate(probe, in: FashionMNIST.debianDirectory) != nil {
            return FashionMNIST.debianDirectory
        }
        return sub
    }

    /// Reads one split. `root` as in `DataRoot.resolve`.
    public func load(root: String? = nil, split: Split) throws -> Dataset {
        switch self {
        case .cifar10, .cifar100:
            return try CIFAR.load(cifarVariant!, root: DataRoot.resolve(root), split: split)
        case .fashionMNIST:
            return try FashionMNIST.load(directory: directory(root: root), split: split, encoding: .cifarStyle)
        case .fashionMNIST1ch:
            return try FashionMNIST.load(directory: directory(root: root), split: split, encoding: .raw)
        case .tinyImageNet:
            return try TinyImageNet.load(root: root, split: split)
        }
    }

    /// Throws at once, without reading the data, when a dataset that has to be prepared is not (the
    /// one-line `.missingFiles` that says what to download and which command to run); others are checked
    /// when loaded.
    public func checkPrepared(root: String? = nil) throws {
        if self == .tinyImageNet { _ = try TinyImageNet.manifest(root: root) }
    }

    /// Which files exist and how big they are, without decoding them; with `checksums`, prepared data
    /// (Tiny-ImageNet) is also checked against its manifest's sha256.
    public func verify(root: String? = nil, checksums: Bool = false) -> DataVerification {
        if self == .tinyImageNet { return TinyImageNet.verify(root: root, checksums: checksums) }
        let dir = directory(root: root)
        var files = [DataFileStatus]()
        if let variant = cifarVariant {
            for split in Split.allCases {
                for name in variant.files(split) {
                    let path = (dir as NSString).appendingPathComponent(name)
                    // Official files: 5 × 10,000 CIFAR-10 train records, one 50,000 CIFAR-100 train file,
                    // 10,000 test records.
                    let officialRecords = variant.labelBytes == 1 ? 10_000 : (split == .train ? 50_000 : 10_000)
                    let size = FileIO.size(path)
                    var problem: String? = nil
                    if let size, size % variant.recordSize != 0 {
                        problem = "truncated or wrong-sized: not a multiple of the record size \(variant.recordSize)"
                    } else if let size, size != officialRecords * variant.recordSize {
                        problem = "\(size / variant.recordSize) records; the official file has \(officialRecords)"
                    }
                    files.append(DataFileStatus(split: split, name: name, path: size == nil ? nil : path, size: size,
                                                expectedSize: officialRecords * variant.recordSize, problem: problem))
                }
            }
            return DataVerification(kind: self, directory: dir, files: files, howToGet: variant.howToGet(root: DataRoot.resolve(root)))
        }
        for split in Split.allCases {
            let (images, labels) = FashionMNIST.files(split)
            let n = split == .train ? 60_000 : 10_000
            for (base, rawSize) in [(images, 16 + n * 784), (labels, 8 + n)] {
                let path = FashionMNIST.locate(base, in: dir)
                let size = path.flatMap(FileIO.size)
                // A .gz name holding plain IDX bytes is read as such (zlib passes it through).
                let recorded = path.flatMap(FileIO.gzipRecordedSize)
                let compressed = path == nil || recorded != nil
                var problem: String? = nil
                if let size, !compressed, size != rawSize { problem = "the official uncompressed file has \(rawSize) bytes" }
                if let recorded, recorded != UInt32(truncatingIfNeeded: rawSize) {
                    problem = "truncated or not the official file: its gzip trailer gives \(recorded) bytes uncompressed, the official file has \(rawSize)"
                }
                files.append(DataFileStatus(split: split, name: base + ".gz", path: path, size: size,
                                            expectedSize: compressed ? nil : rawSize, problem: problem))
            }
        }
        return DataVerification(kind: self, directory: dir, files: files, howToGet: FashionMNIST.howToGet(directory: dir))
    }
}

/// One expected file: where it was found (nil: missing) and what looks wrong with it.
public struct DataFileStatus: Equatable, Sendable {
    public let split: Split
    public let name: String
    public let path: String?
    public let size: Int?
    /// The official size, where it is known (CIFAR files, uncompressed IDX files).
    public let expectedSize: Int?
    public let problem: String?

    public var found: Bool { path != nil }
}

/// The result of `DatasetKind.verify`.
public struct DataVerification: Equatable, Sendable, CustomStringConvertible {
    public let kind: DatasetKind
    public let directory: String
    public let files: [DataFileStatus]
    public let howToGet: String

    /// Every expected file exists.
    public var complete: Bool { files.allSatisfy(\.found) }
    /// Every expected file exists and none looks wrong (size, gzip trailer).
    public var ok: Bool { complete && files.allSatisfy { $0.problem == nil } }
    public var missing: [DataFileStatus] { files.filter { !$0.found } }

    public var description: String {
        let problems = files.filter { $0.found && $0.problem != nil }.count
        var lines = ["\(kind.info.name) [\(kind.rawValue)] in \(directory): " + (complete ? "all files found" : "\(missing.count) missing")
                     + (problems > 0 ? ", \(problems) with problems" : "")]
        for f in files {
            if let path = f.path, let size = f.size {
                lines.append("  found    \(path) (\(size) bytes)" + (f.problem.map { ": \($0)" } ?? ""))
            } else {
                lines.append("  MISSING  \(f.name) (\(f.split.rawValue))")
            }
        }
        if !complete { lines.append(howToGet) }
        return lines.joined(separator: "\n")
    }
}
