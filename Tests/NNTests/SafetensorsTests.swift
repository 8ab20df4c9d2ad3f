import TestSupport
import Foundation
import Testing
import Tensors

// Safetensors reading and writing: round trips, interop with files laid out like the Rust library's
// (Golden/interop_*.safetensors, scripts/make_safetensors_fixture.py), every error case, atomic writes.

private let fixtureHint = "regenerate with `/usr/bin/python3 scripts/make_safetensors_fixture.py` (repository root)"

private func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)")
}

/// A fresh empty directory under the system temporary directory.
private func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("safetensors-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A hand-made file: header text (padded to 8) followed by `data`.
private func rawFile(header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> Data {
    var h = Array(header.utf8)
    h.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - h.count % 8) % 8))
    let n = headerLength ?? UInt64(h.count)
    var out = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
    out += h + data
    return Data(out)
}

private func expectDecodeError(_ data: Data, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try SafetensorsFile.decode(data, source: "test.safetensors")
        Issue.record("decoding succeeded, expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch {
        let message = "\(error)"
        #expect(message.hasPrefix("test.safetensors: "), "\(message)", sourceLocation: sourceLocation)
        #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
        #expect(!message.contains("\n"), sourceLocation: sourceLocation)
    }
}

private func bits(_ t: Tensor) -> [UInt32] { t.array.map(\.bitPattern) }

@Suite("Safetensors I/O")
struct SafetensorsTests {

    static func sampleFile() -> SafetensorsFile {
        let weird = Tensor(shape: [2, 3], values: [1.5, -0, .infinity, -.infinity, .leastNonzeroMagnitude, 3e38])
        let blocked = Tensor(shape: [1, 16, 2, 1], values: (0..<32).map { Float($0) }).toLayout(.blocked(16))
        return SafetensorsFile(
            tensors: [
                "layer1.0.conv1.weight": randomTensor([4, 3, 3, 3], seed: 1),
                "bn.num_batches_tracked": Tensor(shape: [], values: [391]),
                "steps": Tensor(shape: [3], values: [0, -5, 16_777_216]),
                "weird": weird,
                "empty": Tensor(shape: [0, 3]),
                "scalar": Tensor(shape: [], values: [0.25]),
                "blocked": blocked,
                "ünïcode \"name\"\n": Tensor(shape: [1], values: [7]),
            ],
            integerKeys: ["bn.num_batches_tracked", "steps"],
            metadata: ["format": "pt", "epoch": "12", "note": "tab\there \"quoted\" \\ é"])
    }

    @Test func roundTripInMemory() throws {
        let original = Self.sampleFile()
        let data = try original.encoded()
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        #expect((8 + headerLength) % 8 == 0)
        let back = try SafetensorsFile.decode(data)
        #expect(back.metadata == original.metadata)
        #expect(back.integerKeys == original.integerKeys)
        #expect(Set(back.tensors.keys) == Set(original.tensors.keys))
        for (name, t) in original.tensors {
            let r = try #require(back.tensors[name])
            #expect(r.shape == t.shape, "\(name)")
            #expect(r.layout == .plain)
            #expect(bits(r) == bits(t.toLayout(.plain)), "\(name)")
        }
        #expect(try back.encoded() == data)
    }

