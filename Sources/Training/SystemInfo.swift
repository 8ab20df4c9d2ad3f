import Foundation
import Kernels

/// Provenance stored in every run record: git revision, library versions, CPU, the ISAs oneDNN and OpenBLAS
/// dispatch to (absent in records made before they were kept), threads.
public struct SystemInfo: Codable, Equatable, Sendable {
    public var gitRevision: String
    public var gitDirty: Bool
    public var swiftVersion: String
    public var onednnVersion: String
    public var cpu: String
    /// oneDNN's effective ISA and OpenBLAS's core (`InstructionSets`); bits are reproducible only on the same pair.
    public var onednnISA: String?
    public var openblasCore: String?
    public var threads: Int
    public var hostname: String

    enum CodingKeys: String, CodingKey {
        case cpu, threads, hostname
        case gitRevision = "git_revision", gitDirty = "git_dirty", swiftVersion = "swift_version", onednnVersion = "onednn_version"
        case onednnISA = "onednn_isa", openblasCore = "openblas_core"
    }

    public static func current() -> SystemInfo {
        let (rev, dirty) = gitState()
        // The compiler's version (the package builds in the Swift 5 language mode, which `#if swift` would report).
        #if compiler(>=6.3)
        let swift = "6.3"
        #elseif compiler(>=6.0)
        let swift = "6.x"
        #else
        let swift = "5.x"
        #endif
        return SystemInfo(gitRevision: rev, gitDirty: dirty, swiftVersion: swift,
                          onednnVersion: dnnlVersion(), cpu: cpuModel(), onednnISA: InstructionSets.oneDNN,
                          openblasCore: InstructionSets.openBLAS, threads: Threads.count,
                          hostname: ProcessInfo.processInfo.hostName)
    }

    /// "oneDNN avx2, OpenBLAS Haswell"; nil when the record predates them.
    public var instructionSets: String? {
        guard let onednnISA, let openblasCore else { return nil }
        return "oneDNN \(onednnISA), OpenBLAS \(openblasCore)"
    }

    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        return "unknown"
    }

    /// The revision of the source tree this binary runs from (SQAKD_GIT_REVISION overrides), "unknown" outside git.
    static func gitState() -> (String, Bool) {
        if let r = ProcessInfo.processInfo.environment["SQAKD_GIT_REVISION"] { return (r, false) }
        func git(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return nil }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let rev = git(["rev-parse", "HEAD"]) else { return ("unknown", false) }
        let dirty = !(git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty
        return (rev, dirty)
    }
}
