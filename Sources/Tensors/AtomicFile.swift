import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file write, with a one-line message naming the file and the OS error
/// (e.g. "cannot write /runs/x/last.safetensors: No space left on device").
public struct FileWriteError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Writes `data` to `url` atomically: the bytes go to a temporary file in the same directory, which is
/// fsync'ed and then renamed over `url`; the directory is fsync'ed last so the rename survives a crash.
/// Readers therefore see either the old file or the complete new one, never a partial write. On any
/// failure the temporary file is removed and the previous content of `url` is left untouched.
public func atomicWrite(_ data: Data, to url: URL) throws {
    let path = url.path
    let directory = url.deletingLastPathComponent().path
    let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    func failure(_ what: String, _ code: Int32 = errno) -> FileWriteError {
        FileWriteError(message: "cannot write \(path): \(what): \(String(cString: strerror(code)))")
    }

    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw failure("creating temporary file") }
    var written = 0
    var writeError: FileWriteError? = nil
    data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
        guard let base = raw.baseAddress else { return }
        while written < raw.count {
            let n = write(fd, base + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                writeError = failure("writing")
                return
            }
            written += n
        }
    }
    if writeError == nil, fsync(fd) != 0 { writeError = failure("fsync") }
    if close(fd) != 0, writeError == nil { writeError = failure("close") }
    if writeError == nil, rename(temporary, path) != 0 { writeError = failure("renaming temporary file") }
    if let writeError {
        unlink(temporary)
        throw writeError
    }
    let dirfd = open(directory, O_RDONLY | O_CLOEXEC)
    if dirfd >= 0 {
        _ = fsync(dirfd)
        close(dirfd)
    }
}

/// A Foundation file error as a short reason ("No such file or directory", "Permission denied"): the
/// POSIX error underneath when there is one, never "The operation could not be completed
/// (NSCocoaErrorDomain error 256)". Callers name the path themselves.
public func fileErrorReason(_ error: Error) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSCocoaErrorDomain {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "No such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: return "Permission denied"
        case .fileWriteOutOfSpace: return "No space left on device"
        case .fileWriteVolumeReadOnly: return "Read-only file system"
        case .fileWriteFileExists: return "File exists"
        case .fileReadCorruptFile: return "not readable as expected (corrupt or not a regular file)"
        case .fileReadInapplicableStringEncoding: return "not valid UTF-8 text"
        case .fileReadTooLarge: return "too large to read"
        case .fileReadUnknown, .fileWriteUnknown:
            return "cannot be read (a directory, or an unreadable file)"
        default: break
        }
    }
    return ns.localizedDescription
}
