import Foundation
import Testing
@testable import Bench
@testable import Training

/// The Table 4 CIFAR-10 suite at its smoke budget, one seed: teachers resnet20 and vgg8 (plan order), then
/// 6 resnet20 students (EWGS W1A1/W2A2/W4A4 × baseline/SQAKD) and 2 vgg8 students.
private func table4Plan(results: URL = URL(fileURLWithPath: "/nonexistent")) throws -> Plan {
    try Plan(suite: try Suite.load(repoRoot.appendingPathComponent("suites/table4-cifar10.yaml")), budget: "smoke", seeds: 1,
             resultsRoot: results)
}

private func started(_ steps: [SweepScheduler.Step]) -> [String] {
    steps.compactMap { if case .start(let r) = $0 { return r.label } else { return nil } }
}

private func skipped(_ steps: [SweepScheduler.Step]) -> [String] {
    steps.compactMap { if case .skip(let r, _) = $0 { return r.label } else { return nil } }
}

@Suite("Sweep scheduler (no processes)")
struct SweepSchedulerTests {
    @Test("teachers first; a teacher's students start once it has finished, in plan order; nothing twice")
    func ordering() throws {
        let plan = try table4Plan()
        #expect(plan.runs.count == 10 && plan.teachers.count == 2)
        let (r20, vgg) = (plan.teachers[0], plan.teachers[1])
        var s = try SweepScheduler(runs: plan.runs, store: StoreSnapshot())
        #expect(s.alreadyFinished == 0 && s.waitingCount == 10)
        #expect(started(s.next(limit: 100)) == [r20.label, vgg.label])
        #expect(s.next(limit: 100).isEmpty)   // students wait; the teachers are not handed out again
        s.finished(vgg.id)
        let vggStudents = plan.students.filter { $0.teacherID == vgg.id }.map(\.label)
        #expect(vggStudents.count == 2)
        #expect(started(s.next(limit: 100)) == vggStudents)
        s.finished(r20.id)
        let r20Students = plan.students.filter { $0.teacherID == r20.id }.map(\.label)
        #expect(r20Students.count == 6)
        #expect(started(s.next(limit: 100)) == r20Students)
        #expect(s.next(limit: 100).isEmpty && s.startedCount == 8 && s.waitingCount == 0)
        for r in plan.students { s.finished(r.id) }
        #expect(s.isComplete && s.finishedCount == 10 && s.failedCount == 0)
    }

