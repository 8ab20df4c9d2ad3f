import Foundation
import Testing
@testable import Datasets

@Suite struct CIFARReaderTests {
    @Test func cifar10DecodesAllTrainFilesInOrder() throws {
        let root = TempDir()
        defer { root.remove() }
        makeCIFAR10(root: root)
        let train = try DatasetKind.cifar10.load(root: root.path, split: .train)
        #expect(train.count == 7)
        #expect(train.channels == 3 && train.height == 32 && train.width == 32)
        #expect(train.labels == (0..<7).map { Int32($0 % 10) })
        #expect(train.coarseLabels == nil)
        #expect(train.classCount == 10)
        #expect(train.normalization == .cifar10)
        #expect(train.name == "cifar10-train")
        for i in 0..<7 { #expect(Array(train.image(i)) == (0..<3072).map { pixel(i, $0) }) }

        let test = try DatasetKind.cifar10.load(root: root.path, split: .test)
        #expect(test.labels == [9, 0])
        #expect(Array(test.image(1)) == (0..<3072).map { pixel(101, $0) })
    }

    @Test func cifar100DecodesCoarseThenFine() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = root.sub("cifar-100-binary")
        write(cifarRecords(first: 0, labels: [[19, 99], [0, 5], [3, 42]]), to: dir + "/train.bin")
        write(cifarRecords(first: 50, labels: [[7, 1]]), to: dir + "/test.bin")
        let train = try DatasetKind.cifar100.load(root: root.path, split: .train)
        #expect(train.labels == [99, 5, 42])
        #expect(train.coarseLabels == [19, 0, 3])
        #expect(train.classCount == 100 && train.coarseClassCount == 20)
        #expect(train.normalization == .cifar100)
        #expect(Array(train.image(2)) == (0..<3072).map { pixel(2, $0) })
        let test = try DatasetKind.cifar100.load(root: root.path, split: .test)
        #expect(test.labels == [1] && test.coarseLabels == [7])
        #expect(Array(test.image(0)) == (0..<3072).map { pixel(50, $0) })
    }

    @Test func truncatedFileNamesFileSizeAndRecordSize() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = makeCIFAR10(root: root)
        let path = dir + "/data_batch_3.bin"
        write(Array(cifarRecords(first: 0, labels: [[1], [2]]).dropLast(5)), to: path)
        let message = errorMessage { _ = try DatasetKind.cifar10.load(root: root.path, split: .train) }
        #expect(message?.contains(path) == true)
        #expect(message?.contains("truncated or wrong-sized") == true)
        #expect(message?.contains("\(2 * 3073 - 5) bytes") == true)
        #expect(message?.contains("3073") == true)
        // The test split does not read the damaged file.
        #expect(throws: Never.self) { try DatasetKind.cifar10.load(root: root.path, split: .test) }
    }

    @Test func missingFilesListPathsArchiveAndMD5() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = makeCIFAR10(root: root)
        try FileManager.default.removeItem(atPath: dir + "/data_batch_4.bin")
        let error = #expect(throws: DatasetError.self) { try DatasetKind.cifar10.load(root: root.path, split: .train) }
        guard case let .missingFiles(_, directory, expected, missing, _) = error else {
            Issue.record("expected missingFiles, got \(String(describing: error))")
            return
        }
        #expect(directory == dir)
        #expect(missing == [dir + "/data_batch_4.bin"])
        #expect(expected == (1...5).map { "data_batch_\($0).bin" })
        let message = "\(error!)"
        #expect(message.contains(dir + "/data_batch_4.bin"))
        #expect(message.contains("cifar-10-binary.tar.gz"))
        #expect(message.contains("c32a1d4ab5d03f1284b67883e8d87530"))
        #expect(message.contains("extract it under the data root \(root.path)"))

        let empty = TempDir()
        defer { empty.remove() }
        let m100 = errorMessage { _ = try DatasetKind.cifar100.load(root: empty.path, split: .test) }
        #expect(m100?.contains(empty.path + "/cifar-100-binary/test.bin") == true)
        #expect(m100?.contains("cifar-100-binary.tar.gz") == true)
        #expect(m100?.contains("03b5dce01913d631647c71ecec9e9cb8") == true)
    }

    @Test func labelOutOfRangeThrows() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = makeCIFAR10(root: root)
        write(cifarRecords(first: 0, labels: [[3], [10]]), to: dir + "/test_batch.bin")
        let e10 = #expect(throws: DatasetError.self) { try DatasetKind.cifar10.load(root: root.path, split: .test) }
        #expect(e10 == .labelOutOfRange(file: dir + "/test_batch.bin", record: 1, label: 10, classCount: 10))

        let d100 = root.sub("cifar-100-binary")
        write(cifarRecords(first: 0, labels: [[20, 1]]), to: d100 + "/test.bin")
        let coarse = #expect(throws: DatasetError.self) { try DatasetKind.cifar100.load(root: root.path, split: .test) }
        #expect(coarse == .labelOutOfRange(file: d100 + "/test.bin", record: 0, label: 20, classCount: 20))
        write(cifarRecords(first: 0, labels: [[2, 100]]), to: d100 + "/test.bin")
        let fine = #expect(throws: DatasetError.self) { try DatasetKind.cifar100.load(root: root.path, split: .test) }
        #expect(fine == .labelOutOfRange(file: d100 + "/test.bin", record: 0, label: 100, classCount: 100))
    }

    @Test func emptyFilesAreValid() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = root.sub("cifar-10-batches-bin")
        write([], to: dir + "/test_batch.bin")
        let test = try DatasetKind.cifar10.load(root: root.path, split: .test)
        #expect(test.count == 0)
    }
}

