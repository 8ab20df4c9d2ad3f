import Foundation
import Tensors

/// Tiny-ImageNet (cs231n, 200 classes, 64×64 RGB JPEGs; reference §7), prepared once into packed files
/// that training reads (`sqakd data prepare tiny-imagenet --from DIR`).
///
/// Source layouts read by `prepare`:
/// - the official release: `wnids.txt`, `train/<wnid>/images/*.JPEG` (+ `<wnid>_boxes.txt`, ignored),
///   `val/images/*.JPEG` + `val/val_annotations.txt` (file, wnid, box per line);
/// - the per-wnid layout the authors' DALI loader expects: `val/<wnid>/[images/]*.JPEG`.
/// Class index = position of the wnid in sorted order (DALI `readers.file` labels the class folders in
/// lexicographic order). Within a class images are ranked by path; the packed files interleave the classes
/// (rank 0 of every class in class order, then rank 1, ...), so any prefix (`train_limit`, `test_limit`) holds
/// every class equally. Both val layouts pack to identical files.
///
/// Prepared folder `<data root>/tiny-imagenet/`:
/// - `train_images.u8`, `val_images.u8`: uint8 [N, 3, 64, 64], channel-major per image;
/// - `train_labels.i32`, `val_labels.i32`: int32 little-endian [N];
/// - `manifest.json` (`TinyImageNet.Manifest`): counts, wnids in class order, image size, the val layout
///   read, and the size and sha256 of every file above. Written last, inside a staging folder that is
///   renamed into place only when complete.
public enum TinyImageNet {
    public static let folder = "tiny-imagenet"
    public static let stagingFolder = ".tiny-imagenet.partial"
    public static let downloadURL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
    public static let manifestName = "manifest.json"
    /// Side of the stored images.
    public static let side = 64
    /// Official per-class counts, checked when the tree has the official 200 classes.
    public static let officialClasses = 200, officialTrainPerClass = 500, officialValPerClass = 50
    /// Reference §3.4 (`imagenet_data_loader.py:71-77`: ImageNet mean/std ×255 on 0–255 pixels, the same map).
    public static let normalization = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// The manifest's name of each split's files.
    public static func files(_ split: Split) -> (images: String, labels: String) {
        let s = splitName(split)
        return ("\(s)_images.u8", "\(s)_labels.i32")
    }

    /// "train" / "val" (the test split is Tiny-ImageNet's val set).
    public static func splitName(_ split: Split) -> String { split == .train ? "train" : "val" }

    public static func directory(root: String?) -> String {
        (DataRoot.resolve(root) as NSString).appendingPathComponent(folder)
    }

    public static func howToGet(root: String?) -> String {
        let r = DataRoot.resolve(root)
        return "Download \(downloadURL), unzip it, then run `sqakd data prepare tiny-imagenet --from DIR/tiny-imagenet-200"
            + (DataRoot.isDefault(root) ? "" : " --data-root \(r)") + "` (it writes \((r as NSString).appendingPathComponent(folder)); "
            + "the data root is --data-root, else $\(DataRoot.environmentVariable), else ./data)."
    }

    public struct FileEntry: Codable, Equatable, Sendable {
        public var bytes: Int
        public var sha256: String
    }

    public struct SplitEntry: Codable, Equatable, Sendable {
        public var count: Int
        public var perClass: Int
        public var images: String
        public var labels: String

        enum CodingKeys: String, CodingKey {
            case count, images, labels
            case perClass = "per_class"
        }
    }

    /// `manifest.json`.
    public struct Manifest: Codable, Equatable, Sendable {
        public static let currentFormat = "sqakd-tiny-imagenet-packed-1"
        public var format = Manifest.currentFormat
        public var channels = 3
        public var height = TinyImageNet.side
        public var width = TinyImageNet.side
        public var classCount: Int
        /// wnids in class order (sorted).
        public var wnids: [String]
        /// "annotations" (val/images + val_annotations.txt) or "per-wnid" (val/<wnid>/).
        public var valLayout: String
        /// "train", "val".
        public var splits: [String: SplitEntry]
        /// File name → size and sha256.
        public var files: [String: FileEntry]

        enum CodingKeys: String, CodingKey {
            case format, channels, height, width, wnids, splits, files
            case classCount = "class_count"
            case valLayout = "val_layout"
        }