    @Test("a failed teacher's students are skipped with the reason; other teachers' students go on")
    func teacherFailedSkip() throws {
        let plan = try table4Plan()
        let (r20, vgg) = (plan.teachers[0], plan.teachers[1])
        var s = try SweepScheduler(runs: plan.runs, store: StoreSnapshot())
        _ = s.next(limit: 2)
        s.failed(r20.id, reason: "exit status 1: boom")
        s.finished(vgg.id)
        let steps = s.next(limit: 100)
        #expect(skipped(steps) == plan.students.filter { $0.teacherID == r20.id }.map(\.label))
        #expect(started(steps) == plan.students.filter { $0.teacherID == vgg.id }.map(\.label))
        for case .skip(_, let reason) in steps { #expect(reason == SweepScheduler.teacherFailed) }
        #expect(s.phase(r20.id) == .failed(reason: "exit status 1: boom"))
        #expect(s.failedCount == 7 && s.startedCount == 2 && s.waitingCount == 0)
    }

    @Test("the limit caps the runs started per call; skips do not count against it")
    func concurrencyLimit() throws {
        let plan = try table4Plan()
        let (r20, vgg) = (plan.teachers[0], plan.teachers[1])
        var s = try SweepScheduler(runs: plan.runs, store: StoreSnapshot())
        #expect(s.next(limit: 0).isEmpty)
        #expect(started(s.next(limit: 1)) == [r20.label])
        s.failed(r20.id, reason: "x")
        // Plan order: the vgg8 teacher comes before the resnet20 students and takes the one slot.
        let first = s.next(limit: 1)
        #expect(started(first) == [vgg.label] && skipped(first).isEmpty)
        // With a slot free, the six resnet20 students are skipped on the way; vgg8's students wait for it.
        let second = s.next(limit: 1)
        #expect(skipped(second).count == 6 && started(second).isEmpty)
        s.finished(vgg.id)
        #expect(started(s.next(limit: 1)).count == 1)
        #expect(started(s.next(limit: 1)).count == 1)
        #expect(s.next(limit: 1).isEmpty && !s.isComplete && s.startedCount == 2)
    }

    @Test("resume: finished runs are not trained again, interrupted and failed ones are")
    func resume() throws {
        let plan = try table4Plan()
        let r20 = plan.teachers[0], vgg = plan.teachers[1]
        let st = plan.students.filter { $0.teacherID == r20.id }
        var store = StoreSnapshot(checkpoints: [r20.id])
        store.states[r20.id] = .finished
        store.states[vgg.id] = .finished
        store.states[st[0].id] = .finished
        store.states[st[1].id] = .interrupted(epochsDone: 1)
        store.states[st[2].id] = .failed(reason: "earlier")
        var s = try SweepScheduler(runs: plan.runs, store: store)
        // vgg8's checkpoint is gone and its students still have to be trained: it is trained again first.
        #expect(s.retrained.map(\.label) == [vgg.label])
        #expect(s.alreadyFinished == 2 && s.waitingCount == 8)
        let first = started(s.next(limit: 100))
        #expect(first == [vgg.label] + st.dropFirst().map(\.label))
        #expect(!first.contains(st[0].label) && !first.contains(r20.label))

        // A finished teacher without checkpoint whose students are all finished is left alone.
        var done = StoreSnapshot()
        for r in plan.runs { done.states[r.id] = .finished }
        let all = try SweepScheduler(runs: plan.runs, store: done)
        #expect(all.retrained.isEmpty && all.alreadyFinished == 10 && all.isComplete)
    }

    @Test("a run locked by another process is elsewhere: not handed out, its students wait, then read from the store")
    func elsewhere() throws {
        let plan = try table4Plan()
        let r20 = plan.teachers[0], vgg = plan.teachers[1]
        let r20Students = plan.students.filter { $0.teacherID == r20.id }
        var busy = StoreSnapshot()
        busy.states[r20.id] = .running(epochsDone: 0)
        busy.states[r20Students[3].id] = .running(epochsDone: 0)
        var s = try SweepScheduler(runs: plan.runs, store: busy)
        #expect(s.elsewhere.map(\.label) == [r20.label, r20Students[3].label] && s.elsewhereCount == 2)
        // Only vgg8 starts; resnet20's students wait for their teacher elsewhere, even for an executor that
        // orders dependencies (it has no task to wait on).
        #expect(started(s.next(limit: 100, teacherStartedSuffices: true)) == [vgg.label] + plan.students.filter { $0.teacherID == vgg.id }.map(\.label))
        #expect(!s.isComplete)
        // The teacher finished there: its students (but not the one trained elsewhere) are handed out.
        #expect(s.elsewhereEnded(r20.id, state: .finished) == .finished)
        #expect(started(s.next(limit: 100)) == r20Students.enumerated().filter { $0.offset != 3 }.map(\.element.label))
        // A process that stopped early gives the run back; one that failed there is failed here.
        #expect(s.elsewhereEnded(r20Students[3].id, state: .interrupted(epochsDone: 1)) == .waiting)
        #expect(started(s.next(limit: 100)) == [r20Students[3].label])
        s.movedElsewhere(r20Students[3].id)
        #expect(s.elsewhereEnded(r20Students[3].id, state: .running(epochsDone: 1)) == .elsewhere)
        #expect(s.elsewhereEnded(r20Students[3].id, state: .failed(reason: "diverged")) == .failed(reason: "diverged"))
        #expect(s.failedCount == 1 && s.elsewhereCount == 0 && s.finishedCount == 1)
    }

    @Test("runs the executor already holds (queued by an earlier sweep) are adopted as started")
    func adopted() throws {
        let plan = try table4Plan()
        let r20 = plan.teachers[0]
        var store = StoreSnapshot()
        store.states[r20.id] = .running(epochsDone: 0)
        var s = try SweepScheduler(runs: plan.runs, store: store)
        s.adopt([r20.id, plan.students[0].id])
        #expect(s.phase(r20.id) == .started && s.phase(plan.students[0].id) == .started && s.elsewhereCount == 0)
        let next = started(s.next(limit: .max, teacherStartedSuffices: true))
        #expect(next.count == 8 && !next.contains(r20.label) && !next.contains(plan.students[0].label))
    }

    @Test("an executor that orders dependencies gets students as soon as their teacher has started")
    func dependenciesOrderedByTheExecutor() throws {
        let plan = try table4Plan()
        var s = try SweepScheduler(runs: plan.runs, store: StoreSnapshot())
        #expect(started(s.next(limit: .max, teacherStartedSuffices: true)) == plan.runs.map(\.label))
        s.failed(plan.teachers[0].id, reason: "x")
        #expect(s.next(limit: .max, teacherStartedSuffices: true).isEmpty)   // already handed out: the executor reports them
    }

    @Test("students whose teacher is not in the plan are abandoned with the reason")
    func teacherMissing() throws {
        let plan = try table4Plan()
        var s = try SweepScheduler(runs: plan.students, store: StoreSnapshot())
        #expect(s.next(limit: 100).isEmpty && s.startedCount == 0)
        #expect(s.abandonWaiting().count == 8)
        #expect(s.isComplete && s.phase(plan.students[0].id) == .failed(reason: SweepScheduler.teacherMissing))
    }
}

@Suite("Sweep ETA")
struct SweepETATests {
    @Test("cost = epochs left × images (train_limit) × the distillation cost for SQAKD students")
    func cost() throws {
        let plan = try table4Plan()
        let teacher = plan.teachers[0]
        let baseline = plan.students.first { $0.cell.method == .baseline }!
        let sqakd = plan.students.first { $0.cell.method == .sqakd }!
        let eta = SweepETA(trainImages: 50_000, distillationCost: 1.5)
        #expect(teacher.config.epochs == 1 && teacher.config.trainLimit == 256)
        #expect(eta.cost(of: teacher, epochsDone: 0) == 256)
        #expect(eta.cost(of: teacher, epochsDone: 1) == 0)
        #expect(eta.cost(of: baseline, epochsDone: 0) == 256)
        #expect(eta.cost(of: sqakd, epochsDone: 0) == 384)
        #expect(SweepETA(trainImages: 100).cost(of: sqakd, epochsDone: 0) == 100 * SweepETA.defaultDistillationCost)
    }