    @Test func roundTripThroughDisk() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("ckpt.safetensors")
        let original = Self.sampleFile()
        try original.write(to: url)
        try original.write(to: url)  // overwrite in place
        let back = try SafetensorsFile.read(url)
        #expect(try back.encoded() == original.encoded())
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["ckpt.safetensors"])
    }

    @Test func readsEveryDtypeFromFixture() throws {
        let url = fixtureURL("interop_dtypes.safetensors")
        let file: SafetensorsFile
        do { file = try SafetensorsFile.read(url) } catch { throw SafetensorsError(message: "\(error); \(fixtureHint)") }
        #expect(file.metadata == ["format": "pt"])
        #expect(file.integerKeys == ["bn.num_batches_tracked", "ids"])
        func values(_ key: String) -> [Float] { file.tensors[key]?.array ?? [] }
        #expect(file.tensors["conv.weight"]?.shape == [2, 3])
        #expect(values("conv.weight") == [-1.25, -0.75, -0.25, 0.25, 0.75, 1.25])
        #expect(values("bn.running_var") == [0.1, 2.5, 1e-3])
        #expect(file.tensors["bn.num_batches_tracked"]?.shape == [])
        #expect(values("bn.num_batches_tracked") == [1234])
        #expect(values("half") == [1, -2.5, 65504, 6.103515625e-05])
        #expect(values("brain") == [1, -3, 0.15625])
        #expect(values("ids") == [-7, 2147483647])
        #expect(file.tensors["empty"]?.shape == [0, 4])
    }

    /// The writer produces the Rust library's exact bytes (dtype-then-name order, padding).
    @Test func writerMatchesRustLibraryBytes() throws {
        let url = fixtureURL("interop_f32_i64.safetensors")
        let original = try Data(contentsOf: url)
        let file = try SafetensorsFile.decode(original)
        #expect(file.integerKeys == ["layer1.0.bn1.num_batches_tracked", "step"])
        #expect(file.tensors["fc.bias"]?.array == [3.0e-8, -1.5e9])
        #expect(file.tensors["step"]?.array == [5, -6])
        #expect(try file.encoded() == original, "\(fixtureHint)")
    }

    @Test func decodeErrors() {
        let ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
        #expect(throws: Never.self) { try SafetensorsFile.decode(rawFile(header: ok, data: Array(repeating: 0, count: 8))) }

        expectDecodeError(Data([1, 2, 3]), "truncated file: 3 bytes")
        expectDecodeError(rawFile(header: ok, data: Array(repeating: 0, count: 8), headerLength: 4096),
                          "truncated file: header length 4096")
        expectDecodeError(rawFile(header: ok, headerLength: 1 << 40), "exceeds the limit")
        expectDecodeError(rawFile(header: "{\"a\": [1, 2"), "bad header JSON")
        expectDecodeError(rawFile(header: "[1, 2]"), "bad header JSON")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}"), "needs dtype, shape and data_offsets")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}"), "non-negative")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}"), "expected [begin, end]")
        expectDecodeError(rawFile(header: "{\"__metadata__\":{\"x\":1}}"), "__metadata__ must map strings to strings")
        expectDecodeError(rawFile(header: ok, data: Array(repeating: 0, count: 4)), "offsets out of range")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data: Array(repeating: 0, count: 8)),
                          "offsets out of range")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data: Array(repeating: 0, count: 8)),
                          "shape/size mismatch: tensor 'a' of shape [3] and dtype F32 needs 12 bytes")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", data: Array(repeating: 0, count: 8)),
                          "shape/size mismatch")
        expectDecodeError(rawFile(header: "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", data: Array(repeating: 0, count: 8)),
                          "unsupported dtype U8")
        let gap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"
        expectDecodeError(rawFile(header: gap, data: Array(repeating: 0, count: 8)), "gap or overlap")
        let overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"
        expectDecodeError(rawFile(header: overlap, data: Array(repeating: 0, count: 8)), "gap or overlap")
        expectDecodeError(rawFile(header: ok, data: Array(repeating: 0, count: 12)), "tensors cover 8 bytes but the data section has 12")
    }

    @Test func readErrorsNameTheFile() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.safetensors")
        #expect(throws: SafetensorsError.self) { try SafetensorsFile.read(missing) }
        do { _ = try SafetensorsFile.read(missing) } catch { #expect("\(error)" == "\(missing.path): no such file") }

        let corrupt = dir.appendingPathComponent("corrupt.safetensors")
        var data = try Self.sampleFile().encoded()
        data.removeLast(5)
        try data.write(to: corrupt)
        do {
            _ = try SafetensorsFile.read(corrupt)
            Issue.record("a truncated checkpoint was accepted")
        } catch {
            #expect("\(error)".hasPrefix(corrupt.path + ": offsets out of range"), "\(error)")
        }
    }

    @Test func encodeErrors() {
        var f = SafetensorsFile(tensors: ["x": Tensor(shape: [2], values: [1, 2.5])], integerKeys: ["x"])
        #expect(throws: SafetensorsError.self) { try f.encoded() }
        do { _ = try f.encoded() } catch { #expect("\(error)".contains("non-integral value 2.5 at index 1")) }
        f.tensors["x"] = Tensor(shape: [1], values: [.nan])
        #expect(throws: SafetensorsError.self) { try f.encoded() }
        f = SafetensorsFile(tensors: [:], integerKeys: ["ghost"])
        #expect(throws: SafetensorsError.self) { try f.encoded() }
        f = SafetensorsFile(tensors: ["__metadata__": Tensor(shape: [1])])
        #expect(throws: SafetensorsError.self) { try f.encoded() }
    }

    @Test func atomicWriteFailuresAreErrorsAndKeepOldContent() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nowhere = dir.appendingPathComponent("no/such/dir/file.bin")
        do {
            try atomicWrite(Data([1, 2, 3]), to: nowhere)
            Issue.record("write into a missing directory succeeded")
        } catch {
            #expect(error is FileWriteError)
            #expect("\(error)".contains("cannot write \(nowhere.path)"), "\(error)")
            #expect("\(error)".contains("No such file or directory"), "\(error)")
        }
        // Renaming onto a directory fails after the data were written: the temporary file is removed
        // and the directory in the way is untouched.
        let blocker = dir.appendingPathComponent("blocker")
        try FileManager.default.createDirectory(at: blocker.appendingPathComponent("child"), withIntermediateDirectories: true)
        #expect(throws: FileWriteError.self) { try atomicWrite(Data([9]), to: blocker) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["blocker"])

        let target = dir.appendingPathComponent("f.bin")
        try atomicWrite(Data([1, 2, 3]), to: target)
        try atomicWrite(Data([4, 5]), to: target)
        #expect(try Data(contentsOf: target) == Data([4, 5]))
    }
}