@Suite struct FashionMNISTReaderTests {
    @Test(arguments: [true, false])
    func decodesGzipAndRawFilesInBothEncodings(gzip: Bool) throws {
        let root = TempDir()
        defer { root.remove() }
        makeFashion(dir: root.sub("fashion-mnist"), trainCount: 5, gzip: gzip)

        let raw = try DatasetKind.fashionMNIST1ch.load(root: root.path, split: .train)
        #expect(raw.count == 5 && raw.channels == 1 && raw.height == 28 && raw.width == 28)
        #expect(raw.labels == [0, 1, 2, 3, 4])
        #expect(raw.normalization == .fashionMNISTRaw)
        for i in 0..<5 { #expect(Array(raw.image(i)) == (0..<784).map { pixel(i, $0) }) }

        let padded = try DatasetKind.fashionMNIST.load(root: root.path, split: .train)
        #expect(padded.count == 5 && padded.channels == 3 && padded.height == 32 && padded.width == 32)
        #expect(padded.normalization == .fashionMNISTCifarStyle)
        for i in 0..<5 {
            let img = Array(padded.image(i))
            for c in 0..<3 {
                for y in 0..<32 {
                    for x in 0..<32 {
                        let inside = (2..<30).contains(y) && (2..<30).contains(x)
                        let expected = inside ? pixel(i, (y - 2) * 28 + x - 2) : 0
                        if img[(c * 32 + y) * 32 + x] != expected {
                            Issue.record("image \(i) c\(c) (\(y), \(x)): \(img[(c * 32 + y) * 32 + x]) != \(expected)")
                            return
                        }
                    }
                }
            }
        }
        let test = try DatasetKind.fashionMNIST.load(root: root.path, split: .test)
        #expect(test.labels == [7, 8, 9])
    }

    @Test func wrongMagicNamesFileAndNumbers() throws {
        let dir = TempDir()
        defer { dir.remove() }
        makeFashion(dir: dir.path)
        let images = dir.path + "/train-images-idx3-ubyte.gz"
        writeGzip(idxImages(n: 5, magic: 2049), to: images)
        let e = #expect(throws: DatasetError.self) {
            try FashionMNIST.load(directory: dir.path, split: .train, encoding: .raw)
        }
        #expect(e == .badMagic(file: images, found: 2049, expected: 2051))
        #expect("\(e!)".contains(images))

        makeFashion(dir: dir.path)
        let labels = dir.path + "/train-labels-idx1-ubyte.gz"
        writeGzip(idxLabels([1, 2, 3, 4, 5], magic: 2051), to: labels)
        let l = #expect(throws: DatasetError.self) {
            try FashionMNIST.load(directory: dir.path, split: .train, encoding: .raw)
        }
        #expect(l == .badMagic(file: labels, found: 2051, expected: 2049))
    }

    @Test func countMismatchBetweenImagesAndLabels() throws {
        let dir = TempDir()
        defer { dir.remove() }
        makeFashion(dir: dir.path, trainCount: 5)
        writeGzip(idxLabels([1, 2, 3, 4]), to: dir.path + "/train-labels-idx1-ubyte.gz")
        let e = #expect(throws: DatasetError.self) {
            try FashionMNIST.load(directory: dir.path, split: .train, encoding: .cifarStyle)
        }
        #expect(e == .countMismatch(images: dir.path + "/train-images-idx3-ubyte.gz", imageCount: 5,
                                    labels: dir.path + "/train-labels-idx1-ubyte.gz", labelCount: 4))
    }

    @Test func truncatedAndWrongSizedIDXFiles() throws {
        let dir = TempDir()
        defer { dir.remove() }
        makeFashion(dir: dir.path, trainCount: 5, gzip: false)
        let images = dir.path + "/train-images-idx3-ubyte"
        // Payload one image short of what the header says.
        write(Array(idxImages(n: 5).dropLast(784)), to: images)
        let short = errorMessage { _ = try FashionMNIST.load(directory: dir.path, split: .train, encoding: .raw) }
        #expect(short?.contains(images) == true)
        #expect(short?.contains("truncated or wrong-sized") == true)
        #expect(short?.contains("5 images of 28×28") == true)
        // Shorter than the header.
        write([0, 0, 8, 3, 0], to: images)
        let header = errorMessage { _ = try FashionMNIST.load(directory: dir.path, split: .train, encoding: .raw) }
        #expect(header?.contains("shorter than the 16-byte header") == true)
        // Not 28×28.
        write(idxImages(n: 5, rows: 27, cols: 28), to: images)
        let dims = errorMessage { _ = try FashionMNIST.load(directory: dir.path, split: .train, encoding: .raw) }
        #expect(dims?.contains("27×28") == true)
        // A gzip stream cut short: zlib reports it, the error names the file.
        try FileManager.default.removeItem(atPath: images)
        let gz = images + ".gz"
        writeGzip(idxImages(n: 5), to: gz)
        let whole = try Data(contentsOf: URL(fileURLWithPath: gz))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: gz))
        let cut = errorMessage { _ = try FashionMNIST.load(directory: dir.path, split: .train, encoding: .raw) }
        #expect(cut?.contains(gz) == true)
    }

    @Test func labelOutOfRangeAndMissingFiles() throws {
        let dir = TempDir()
        defer { dir.remove() }
        makeFashion(dir: dir.path, trainCount: 5)
        let labels = dir.path + "/t10k-labels-idx1-ubyte.gz"
        writeGzip(idxLabels([1, 10, 3]), to: labels)
        let e = #expect(throws: DatasetError.self) { try FashionMNIST.load(directory: dir.path, split: .test, encoding: .raw) }
        #expect(e == .labelOutOfRange(file: labels, record: 1, label: 10, classCount: 10))

        try FileManager.default.removeItem(atPath: labels)
        let missing = errorMessage { _ = try FashionMNIST.load(directory: dir.path, split: .test, encoding: .raw) }
        #expect(missing?.contains(dir.path + "/t10k-labels-idx1-ubyte") == true)
        #expect(missing?.contains("dataset-fashion-mnist") == true)
        #expect(missing?.contains("t10k-images") == true)
    }

    static let debianFilesPresent = FashionMNIST.locate("train-images-idx3-ubyte", in: FashionMNIST.debianDirectory) != nil
        && FashionMNIST.locate("t10k-labels-idx1-ubyte", in: FashionMNIST.debianDirectory) != nil

    @Test(.enabled(if: debianFilesPresent, "Debian package dataset-fashion-mnist is not installed"))
    func realDebianFiles() throws {
        let train = try FashionMNIST.load(directory: FashionMNIST.debianDirectory, split: .train, encoding: .raw)
        let test = try FashionMNIST.load(directory: FashionMNIST.debianDirectory, split: .test, encoding: .cifarStyle)
        #expect(train.count == 60_000)
        #expect(test.count == 10_000)
        #expect(train.labels.allSatisfy { (0..<10).contains($0) })
        #expect(test.labels.allSatisfy { (0..<10).contains($0) })
        #expect(Set(train.labels).count == 10)
        // Each class has 6,000 training images.
        #expect(Dictionary(grouping: train.labels, by: { $0 }).values.allSatisfy { $0.count == 6_000 })
        // The hard-coded normalisation matches the data (population statistics of pixels / 255).
        var sum = 0.0, sumSq = 0.0
        for v in train.images { let x = Double(v) / 255; sum += x; sumSq += x * x }
        let n = Double(train.images.count), mean = sum / n
        let std = (sumSq / n - mean * mean).squareRoot()
        #expect(abs(mean - 0.2860) < 5e-5 && abs(std - 0.3530) < 5e-5)
        let padN = n * 1024 / 784, padMean = sum / padN, padStd = (sumSq / padN - padMean * padMean).squareRoot()
        #expect(abs(padMean - 0.2190) < 5e-5 && abs(padStd - 0.3318) < 5e-5)
    }
}