    @Test("ETA = remaining cost × seconds per cost of the finished runs ÷ parallel runs")
    func estimate() {
        var eta = SweepETA(trainImages: 1000)
        eta.add(100); eta.add(300); eta.add(600)
        #expect(eta.text(parallel: 2) == "ETA unknown until a run finishes")
        eta.ended(300, seconds: 0, finished: false)   // failed: leaves the remainder, does not time anything
        #expect(eta.secondsLeft(parallel: 1) == nil)
        eta.ended(100, seconds: 50, finished: true)   // 0.5 s per unit
        #expect(eta.secondsLeft(parallel: 1) == 300)
        #expect(eta.secondsLeft(parallel: 2) == 150)
    }

    @Test("the distillation cost is measured per cell (same threads and budget) from finished records")
    func measured() throws {
        let plan = try table4Plan()
        func record(_ r: PlannedRun, seconds: Double, threads: Int = 1) -> RunRecord {
            var rec = syntheticRecord(r, curve: [50])
            rec.wallSeconds = seconds
            rec.system.threads = threads
            return rec
        }
        let w1 = plan.students.filter { $0.cell.bits == 1 && $0.cell.model == "resnet20" }
        let w2 = plan.students.filter { $0.cell.bits == 2 && $0.cell.model == "resnet20" }
        let b1 = w1.first { $0.cell.method == .baseline }!, s1 = w1.first { $0.cell.method == .sqakd }!
        let b2 = w2.first { $0.cell.method == .baseline }!, s2 = w2.first { $0.cell.method == .sqakd }!
        #expect(SweepETA.measuredDistillationCost([]) == nil)
        #expect(SweepETA.measuredDistillationCost([record(b1, seconds: 10)]) == nil)
        // One pair: 12/10. A pair at other threads does not mix with it.
        #expect(SweepETA.measuredDistillationCost([record(b1, seconds: 10), record(s1, seconds: 12), record(s2, seconds: 99, threads: 2)]) == 1.2)
        // Another distillation method's run (a Table 7 row in the same folder) does not count as SQAKD.
        var kd = record(s1, seconds: 99)
        kd.config.distill = .kd
        #expect(SweepETA.measuredDistillationCost([record(b1, seconds: 10), record(s1, seconds: 12), kd]) == 1.2)
        #expect(SweepETA.measuredDistillationCost([record(b1, seconds: 10), kd]) == nil)
        // Two cells, 1.25 and 0.8: geometric mean 1; teachers are ignored.
        let m = SweepETA.measuredDistillationCost([record(b1, seconds: 8), record(s1, seconds: 10), record(b2, seconds: 10),
                                                   record(s2, seconds: 8), record(plan.teachers[0], seconds: 1000)])
        #expect(abs(m! - 1) < 1e-12)
    }

