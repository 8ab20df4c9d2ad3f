import Foundation
import Testing
import TestSupport
@testable import Datasets

extension FashionTree {
    /// Pristine small trees, made once per test process; tests that damage a tree copy it first.
    static let annotated: String = { try! make(in: TempDir().path, train: 10, val: 5, greyEvery: 7) }()
    static let perWnid: String = { try! make(in: TempDir().path, train: 10, val: 5, layout: "per-wnid", greyEvery: 7) }()

    /// A copy of `tree` in a fresh temporary folder.
    static func copy(_ tree: String) -> (dir: TempDir, tree: String) {
        let d = TempDir()
        let dst = (d.path as NSString).appendingPathComponent("tiny-imagenet-200")
        try! FileManager.default.copyItem(atPath: tree, toPath: dst)
        return (d, dst)
    }
}

func errorText(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return ""
}

@Suite(.enabled(if: FashionTree.available, FashionTree.skipMessage))
struct TinyImageNetPrepareTests {
    @Test func preparesTheOfficialLayout() throws {
        let root = TempDir()
        defer { root.remove() }
        let m = try TinyImageNet.prepare(from: FashionTree.annotated, root: root.path)
        #expect(m.classCount == 10)
        #expect(m.wnids == (0..<10).map { "n" + String(repeating: "0", count: 7) + "\($0)" })
        #expect(m.valLayout == "annotations")
        #expect(m.splits["train"] == TinyImageNet.SplitEntry(count: 100, perClass: 10, images: "train_images.u8", labels: "train_labels.i32"))
        #expect(m.splits["val"] == TinyImageNet.SplitEntry(count: 50, perClass: 5, images: "val_images.u8", labels: "val_labels.i32"))
        #expect(m.channels == 3 && m.height == 64 && m.width == 64)
        let dir = TinyImageNet.directory(root: root.path)
        for (name, entry) in m.files {
            let bytes = try FileIO.read((dir as NSString).appendingPathComponent(name))
            #expect(bytes.count == entry.bytes && SHA256.hex(bytes) == entry.sha256, "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: (root.path as NSString).appendingPathComponent(TinyImageNet.stagingFolder)))

        let train = try DatasetKind.tinyImageNet.load(root: root.path, split: .train)
        #expect(train.count == 100 && train.classCount == 10 && train.channels == 3 && train.height == 64)
        // Class k = wnid n0000000k = Fashion label k; the classes interleaved, so every prefix is balanced.
        #expect(train.labels == (0..<100).map { Int32($0 % 10) })
        #expect(train.normalization == TinyImageNet.normalization)
        let val = try DatasetKind.tinyImageNet.load(root: root.path, split: .test)
        #expect(val.labels == (0..<50).map { Int32($0 % 10) })
        #expect(val.name == "tiny-imagenet-val")

        // Val labels follow val_annotations.txt: val_<i> of class k is among class k's images. The first val
        // image of class 9 (t10k's first image is an ankle boot, label 9) is val_0.
        let annotations = try String(contentsOfFile: FashionTree.annotated + "/val/val_annotations.txt", encoding: .utf8)
        #expect(annotations.hasPrefix("val_0.JPEG\tn00000009"))
        // Pixels equal PIL's decoding of the same file (both libjpeg-turbo, islow IDCT, fancy upsampling).
        let file = FashionTree.annotated + "/val/images/val_0.JPEG"
        let pil = runPython(["-c", "from PIL import Image; import sys; sys.stdout.write(Image.open('\(file)').convert('RGB').tobytes().hex())"])
        try #require(pil.status == 0, "\(pil.output)")
        let hex = Array(pil.output.utf8)
        func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
        var hwc = [UInt8]()
        for i in stride(from: 0, to: hex.count - 1, by: 2) { hwc.append(nibble(hex[i]) << 4 | nibble(hex[i + 1])) }
        try #require(hwc.count == 64 * 64 * 3)
        var fromPIL = [UInt8](repeating: 0, count: hwc.count)
        for p in 0..<(64 * 64) { for c in 0..<3 { fromPIL[c * 4096 + p] = hwc[p * 3 + c] } }
        #expect(Array(val.image(9)) == fromPIL)   // rank 0 of class 9
    }

    @Test func bothValLayoutsPackTheSameBytesAndGreyJPEGsDecode() throws {
        let a = TempDir(), b = TempDir()
        defer { a.remove(); b.remove() }
        let ma = try TinyImageNet.prepare(from: FashionTree.annotated, root: a.path)
        let mb = try TinyImageNet.prepare(from: FashionTree.perWnid, root: b.path)
        #expect(mb.valLayout == "per-wnid")
        #expect(ma.files == mb.files)
        #expect(ma.splits == mb.splits)
        // Every 7th image is a 1-channel JPEG: decoded with grey in all three channels.
        let greyFile = FashionTree.annotated + "/train/n00000000/images/n00000000_6.JPEG"
        let mode = runPython(["-c", "from PIL import Image; print(Image.open('\(greyFile)').mode)"])
        #expect(mode.output.trimmingCharacters(in: .whitespacesAndNewlines) == "L")
        let train = try TinyImageNet.load(root: a.path, split: .train)
        let img = Array(train.image(6))
        #expect(img[0..<4096] == img[4096..<8192] && img[0..<4096] == img[8192..<12288])
        #expect(img.contains { $0 > 100 })
    }

    @Test func verifyChecksSizesAndChecksums() throws {
        let root = TempDir()
        defer { root.remove() }
        try TinyImageNet.prepare(from: FashionTree.annotated, root: root.path)
        #expect(DatasetKind.tinyImageNet.verify(root: root.path, checksums: true).ok)
        let path = TinyImageNet.directory(root: root.path) + "/val_images.u8"
        var bytes = try FileIO.read(path)
        bytes[1234] ^= 0x40
        write(bytes, to: path)
        let damaged = DatasetKind.tinyImageNet.verify(root: root.path, checksums: true)
        #expect(!damaged.ok && damaged.complete)
        #expect(damaged.files.first { $0.name == "val_images.u8" }?.problem?.contains("sha256") == true)
        // Sizes alone (what training checks) do not see a flipped bit; a truncation they do.
        #expect(DatasetKind.tinyImageNet.verify(root: root.path).ok)
        write(Array(bytes.dropLast(10)), to: path)
        #expect(DatasetKind.tinyImageNet.verify(root: root.path).files.first { $0.name == "val_images.u8" }?.problem?.contains("bytes") == true)
        #expect(errorText { _ = try TinyImageNet.load(root: root.path, split: .test) }.hasPrefix(path + ": "))
    }

    @Test func withoutPreparedDataOneLineSaysWhatToDo() throws {
        let root = TempDir()
        defer { root.remove() }
        let message = errorText { try DatasetKind.tinyImageNet.checkPrepared(root: root.path) }
        #expect(!message.contains("\n"))
        #expect(message.contains(TinyImageNet.downloadURL))
        #expect(message.contains("sqakd data prepare tiny-imagenet --from DIR/tiny-imagenet-200 --data-root \(root.path)"))
        let v = DatasetKind.tinyImageNet.verify(root: root.path)
        #expect(!v.complete && v.missing.count == 5)
        #expect(errorText { _ = try DatasetKind.tinyImageNet.load(root: root.path, split: .train) } == message)
    }

    @Test func brokenTreesAreOneLineErrorsNamingTheFile() throws {
        let root = TempDir()
        defer { root.remove() }
        func failure(_ damage: (String) throws -> Void) throws -> String {
            let (d, tree) = FashionTree.copy(FashionTree.annotated)
            defer { d.remove() }
            try damage(tree)
            let m = errorText { try TinyImageNet.prepare(from: tree, root: root.path) }
            #expect(!m.isEmpty && !m.contains("\n"), "\(m)")
            // No data and no staging folder left behind.
            #expect(!FileManager.default.fileExists(atPath: TinyImageNet.directory(root: root.path)))
            #expect(!FileManager.default.fileExists(atPath: root.path + "/" + TinyImageNet.stagingFolder))
            return m.replacingOccurrences(of: tree, with: "TREE")
        }
        let fm = FileManager.default
        // Corrupt JPEG: cut inside the entropy-coded data (libjpeg's "premature end" warning is an error here).
        var m = try failure { t in
            let f = t + "/train/n00000003/images/n00000003_4.JPEG"
            let bytes = try FileIO.read(f)
            write(Array(bytes.prefix(bytes.count * 2 / 3)), to: f)
        }
        #expect(m.hasPrefix("TREE/train/n00000003/images/n00000003_4.JPEG: cannot read: corrupt JPEG"), "\(m)")
        m = try failure { t in write(Array("not a jpeg".utf8), to: t + "/val/images/val_3.JPEG") }
        #expect(m.hasPrefix("TREE/val/images/val_3.JPEG: cannot read: not a valid JPEG"), "\(m)")
        // Missing file listed in val_annotations.txt.
        m = try failure { t in try fm.removeItem(atPath: t + "/val/images/val_7.JPEG") }
        #expect(m.hasPrefix("TREE/val/images/val_7.JPEG: missing (listed in TREE/val/val_annotations.txt)"), "\(m)")
        // Missing class folder, missing wnids.txt, missing val folder.
        m = try failure { t in try fm.removeItem(atPath: t + "/train/n00000005") }
        #expect(m == "TREE/train/n00000005: missing class folder (the wnid is in wnids.txt)", "\(m)")
        m = try failure { t in try fm.removeItem(atPath: t + "/wnids.txt") }
        #expect(m == "TREE/wnids.txt: cannot read: no such file", "\(m)")
        m = try failure { t in try fm.removeItem(atPath: t + "/val") }
        #expect(m == "TREE/val: missing folder", "\(m)")
        // Wrong count: one class with one image fewer.
        m = try failure { t in try fm.removeItem(atPath: t + "/train/n00000002/images/n00000002_0.JPEG") }
        #expect(m == "TREE/train/n00000002: 9 images of class n00000002; class n00000000 has 10", "\(m)")
        // Not 64×64.
        m = try failure { t in
            let f = t + "/train/n00000001/images/n00000001_2.JPEG"
            let r = runPython(["-c", "from PIL import Image; Image.new('RGB', (32, 48)).save('\(f)', format='JPEG')"])
            try #require(r.status == 0, "\(r.output)")
        }
        #expect(m == "TREE/train/n00000001/images/n00000001_2.JPEG: 32×48 pixels; Tiny-ImageNet images are 64×64", "\(m)")
        // An image no annotation names.
        m = try failure { t in try fm.copyItem(atPath: t + "/val/images/val_0.JPEG", toPath: t + "/val/images/extra.JPEG") }
        #expect(m == "TREE/val/images/extra.JPEG: not listed in TREE/val/val_annotations.txt", "\(m)")
        // The boxes files are ignored, as DALI's extension filter does.
        #expect(fm.fileExists(atPath: FashionTree.annotated + "/train/n00000000/n00000000_boxes.txt"))
    }

    @Test func anInterruptedPreparationStartsOverAndReplacesOldData() throws {
        let root = TempDir()
        defer { root.remove() }
        // What a killed run leaves: a staging folder with a half-written file and no manifest.
        let staging = root.sub(TinyImageNet.stagingFolder)
        write([UInt8](repeating: 7, count: 5000), to: staging + "/train_images.u8")
        #expect(!DatasetKind.tinyImageNet.verify(root: root.path).complete)
        #expect(throws: DatasetError.self) { _ = try TinyImageNet.load(root: root.path, split: .train) }
        let m = try TinyImageNet.prepare(from: FashionTree.annotated, root: root.path)
        #expect(!FileManager.default.fileExists(atPath: staging))
        #expect(DatasetKind.tinyImageNet.verify(root: root.path, checksums: true).ok)
        // A second preparation replaces a complete earlier one (here: a damaged one) whole.
        let path = TinyImageNet.directory(root: root.path) + "/train_images.u8"
        write([1, 2, 3], to: path)
        let again = try TinyImageNet.prepare(from: FashionTree.perWnid, root: root.path)
        #expect(again.files == m.files)
        #expect(DatasetKind.tinyImageNet.verify(root: root.path, checksums: true).ok)
    }

    @Test func sha256MatchesFIPSVectorsAndStreaming() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(SHA256.hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var s = SHA256()
        for chunk in stride(from: 0, to: million.count, by: 777) { s.update(million[chunk..<min(chunk + 777, million.count)]) }
        #expect(s.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
