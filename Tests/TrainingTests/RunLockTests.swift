import Foundation
import Testing
@testable import Training

@Suite("Run lock")
struct RunLockTests {
    @Test("one holder at a time; the holder's host and pid are in the file; released on release")
    func exclusive() throws {
        let dir = RunDirectory(temporaryDirectory("lock"))
        #expect(!RunLock.isHeld(dir))
        let lock = try RunLock(dir)
        #expect(RunLock.isHeld(dir))
        let owner = try #require(RunLock.owner(dir))
        #expect(owner.pid == getpid() && owner.host == ProcessInfo.processInfo.hostName)
        // flock is per open file: a second taker in this process is refused like another process.
        #expect(throws: RunLockBusy.self) { try RunLock(dir, patience: 0) }
        do { _ = try RunLock(dir, patience: 0) } catch {
            #expect("\(error)" == "\(dir.url.path) is being trained by another process (\(owner)); it is not trained twice")
        }
        lock.release()
        #expect(!RunLock.isHeld(dir))
        let again = try RunLock(dir, patience: 0)
        again.release()
    }

    @Test("a trainer finding the run locked throws RunLockBusy before writing anything")
    func trainerLeavesALockedRunAlone() throws {
        let url = temporaryDirectory("lock-train")
        let dir = RunDirectory(url)
        let lock = try RunLock(dir)
        defer { lock.release() }
        let t = quietTrainer(smallConfig(train: 64, test: 32, epochs: 1), url)
        #expect(throws: RunLockBusy.self) { try t.train() }
        let files = try FileManager.default.contentsOfDirectory(atPath: url.path)
        #expect(files == [".lock"])
    }
}