        public static func read(_ path: String) throws -> Manifest {
            let bytes = try FileIO.read(path)
            do {
                let m = try JSONDecoder().decode(Manifest.self, from: Data(bytes))
                guard m.format == currentFormat else {
                    throw DatasetError.badTree(path: path, reason: "manifest format '\(m.format)', expected '\(currentFormat)'; prepare the data again")
                }
                return m
            } catch let e as DatasetError { throw e } catch {
                throw DatasetError.badTree(path: path, reason: "not a valid manifest: \(error)")
            }
        }

        public func encoded() -> Data {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            var d = (try? e.encode(self)) ?? Data()
            d.append(0x0A)
            return d
        }
    }

    // MARK: Reading the source tree

    /// One image to pack.
    struct Item {
        var path: String
        var label: Int32
    }

    static let imageExtensions: Set<String> = ["jpeg", "jpg"]

    /// The JPEGs under `dir`, recursively, as sorted paths.
    static func images(under dir: String) throws -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else {
            throw DatasetError.badTree(path: dir, reason: "missing folder")
        }
        var out = [String]()
        while let rel = e.nextObject() as? String {
            if imageExtensions.contains((rel as NSString).pathExtension.lowercased()) { out.append(rel) }
        }
        return out.sorted().map { (dir as NSString).appendingPathComponent($0) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }

    static func subdirectories(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { isDirectory((dir as NSString).appendingPathComponent($0)) }.sorted()
    }

    /// Per-class folders `<dir>/<wnid>/`: every wnid present, no other folder, each with at least one image.
    static func perClassItems(_ dir: String, wnids: [String], skip: Set<String> = []) throws -> [Item] {
        let known = Set(wnids)
        for sub in subdirectories(dir) where !known.contains(sub) && !skip.contains(sub) {
            throw DatasetError.badTree(path: (dir as NSString).appendingPathComponent(sub), reason: "a class folder whose name is not in wnids.txt")
        }
        var items = [Item]()
        for (label, wnid) in wnids.enumerated() {
            let classDir = (dir as NSString).appendingPathComponent(wnid)
            guard isDirectory(classDir) else { throw DatasetError.badTree(path: classDir, reason: "missing class folder (the wnid is in wnids.txt)") }
            let files = try images(under: classDir)
            guard !files.isEmpty else { throw DatasetError.badTree(path: classDir, reason: "no JPEG images in this class folder") }
            items += files.map { Item(path: $0, label: Int32(label)) }
        }
        return items
    }

