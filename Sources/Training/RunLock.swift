import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The lock on a run directory, held by whoever trains the run (`Trainer.train`, so a sweep's child, a
/// Slurm task and a hand-started `sqakd train` alike): `flock(LOCK_EX)` on `<run dir>/.lock`. The kernel
/// drops it when the holder exits, however it exits (on NFS, Linux maps `flock` to a whole-file POSIX lock
/// that the server drops with the client), so a lock is never stale and nothing needs cleaning after a
/// kill. The holder writes its owner line (`host pid since`) into the file for messages; the file is never
/// renamed or deleted, which would orphan the lock. Needs a results root that supports locks (not an NFS
/// mount with `nolock`, where `flock` only sees one node): a failing `flock` is an error, not a free lock.
public final class RunLock {
    /// Who holds (or last held) a lock: the first line of `.lock`.
    public struct Owner: Equatable, Sendable, CustomStringConvertible {
        public var host: String
        public var pid: Int32
        public var since: String

        public init(host: String, pid: Int32, since: String) {
            self.host = host
            self.pid = pid
            self.since = since
        }

        public static var current: Owner {
            Owner(host: ProcessInfo.processInfo.hostName, pid: getpid(), since: ISO8601DateFormatter().string(from: Date()))
        }

        /// "host pid since", one line.
        public var line: String { "\(host) \(pid) \(since)" }

        public init?(line: String) {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count == 3, let pid = Int32(f[1]) else { return nil }
            self.init(host: String(f[0]), pid: pid, since: String(f[2]))
        }

        public var description: String { "pid \(pid) on \(host) since \(since)" }
    }

    /// `sqakd train`'s exit status when another process holds the run's lock (sysexits' EX_TEMPFAIL):
    /// a sweep reads it as "running elsewhere", not as a failure.
    public static let busyExitStatus: Int32 = 75

    let handle: FileHandle
    private var released = false

    static func url(_ dir: RunDirectory) -> URL { dir.url.appendingPathComponent(".lock") }

    /// Takes the lock, or throws `RunLockBusy` when another process holds it. A busy lock is tried a few
    /// times over `patience` seconds: `isHeld` takes a shared lock for an instant, which must not make a
    /// trainer give up.
    public init(_ dir: RunDirectory, patience: Double = 1) throws {
        let url = Self.url(dir)
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConfigError("cannot open \(url.path): \(String(cString: strerror(errno)))") }
        let deadline = Date().addingTimeInterval(patience)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw ConfigError("cannot lock \(url.path): \(String(cString: strerror(code))); the results folder must support file locks")
            }
            guard Date() < deadline else {
                close(fd)
                throw RunLockBusy(directory: dir.url.path, owner: Self.owner(dir))
            }
            usleep(100_000)
        }
        let line = Data((Owner.current.line + "\n").utf8)
        _ = ftruncate(fd, 0)
        _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Releases the lock (closes the file); idempotent. `deinit` releases it too.
    public func release() {
        if released { return }
        released = true
        try? handle.close()
    }

    deinit { release() }

    /// Whether some process holds the lock now.
    public static func isHeld(_ dir: RunDirectory) -> Bool {
        let fd = open(url(dir).path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// The owner line in `.lock`: the holder while `isHeld`, else the last holder.
    public static func owner(_ dir: RunDirectory) -> Owner? {
        guard let text = try? String(contentsOf: url(dir), encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { Owner(line: String($0)) }
    }
}

/// Another process holds a run's lock: the run is being trained elsewhere (not a failure).
public struct RunLockBusy: Error, CustomStringConvertible {
    public var directory: String
    public var owner: RunLock.Owner?

    public var description: String {
        "\(directory) is being trained by another process" + (owner.map { " (\($0))" } ?? "") + "; it is not trained twice"
    }
}
