import Foundation

/// Everything that can be wrong with data on disk. Messages name the file and say what was expected, so a
/// user can fix the problem without reading the code.
public enum DatasetError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// Files a split needs are absent. `expected` lists every file the split reads; `missing` the absent ones
    /// (full paths); `howToGet` says where the data comes from and where to put it.
    case missingFiles(dataset: String, directory: String, expected: [String], missing: [String], howToGet: String)
    /// A fixed-record file (CIFAR binary) whose size is not a whole number of records.
    case wrongSize(file: String, size: Int, recordSize: Int)
    /// An IDX file whose magic number is not the one for its kind (2051 images, 2049 labels).
    case badMagic(file: String, found: UInt32, expected: UInt32)
    /// An IDX file whose header or size is inconsistent (dimensions, payload length).
    case badHeader(file: String, reason: String)
    /// Image and label files that disagree on the number of items.
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    /// A label byte outside 0..<classCount.
    case labelOutOfRange(file: String, record: Int, label: Int, classCount: Int)
    /// An I/O or decompression failure.
    case unreadable(file: String, reason: String)
    /// A file or folder of a dataset tree that is missing or wrong (Tiny-ImageNet preparation):
    /// "<path>: <reason>".
    case badTree(path: String, reason: String)
    /// A loader setting that cannot work (e.g. a batch size below 1).
    case invalidSetting(String)

    public var description: String {
        switch self {
        case let .missingFiles(dataset, directory, expected, missing, howToGet):
            return "\(dataset): missing \(missing.count) of \(expected.count) file(s) in \(directory): "
                + missing.joined(separator: ", ") + ". Expected: " + expected.joined(separator: ", ")
                + ". " + howToGet
        case let .wrongSize(file, size, recordSize):
            let remainder = size % max(recordSize, 1)
            return "\(file): truncated or wrong-sized: \(size) bytes is not a multiple of the record size "
                + "\(recordSize) (\(size / max(recordSize, 1)) whole records + \(remainder) bytes)"
        case let .badMagic(file, found, expected):
            return "\(file): wrong IDX magic number \(found) (expected \(expected)); not an IDX "
                + (expected == IDX.imageMagic ? "image" : "label") + " file, or a damaged one"
        case let .badHeader(file, reason):
            return "\(file): bad IDX file: \(reason)"
        case let .countMismatch(images, imageCount, labels, labelCount):
            return "\(images) holds \(imageCount) images but \(labels) holds \(labelCount) labels"
        case let .labelOutOfRange(file, record, label, classCount):
            return "\(file): record \(record) has label \(label), outside 0..<\(classCount)"
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .badTree(path, reason):
            return "\(path): \(reason)"
        case let .invalidSetting(message):
            return message
        }
    }

    public var errorDescription: String? { description }
}
