import CZlib
import Foundation

/// Whole-file reads with errors that name the file.
enum FileIO {
    /// The size in bytes of the regular file at `path` (symbolic links followed: a dataset folder of links
    /// to the files is measured by the files), or nil when there is none.
    static func size(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    /// The uncompressed size modulo 2³² a gzip file records in its last 4 bytes (ISIZE, RFC 1952), or nil
    /// when the file is not gzip. A truncated file's last bytes are payload, so they rarely match.
    static func gzipRecordedSize(_ path: String) -> UInt32? {
        guard let size = size(path), size >= 18, let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var magic = [UInt8](repeating: 0, count: 2), tail = [UInt8](repeating: 0, count: 4)
        guard fread(&magic, 1, 2, f) == 2, magic == [0x1f, 0x8b], fseek(f, -4, SEEK_END) == 0, fread(&tail, 1, 4, f) == 4 else { return nil }
        return UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24
    }

    static func exists(_ path: String) -> Bool { size(path) != nil }

    /// All bytes of a file.
    static func read(_ path: String) throws -> [UInt8] {
        guard let size = size(path) else { throw DatasetError.unreadable(file: path, reason: "no such file") }
        guard let f = fopen(path, "rb") else {
            throw DatasetError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(f) }
        var bytes = [UInt8](repeating: 0, count: size)
        let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard got == size else {
            throw DatasetError.unreadable(file: path, reason: "read \(got) of \(size) bytes")
        }
        return bytes
    }

    /// All bytes of a gzip file, decompressed by zlib; a file without a gzip header is returned as is
    /// (zlib's gzread passes plain files through), so `.gz` and uncompressed copies read the same way.
    /// A damaged or truncated gzip stream throws `.unreadable` with zlib's message.
    static func readGzip(_ path: String) throws -> [UInt8] {
        guard exists(path) else { throw DatasetError.unreadable(file: path, reason: "no such file") }
        guard let gz = gzopen(path, "rb") else {
            throw DatasetError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        defer { gzclose(gz) }
        gzbuffer(gz, 1 << 18)
        var bytes = [UInt8]()
        let chunk = 1 << 20
        var used = 0
        while true {
            if bytes.count - used < chunk { bytes.append(contentsOf: repeatElement(0, count: max(chunk, bytes.count))) }
            let got = bytes.withUnsafeMutableBytes { gzread(gz, $0.baseAddress! + used, UInt32(chunk)) }
            if got <= 0 { break }
            used += Int(got)
        }
        var errnum: Int32 = 0
        let message = gzerror(gz, &errnum).map { String(cString: $0) } ?? ""
        if errnum != Z_OK && errnum != Z_STREAM_END {
            throw DatasetError.unreadable(file: path, reason: "gzip: \(message.isEmpty ? "error \(errnum)" : message)")
        }
        bytes.removeSubrange(used...)
        return bytes
    }
}