    /// `val/images/*` labelled by `val/val_annotations.txt` (tab-separated: file, wnid, box).
    static func annotatedItems(_ valDir: String, wnids: [String]) throws -> [Item] {
        let annotations = (valDir as NSString).appendingPathComponent("val_annotations.txt")
        let imageDir = (valDir as NSString).appendingPathComponent("images")
        guard let text = String(data: Data(try FileIO.read(annotations)), encoding: .utf8) else {
            throw DatasetError.badTree(path: annotations, reason: "not UTF-8 text")
        }
        let index = Dictionary(uniqueKeysWithValues: wnids.enumerated().map { ($1, $0) })
        var labelOf = [String: Int]()
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            if fields.isEmpty { continue }
            guard fields.count >= 2 else { throw DatasetError.badTree(path: annotations, reason: "line \(n + 1): expected 'FILE<TAB>WNID…', got '\(line)'") }
            guard let label = index[fields[1]] else {
                throw DatasetError.badTree(path: annotations, reason: "line \(n + 1): wnid '\(fields[1])' is not in wnids.txt")
            }
            guard labelOf.updateValue(label, forKey: fields[0]) == nil else {
                throw DatasetError.badTree(path: annotations, reason: "line \(n + 1): '\(fields[0])' is annotated twice")
            }
        }
        let present = try images(under: imageDir)
        let names = Set(present.map { String($0.dropFirst(imageDir.count + 1)) })
        for name in labelOf.keys.sorted() where !names.contains(name) {
            throw DatasetError.badTree(path: (imageDir as NSString).appendingPathComponent(name), reason: "missing (listed in \(annotations))")
        }
        var items = [Item]()
        for path in present {
            let name = String(path.dropFirst(imageDir.count + 1))
            guard let label = labelOf[name] else { throw DatasetError.badTree(path: path, reason: "not listed in \(annotations)") }
            items.append(Item(path: path, label: Int32(label)))
        }
        // Class order, then name, as the per-wnid layout reads.
        return items.enumerated().sorted { ($0.element.label, $0.offset) < ($1.element.label, $1.offset) }.map(\.element)
    }

    /// Checks that every class of a split has the same number of images (the official counts for the
    /// official 200 classes); returns that number.
    static func perClassCount(_ items: [Item], wnids: [String], dir: String, official: Int) throws -> Int {
        var counts = [Int](repeating: 0, count: wnids.count)
        for i in items { counts[Int(i.label)] += 1 }
        let expected = wnids.count == officialClasses ? official : counts[0]
        if let bad = counts.indices.first(where: { counts[$0] != expected }) {
            let what = wnids.count == officialClasses ? "the official release has \(official) per class" : "class \(wnids[0]) has \(expected)"
            throw DatasetError.badTree(path: (dir as NSString).appendingPathComponent(wnids[bad]),
                                       reason: "\(counts[bad]) images of class \(wnids[bad]); \(what)")
        }
        return expected
    }

    /// `items` in class order (`perClass` each) as rank 0 of every class, then rank 1, ...
    static func interleaved(_ items: [Item], perClass: Int, classes: Int) -> [Item] {
        precondition(items.count == perClass * classes, "interleaving \(items.count) items as \(classes) × \(perClass)")
        return (0..<items.count).map { i in items[(i % classes) * perClass + i / classes] }
    }

    // MARK: Preparing

    /// Decodes the tree at `source` into `<root>/tiny-imagenet/` (see the type's comment).
    ///
    /// Everything is written inside `<root>/.tiny-imagenet.partial/` (removed first if an interrupted run left
    /// it), the manifest last; the folder is then renamed to `tiny-imagenet` (a previous one is removed
    /// after the new one is in place). An interrupted preparation therefore leaves either the previous
    /// prepared data or none, and running the command again starts over. `progress(done, total)` is called
    /// after each image. Throws a one-line `DatasetError` naming the file for a missing file or folder, a
    /// corrupt JPEG, an image that is not 64×64 or a wrong count.
    @discardableResult
    public static func prepare(from source: String, root: String?, progress: (Int, Int) -> Void = { _, _ in }) throws -> Manifest {
        guard isDirectory(source) else { throw DatasetError.badTree(path: source, reason: "no such folder (give the unzipped tiny-imagenet-200 folder)") }
        let wnidsPath = (source as NSString).appendingPathComponent("wnids.txt")
        guard let wnidText = String(data: Data(try FileIO.read(wnidsPath)), encoding: .utf8) else {
            throw DatasetError.badTree(path: wnidsPath, reason: "not UTF-8 text")
        }
        let listed = wnidText.split(whereSeparator: \.isWhitespace).map(String.init)
        guard !listed.isEmpty else { throw DatasetError.badTree(path: wnidsPath, reason: "lists no wnid") }
        if let dup = Dictionary(grouping: listed, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw DatasetError.badTree(path: wnidsPath, reason: "lists '\(dup)' twice")
        }
        let wnids = listed.sorted()

        let trainDir = (source as NSString).appendingPathComponent("train")
        let valDir = (source as NSString).appendingPathComponent("val")
        guard isDirectory(trainDir) else { throw DatasetError.badTree(path: trainDir, reason: "missing folder") }
        guard isDirectory(valDir) else { throw DatasetError.badTree(path: valDir, reason: "missing folder") }
        let trainByClass = try perClassItems(trainDir, wnids: wnids)
        let annotated = FileManager.default.fileExists(atPath: (valDir as NSString).appendingPathComponent("val_annotations.txt"))
            || isDirectory((valDir as NSString).appendingPathComponent("images"))
        let valByClass = annotated ? try annotatedItems(valDir, wnids: wnids) : try perClassItems(valDir, wnids: wnids)
        let trainPerClass = try perClassCount(trainByClass, wnids: wnids, dir: trainDir, official: officialTrainPerClass)
        let valPerClass = try perClassCount(valByClass, wnids: wnids, dir: annotated ? (valDir as NSString).appendingPathComponent("images") : valDir,
                                            official: officialValPerClass)

        let train = interleaved(trainByClass, perClass: trainPerClass, classes: wnids.count)
        let val = interleaved(valByClass, perClass: valPerClass, classes: wnids.count)

        let rootDir = DataRoot.resolve(root)
        let staging = (rootDir as NSString).appendingPathComponent(stagingFolder)
        let final = (rootDir as NSString).appendingPathComponent(folder)
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: rootDir, withIntermediateDirectories: true)
            if fm.fileExists(atPath: staging) { try fm.removeItem(atPath: staging) }
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: false)
        } catch { throw DatasetError.unreadable(file: staging, reason: "cannot create: \(fileErrorReason(error))") }
        // A failed preparation removes its staging folder; a killed one leaves it to the next run, which starts over.
        var committed = false
        defer { if !committed { try? fm.removeItem(atPath: staging) } }

        var entries = [String: FileEntry]()
        var splits = [String: SplitEntry]()
        let total = train.count + val.count
        var done = 0
        let decoder = JPEGDecoder()
        for (split, items, perClass) in [(Split.train, train, trainPerClass), (Split.test, val, valPerClass)] {
            let (imageName, labelName) = files(split)
            let writer = try PackedWriter((staging as NSString).appendingPathComponent(imageName))
            var chw = [UInt8](repeating: 0, count: 3 * side * side)
            for item in items {
                let jpeg = try decoder.decodeRGB(try FileIO.read(item.path), file: item.path)
                guard jpeg.width == side, jpeg.height == side else {
                    throw DatasetError.badTree(path: item.path, reason: "\(jpeg.width)×\(jpeg.height) pixels; Tiny-ImageNet images are \(side)×\(side)")
                }
                for c in 0..<3 { for p in 0..<(side * side) { chw[c * side * side + p] = jpeg.pixels[p * 3 + c] } }
                try writer.write(chw)
                done += 1
                progress(done, total)
            }
            entries[imageName] = try writer.finish()
            var labelBytes = [UInt8]()
            labelBytes.reserveCapacity(4 * items.count)
            for item in items { withUnsafeBytes(of: item.label.littleEndian) { labelBytes += $0 } }
            let labelWriter = try PackedWriter((staging as NSString).appendingPathComponent(labelName))
            try labelWriter.write(labelBytes)
            entries[labelName] = try labelWriter.finish()
            splits[splitName(split)] = SplitEntry(count: items.count, perClass: perClass, images: imageName, labels: labelName)
        }
        let manifest = Manifest(classCount: wnids.count, wnids: wnids, valLayout: annotated ? "annotations" : "per-wnid",
                                splits: splits, files: entries)
        do {
            try atomicWrite(manifest.encoded(), to: URL(fileURLWithPath: (staging as NSString).appendingPathComponent(manifestName)))
        } catch { throw DatasetError.unreadable(file: staging, reason: "\(error)") }
        let previous = (rootDir as NSString).appendingPathComponent(".tiny-imagenet.previous")
        do {
            if fm.fileExists(atPath: previous) { try fm.removeItem(atPath: previous) }
            if fm.fileExists(atPath: final) { try fm.moveItem(atPath: final, toPath: previous) }
            try fm.moveItem(atPath: staging, toPath: final)
            committed = true
            if fm.fileExists(atPath: previous) { try fm.removeItem(atPath: previous) }
        } catch { throw DatasetError.unreadable(file: final, reason: "cannot move the prepared data into place: \(fileErrorReason(error))") }
        return manifest
    }

    /// Streams bytes to a file, hashing them; `finish` flushes and fsyncs.
    final class PackedWriter {
        let path: String
        let file: UnsafeMutablePointer<FILE>
        var hash = SHA256()
        var bytes = 0

        init(_ path: String) throws {
            self.path = path
            guard let f = fopen(path, "wb") else { throw DatasetError.unreadable(file: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
            file = f
        }

        func write(_ chunk: [UInt8]) throws {
            let n = chunk.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            guard n == chunk.count else { throw DatasetError.unreadable(file: path, reason: "write failed: \(String(cString: strerror(errno)))") }
            hash.update(chunk)
            bytes += n
        }

        func finish() throws -> FileEntry {
            defer { fclose(file) }
            guard fflush(file) == 0, fsync(fileno(file)) == 0 else {
                throw DatasetError.unreadable(file: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            return FileEntry(bytes: bytes, sha256: hash.hexDigest())
        }
    }

    // MARK: Reading the prepared data

    /// The manifest of the prepared data under `root`; without one, a one-line `.badTree` naming it that says
    /// what to download and which command to run (`howToGet`).
    public static func manifest(root: String?) throws -> Manifest {
        let dir = directory(root: root)
        let path = (dir as NSString).appendingPathComponent(manifestName)
        guard FileIO.exists(path) else {
            throw DatasetError.badTree(path: path, reason: "no such file: Tiny-ImageNet is not prepared here. " + howToGet(root: root))
        }
        return try Manifest.read(path)
    }

    /// Reads one prepared split (the test split is Tiny-ImageNet's val set). Checks sizes against the
    /// manifest and labels against the class count; checksums are `verify`'s job.
    public static func load(root: String?, split: Split) throws -> Dataset {
        let m = try manifest(root: root)
        let dir = directory(root: root)
        guard let s = m.splits[splitName(split)] else {
            throw DatasetError.badTree(path: (dir as NSString).appendingPathComponent(manifestName), reason: "no '\(splitName(split))' split")
        }
        let imagePath = (dir as NSString).appendingPathComponent(s.images)
        let labelPath = (dir as NSString).appendingPathComponent(s.labels)
        let size = m.channels * m.height * m.width
        let images = try FileIO.read(imagePath)
        guard images.count == s.count * size else {
            throw DatasetError.badTree(path: imagePath, reason: "\(images.count) bytes; the manifest's \(s.count) images of \(m.channels)×\(m.height)×\(m.width) are \(s.count * size); prepare the data again")
        }
        let labelBytes = try FileIO.read(labelPath)
        guard labelBytes.count == 4 * s.count else {
            throw DatasetError.badTree(path: labelPath, reason: "\(labelBytes.count) bytes; the manifest's \(s.count) labels are \(4 * s.count); prepare the data again")
        }
        var labels = [Int32](repeating: 0, count: s.count)
        for i in 0..<s.count {
            let v = Int32(littleEndian: labelBytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self) })
            guard v >= 0, Int(v) < m.classCount else { throw DatasetError.labelOutOfRange(file: labelPath, record: i, label: Int(v), classCount: m.classCount) }
            labels[i] = v
        }
        return Dataset(name: "tiny-imagenet-\(splitName(split))", channels: m.channels, height: m.height, width: m.width,
                       images: images, labels: labels, classCount: m.classCount, normalization: normalization)
    }

    /// The prepared files: present, of the manifest's size, and (with `checksums`) of its sha256.
    public static func verify(root: String?, checksums: Bool) -> DataVerification {
        let dir = directory(root: root)
        let names = Split.allCases.flatMap { s in [(s, files(s).images), (s, files(s).labels)] }
        let m = try? manifest(root: root)
        let manifestPath = (dir as NSString).appendingPathComponent(manifestName)
        var out = [DataFileStatus]()
        if FileIO.exists(manifestPath) {
            out.append(DataFileStatus(split: .train, name: manifestName, path: manifestPath, size: FileIO.size(manifestPath),
                                      expectedSize: nil, problem: m == nil ? "not a valid manifest; prepare the data again" : nil))
        } else {
            out.append(DataFileStatus(split: .train, name: manifestName, path: nil, size: nil, expectedSize: nil, problem: nil))
        }
        for (split, name) in names {
            let path = (dir as NSString).appendingPathComponent(name)
            let size = FileIO.size(path)
            let entry = m?.files[name]
            var problem: String? = nil
            if let size, let entry {
                if size != entry.bytes {
                    problem = "\(size) bytes, the manifest says \(entry.bytes)"
                } else if checksums, let bytes = try? FileIO.read(path) {
                    let sum = SHA256.hex(bytes)
                    if sum != entry.sha256 { problem = "sha256 \(sum), the manifest says \(entry.sha256): damaged; prepare the data again" }
                }
            } else if size != nil, m != nil {
                problem = "not listed in the manifest"
            }
            out.append(DataFileStatus(split: split, name: name, path: size == nil ? nil : path, size: size,
                                      expectedSize: entry?.bytes, problem: problem))
        }
        return DataVerification(kind: .tinyImageNet, directory: dir, files: out, howToGet: howToGet(root: root))
    }
}
