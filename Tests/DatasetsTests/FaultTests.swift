import Foundation
import Testing
@testable import Datasets

/// Bad dataset files and roots: one error line or a reported problem, never a trap or a silent fallback.
@Suite struct DatasetFaultTests {
    /// Dimensions whose product overflows Int used to trap (exit 132) before the size check.
    @Test func hugeIDXDimensionsAreAnError() {
        let header = bigEndian(2051) + bigEndian(0xFFFF_FFFF) + bigEndian(0xFFFF_FFFF) + bigEndian(0xFFFF_FFFF)
        let message = errorMessage { _ = try IDX.parseImages(header + [1, 2, 3], file: "/d/x-idx3-ubyte") }
        #expect(message?.hasPrefix("/d/x-idx3-ubyte") == true, "\(message ?? "")")
        #expect(message?.contains("more than 2^63") == true, "\(message ?? "")")
    }

    /// A folder of symbolic links to the files is measured by the files, not the links.
    @Test func symlinkedFilesAreMeasuredByTheirTarget() throws {
        let real = TempDir(), links = TempDir()
        defer { real.remove(); links.remove() }
        makeFashion(dir: real.path, gzip: false)
        for name in try FileManager.default.contentsOfDirectory(atPath: real.path) {
            try FileManager.default.createSymbolicLink(atPath: links.path + "/" + name, withDestinationPath: real.path + "/" + name)
        }
        #expect(FileIO.size(links.path + "/train-images-idx3-ubyte") == 16 + 5 * 784)
        let d = try FashionMNIST.load(directory: links.path, split: .train, encoding: .raw)
        #expect(d.count == 5)
    }

    /// `data verify` used to pass truncated .gz files (their size has no official value): the gzip trailer
    /// now gives the uncompressed size, which must be the official one.
    @Test func verifyFlagsTruncatedGzipFiles() throws {
        let root = TempDir()
        defer { root.remove() }
        let dir = root.sub("fashion-mnist")
        makeFashion(dir: dir)
        let report = DatasetKind.fashionMNIST.verify(root: root.path)
        #expect(report.complete && !report.ok, "synthetic files are not the official size")
        #expect(report.files[0].problem?.contains("gzip trailer gives 3936 bytes uncompressed, the official file has 47040016") == true,
                "\(report.files[0].problem ?? "")")
        #expect(report.description.contains("4 with problems"), "\(report.description)")
        if FashionMNISTReaderTests.debianFilesPresent {
            #expect(DatasetKind.fashionMNIST.verify(root: FashionMNIST.debianDirectory).ok)
            // A truncated copy of the real file is flagged.
            let full = try Data(contentsOf: URL(fileURLWithPath: FashionMNIST.debianDirectory + "/t10k-labels-idx1-ubyte.gz"))
            let copy = root.sub("truncated")
            for b in [FashionMNIST.files(.train), FashionMNIST.files(.test)].flatMap({ [$0.images, $0.labels] }) {
                try FileManager.default.createSymbolicLink(atPath: copy + "/" + b + ".gz", withDestinationPath: FashionMNIST.debianDirectory + "/" + b + ".gz")
            }
            try FileManager.default.removeItem(atPath: copy + "/t10k-labels-idx1-ubyte.gz")
            try full.prefix(full.count - 100).write(to: URL(fileURLWithPath: copy + "/t10k-labels-idx1-ubyte.gz"))
            let v = DatasetKind.fashionMNIST.verify(root: copy)
            #expect(v.complete && !v.ok)
            #expect(v.files.filter { $0.problem != nil }.map(\.name) == ["t10k-labels-idx1-ubyte.gz"], "\(v.description)")
        }
    }

    /// A root the user names (--data-root, $SQAKD_DATA) that lacks the files is not replaced by Debian's copy.
    @Test func namedRootDoesNotFallBack() {
        #expect(DatasetKind.fashionMNIST.directory(root: "/nonexistent/root") == "/nonexistent/root/fashion-mnist")
        #expect(!DataRoot.isDefault("/x"))
        if ProcessInfo.processInfo.environment[DataRoot.environmentVariable] == nil { #expect(DataRoot.isDefault(nil)) }
    }
}