    @Test("the committed Fashion-MNIST records measure SQAKD at about 1.2 × its baseline")
    func committedRecords() throws {
        let records = SuiteResults.readRecords(repoRoot.appendingPathComponent("results/fashion-mnist/runs"))
        try #require(records.count >= 37)
        let m = try #require(SweepETA.measuredDistillationCost(records))
        #expect(m > 1.1 && m < 1.3, "\(m)")
    }
}

/// Trains nothing: a run "finishes" by getting a synthetic finished record, or fails when its label is in
/// `failing`. Records what was started, in order, and the most runs in flight at once.
private final class FakeExecutor: Executor {
    let slots: Int
    let failing: Set<String>
    var startedLabels: [String] = []
    var maxInFlight = 0
    private var inFlight: [PlannedRun] = []

    init(slots: Int, failing: Set<String> = []) {
        self.slots = slots
        self.failing = failing
    }

    var summary: String { "fake, \(slots) slot(s)" }
    var ordersDependencies: Bool { false }

    func start(_ runs: [PlannedRun]) -> [(run: PlannedRun, reason: String)] {
        inFlight += runs
        startedLabels += runs.map(\.label)
        maxInFlight = max(maxInFlight, inFlight.count)
        return []
    }

    func waitForEnds(timeout: Double?) -> [RunEnd] {
        guard let r = inFlight.first else { return [] }
        inFlight.removeFirst()
        if failing.contains(r.label) {
            return [RunEnd(run: r, seconds: 1, exitedCleanly: false, exitStatus: 1, reason: "exit status 1: boom")]
        }
        try! r.runDirectory.writeRecord(syntheticRecord(r, curve: Array(repeating: 50, count: r.config.epochs)))
        return [RunEnd(run: r, seconds: 1, exitedCleanly: true, exitStatus: 0, reason: "exit status 0")]
    }
}

@Suite("Sweep driver with a fake executor")
struct SweepDriverTests {
    @Test("a failed teacher: recorded with its reason, its students skipped, the rest trained; a rerun trains only those")
    func failedTeacherThenResume() throws {
        let data = tempDir("driver-data"), results = tempDir("driver")
        makeCIFAR10(root: data)
        let plan = try table4Plan(results: results)
        let vgg = plan.teachers[1]
        var lines: [String] = []
        let fake = FakeExecutor(slots: 2, failing: [vgg.label])
        let summary = try Sweep(plan: plan, executor: fake, dataRoot: data.path, output: { lines.append($0) }).run()
        let out = lines.joined(separator: "\n")
        #expect(lines.first?.contains("10 runs, 0 already finished, 10 to train; fake, 2 slot(s); results in") == true, "\(out)")
        #expect(out.contains("FAILED vgg8/fp/teacher/seed0: exit status 1: boom"), "\(out)")
        #expect(out.contains("SKIP   vgg8/ewgs/W2A2/baseline/seed0: its teacher failed"), "\(out)")
        #expect(out.contains("[10/10]") && out.contains("7/10 runs finished (7 trained now, 0 before), 3 failed"), "\(out)")
        #expect(summary.finished == 7 && summary.failures.count == 3)
        #expect(fake.maxInFlight == 2 && Set(fake.startedLabels).count == fake.startedLabels.count)
        #expect(fake.startedLabels.prefix(2) == [plan.teachers[0].label, vgg.label])
        #expect(!fake.startedLabels.contains { $0.hasPrefix("vgg8/ewgs") })
        let failure = try #require(SweepFailure.read(vgg.runDirectory))
        #expect(failure.reason == "exit status 1: boom" && failure.exitStatus == 1)

        lines = []
        let again = FakeExecutor(slots: 1)
        let second = try Sweep(plan: plan, executor: again, dataRoot: data.path, output: { lines.append($0) }).run()
        #expect(again.startedLabels == [vgg.label] + plan.students.filter { $0.teacherID == vgg.id }.map(\.label))
        #expect(second.finished == 10 && second.failures.isEmpty && second.alreadyFinished == 7)
        #expect(lines.first?.contains("7 already finished, 3 to train") == true)
        #expect(SweepFailure.read(vgg.runDirectory) == nil)
    }
}