@Suite struct RegistryTests {
    @Test func idsParseAndUnknownIdsThrow() throws {
        #expect(try DatasetKind(id: "fashion-mnist") == .fashionMNIST)
        #expect(try DatasetKind(id: "fashion-mnist-1ch") == .fashionMNIST1ch)
        #expect(try DatasetKind(id: "cifar100") == .cifar100)
        let message = errorMessage { _ = try DatasetKind(id: "cifar1000") }
        #expect(message?.contains("cifar10, cifar100, fashion-mnist, fashion-mnist-1ch") == true)
        #expect(DatasetKind.fashionMNIST1ch.info.channels == 1)
        #expect(DatasetKind.cifar100.info.classCount == 100)
    }

    @Test func verifyListsFoundAndMissingFiles() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = makeCIFAR10(root: root)
        try FileManager.default.removeItem(atPath: dir + "/test_batch.bin")
        let report = DatasetKind.cifar10.verify(root: root.path)
        #expect(report.directory == dir)
        #expect(!report.complete)
        #expect(report.missing.map(\.name) == ["test_batch.bin"])
        let first = report.files[0]
        #expect(first.name == "data_batch_1.bin" && first.size == 3 * 3073 && first.expectedSize == 30_730_000)
        #expect(first.problem == "3 records; the official file has 10000")
        let text = report.description
        #expect(text.contains("MISSING  test_batch.bin"))
        #expect(text.contains(dir + "/data_batch_1.bin (9219 bytes)"))
        #expect(text.contains("cifar-10-binary.tar.gz"))

        makeFashion(dir: root.sub("fashion-mnist"), gzip: false)
        let fashion = DatasetKind.fashionMNIST.verify(root: root.path)
        #expect(fashion.complete)
        #expect(fashion.directory == root.path + "/fashion-mnist")
        #expect(fashion.files.count == 4)
    }

    @Test func dataRootFallsBackToDebianForFashionMNIST() {
        let root = TempDir()
        defer { root.remove() }
        // Files directly in the given root are accepted too.
        makeFashion(dir: root.path)
        #expect(DatasetKind.fashionMNIST.directory(root: root.path) == root.path)
        #expect(DataRoot.resolve("/x") == "/x")
        if FashionMNISTReaderTests.debianFilesPresent && ProcessInfo.processInfo.environment["SQAKD_DATA"] == nil
            && FashionMNIST.locate("train-images-idx3-ubyte", in: "./data/fashion-mnist") == nil {
            #expect(DatasetKind.fashionMNIST.directory() == FashionMNIST.debianDirectory)
        }
    }
}
