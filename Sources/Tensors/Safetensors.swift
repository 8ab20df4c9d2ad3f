import Foundation

/// A malformed or unwritable safetensors file; the message is one line naming the file and the problem.
public struct SafetensorsError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// A safetensors file (https://github.com/huggingface/safetensors), the checkpoint format of the engine
/// and of PyTorch state dicts exported for it.
///
/// Layout: an 8-byte little-endian header length `n`; `n` bytes of JSON
/// `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`
/// (space-padded so the data starts 8-byte aligned); then the raw little-endian tensor bytes, offsets
/// relative to the end of the header.
///
/// In memory every tensor is float32. Reading converts F32, F64, F16, BF16, I64 and I32 to float; keys
/// stored as I64 or I32 are listed in `integerKeys` (BatchNorm `num_batches_tracked` is I64 in PyTorch).
/// Writing stores `integerKeys` as I64 (values must be integral) and everything else as F32, in the byte
/// layout of the Rust library (safetensors 0.4): tensors ordered by dtype (I64 before F32) then by name,
/// compact JSON in that order with `__metadata__` first (its keys sorted here, for reproducible bytes).
public struct SafetensorsFile {
    public var tensors: [String: Tensor]
    public var integerKeys: Set<String>
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], integerKeys: Set<String> = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.integerKeys = integerKeys
        self.metadata = metadata
    }

    /// Header lengths above this are rejected as corrupt (the Rust library's limit).
    static let maximumHeaderLength = 100_000_000

    // MARK: Reading

    public static func read(_ url: URL) throws -> SafetensorsFile {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SafetensorsError(message: "\(url.path): no such file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafetensorsError(message: "\(url.path): cannot read file: \(fileErrorReason(error))")
        }
        return try decode(data, source: url.path)
    }

    /// Parses the bytes of a safetensors file; `source` names it in error messages.
    public static func decode(_ data: Data, source: String = "safetensors data") throws -> SafetensorsFile {
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(message: "\(source): \(message)") }

        let bytes = [UInt8](data)
        guard bytes.count >= 8 else {
            throw fail("truncated file: \(bytes.count) bytes, need at least 8 for the header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(maximumHeaderLength) else {
            throw fail("bad header: header length \(headerLength) exceeds the limit of \(maximumHeaderLength) bytes")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("truncated file: header length \(headerLength) but only \(bytes.count - 8) bytes follow")
        }
        let n = Int(headerLength)
        let headerBytes = Data(bytes[8..<(8 + n)])
        guard let json = try? JSONSerialization.jsonObject(with: headerBytes, options: []),
              let header = json as? [String: Any] else {
            throw fail("bad header JSON: not a JSON object")
        }

        var file = SafetensorsFile()
        if let rawMetadata = header["__metadata__"] {
            guard let metadata = rawMetadata as? [String: String] else {
                throw fail("bad header JSON: __metadata__ must map strings to strings")
            }
            file.metadata = metadata
        }

        struct Entry { let name: String; let dtype: DType; let shape: [Int]; let begin: Int; let end: Int }
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any] else {
                throw fail("bad header JSON: tensor '\(name)' needs dtype, shape and data_offsets")
            }
            let shape = shapeAny.compactMap { $0 as? Int }
            let offsets = offsetsAny.compactMap { $0 as? Int }
            guard shape.count == shapeAny.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("bad header JSON: tensor '\(name)' has shape \(shapeAny), expected non-negative integers")
            }
            guard offsets.count == 2, offsets.count == offsetsAny.count, offsets[0] >= 0, offsets[1] >= 0 else {
                throw fail("bad header JSON: tensor '\(name)' has data_offsets \(offsetsAny), expected [begin, end]")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("unsupported dtype \(dtypeName) for tensor '\(name)' (supported: F32, F64, F16, BF16, I64, I32)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1]))
        }

        let dataStart = 8 + n
        let dataLength = bytes.count - dataStart
        for e in entries {
            guard e.begin <= e.end, e.end <= dataLength else {
                throw fail("offsets out of range: tensor '\(e.name)' has data_offsets [\(e.begin), \(e.end)] but the data section has \(dataLength) bytes")
            }
            var count = 1
            var overflow = false
            for d in e.shape where !overflow {
                (count, overflow) = count.multipliedReportingOverflow(by: d)
            }
            let (size, overflow2) = count.multipliedReportingOverflow(by: e.dtype.size)
            guard !overflow, !overflow2, size == e.end - e.begin else {
                throw fail("shape/size mismatch: tensor '\(e.name)' of shape \(e.shape) and dtype \(e.dtype.rawValue) needs \(overflow || overflow2 ? "too many" : String(size)) bytes, data_offsets give \(e.end - e.begin)")
            }
        }
        var position = 0
        for e in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard e.begin == position else {
                throw fail("offsets out of range: tensor '\(e.name)' starts at byte \(e.begin), expected \(position) (gap or overlap in the data section)")
            }
            position = e.end
        }
        guard position == dataLength else {
            throw fail("offsets out of range: tensors cover \(position) bytes but the data section has \(dataLength)")
        }

        bytes.withUnsafeBytes { raw in
            for e in entries {
                let t = Tensor(shape: e.shape, zeroed: false)
                t.withUnsafeMutablePointer { e.dtype.convert(from: raw.baseAddress! + dataStart + e.begin, to: $0, count: t.count) }
                file.tensors[e.name] = t
                if e.dtype.isInteger { file.integerKeys.insert(e.name) }
            }
        }
        return file
    }

    // MARK: Writing

    /// The file's bytes (see the type's doc comment for the layout).
    public func encoded() throws -> Data {
        if tensors["__metadata__"] != nil {
            throw SafetensorsError(message: "cannot write a tensor named __metadata__ (reserved by the format)")
        }
        if let stray = integerKeys.subtracting(tensors.keys).sorted().first {
            throw SafetensorsError(message: "integer key '\(stray)' has no tensor")
        }
        let order = tensors.keys.map { (name: $0, dtype: integerKeys.contains($0) ? DType.I64 : DType.F32) }
            .sorted { a, b in
                if a.dtype.order != b.dtype.order { return a.dtype.order > b.dtype.order }
                return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
            }

        var json = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                .map { jsonString($0) + ":" + jsonString(metadata[$0]!) }
            fields.append("\"__metadata__\":{" + items.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, dtype) in order {
            let t = tensors[name]!
            let size = t.count * dtype.size
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append(jsonString(name) + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        json += fields.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var out = [UInt8](repeating: 0, count: 8 + header.count + offset)
        let n = UInt64(header.count)
        for i in 0..<8 { out[i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        out.replaceSubrange(8..<(8 + header.count), with: header)
        var position = 8 + header.count
        for (name, dtype) in order {
            let t = tensors[name]!.toPlainForStorage()
            switch dtype {
            case .I64:
                let values = t.array
                for i in 0..<t.count {
                    let v = values[i]
                    guard v.isFinite, v == v.rounded(), abs(v) < 9.2e18 else {
                        throw SafetensorsError(message: "integer tensor '\(name)' holds non-integral value \(v) at index \(i)")
                    }
                    let bits = UInt64(bitPattern: Int64(v))
                    for b in 0..<8 { out[position + 8 * i + b] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(b))) }
                }
            default:
                out.withUnsafeMutableBytes { raw in
                    let dst = raw.baseAddress! + position
                    t.withUnsafeBufferPointer { src in
                        for i in 0..<t.count { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                    }
                }
            }
            position += t.count * dtype.size
        }
        return Data(out)
    }

    /// The name of the first tensor (in name order) holding a NaN or an infinity, with the value found.
    public func firstNonFinite() -> (name: String, value: Float)? {
        for name in tensors.keys.sorted() {
            let t = tensors[name]!.toPlainForStorage()
            if let v = t.withUnsafeBufferPointer({ $0.first { !$0.isFinite } }) { return (name, v) }
        }
        return nil
    }

    /// Writes the file atomically (temporary file + fsync + rename).
    public func write(to url: URL) throws {
        let data = try encoded()
        do {
            try atomicWrite(data, to: url)
        } catch let error as FileWriteError {
            throw SafetensorsError(message: error.message)
        }
    }
}

/// serde_json's string escaping: `"` and `\` escaped, control characters as \b \t \n \f \r or \u00XX,
/// everything else (non-ASCII included) verbatim.
private func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\u{08}": out += "\\b"
        case "\u{09}": out += "\\t"
        case "\u{0A}": out += "\\n"
        case "\u{0C}": out += "\\f"
        case "\u{0D}": out += "\\r"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

extension Tensor {
    fileprivate func toPlainForStorage() -> Tensor { layout == .plain ? self : toLayout(.plain) }
}

/// On-disk element types the reader understands. `order` is the position in the Rust library's `Dtype`
/// enum, which orders tensors in the files it writes (larger first).
private enum DType: String {
    case F16, BF16, I32, F32, F64, I64

    var size: Int {
        switch self {
        case .F16, .BF16: return 2
        case .I32, .F32: return 4
        case .F64, .I64: return 8
        }
    }

    var order: Int {
        switch self {
        case .F16: return 7
        case .BF16: return 8
        case .I32: return 9
        case .F32: return 11
        case .F64: return 12
        case .I64: return 13
        }
    }

    var isInteger: Bool { self == .I64 || self == .I32 }

    /// Converts `count` little-endian elements at `src` (any alignment) to float32 at `dst`.
    func convert(from src: UnsafeRawPointer, to dst: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .F32:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .F64:
            for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .F16:
            for i in 0..<count { dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
        case .BF16:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .I32:
            for i in 0..<count { dst[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .I64:
            for i in 0..<count { dst[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        }
    }
}
