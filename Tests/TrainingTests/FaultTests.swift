import Datasets
import Foundation
import Kernels
import Models
import NN
import Tensors
import Testing
@testable import Training

/// 96 training and 50 test Fashion-MNIST images: two batches (64 + 32) per epoch.
private func tinyFashionMNIST() throws -> (train: Dataset, test: Dataset) {
    let d = try smallFashionMNIST()
    return (d.train.limited(.first(96)), d.test.limited(.first(50)))
}

private func tinyConfig(epochs: Int = 3) -> TrainConfig {
    var c = TrainConfig()
    c.model = "resnet20"
    c.epochs = epochs
    c.batchSize = 64
    c.seed = 4
    return c
}

private func copyDirectory(_ from: URL, _ to: URL) throws {
    try? FileManager.default.removeItem(at: to)
    try FileManager.default.copyItem(at: from, to: to)
}

private func files(_ dir: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
}

private func bytes(_ dir: URL, _ name: String) -> Data? { try? Data(contentsOf: dir.appendingPathComponent(name)) }

/// An epoch's files commit as one unit (RunDirectory): a kill at any step of the commit, simulated by
/// putting the directory in the state the kill leaves, resumes to the uninterrupted run's record and bytes.
@Suite(.serialized) struct EpochUnitTests {
    init() { Threads.set(2) }

    /// The uninterrupted 3-epoch run, with copies of its folder after epochs 1 and 2.
    struct Reference {
        var final: RunRecord
        var dir: URL, afterEpoch1: URL, afterEpoch2: URL
    }

    /// Built once for the suite's tests (they run one after the other) and kept for the process.
    nonisolated(unsafe) static var cached: Reference?

    func reference(_ data: (train: Dataset, test: Dataset)) throws -> Reference {
        if let r = Self.cached { return r }
        let dir = temporaryDirectory("unit-ref"), s1 = temporaryDirectory("unit-s1"), s2 = temporaryDirectory("unit-s2")
        _ = try runTrainer(tinyConfig(), dir, data: data, stopAfter: 1)
        try copyDirectory(dir, s1)
        _ = try runTrainer(tinyConfig(), dir, data: data, stopAfter: 1)
        try copyDirectory(dir, s2)
        let final = try runTrainer(tinyConfig(), dir, data: data)
        Self.cached = Reference(final: final, dir: dir, afterEpoch1: s1, afterEpoch2: s2)
        return Self.cached!
    }

    /// Resumes `dir` and checks it ends as the reference: same numbers, same checkpoint bytes, nothing stale.
    func expectResumesToReference(_ dir: URL, _ ref: Reference, _ data: (train: Dataset, test: Dataset), _ label: String) throws {
        let r = try runTrainer(tinyConfig(), dir, data: data)
        #expect(r.status == "finished", "\(label)")
        #expect(r.epochs.map(\.numbers) == ref.final.epochs.map(\.numbers), "\(label): numbers differ")
        #expect(r.bestEpoch == ref.final.bestEpoch && r.bestTop1 == ref.final.bestTop1, "\(label)")
        for name in ["epoch-0003.safetensors", "epoch-0003.state.safetensors", "best.safetensors"] {
            #expect(bytes(dir, name) != nil && bytes(dir, name) == bytes(ref.dir, name), "\(label): \(name) differs")
        }
        #expect(files(dir).filter { $0.hasSuffix(".safetensors") } == files(ref.dir).filter { $0.hasSuffix(".safetensors") },
                "\(label): \(files(dir))")
        #expect(!files(dir).contains { $0.hasPrefix(".") && $0.contains(".tmp-") }, "\(label): temporaries left: \(files(dir))")
    }

    @Test func killAtEveryStepOfAnEpochCommitResumes() throws {
        let data = try tinyFashionMNIST()
        let ref = try reference(data)
        #expect(files(ref.afterEpoch1).contains("epoch-0001.safetensors") && !files(ref.afterEpoch2).contains("epoch-0001.safetensors"))

        // The writes of epoch 2's commit, in order; a kill after step k leaves steps 0..<k done.
        let s2 = ref.afterEpoch2
        let steps: [(String, (URL) throws -> Void)] = [
            ("a half-written temporary", { d in
                try Data(repeating: 7, count: 100).write(to: d.appendingPathComponent(".epoch-0002.state.safetensors.tmp-1-2")) }),
            ("the state file", { d in try bytes(s2, "epoch-0002.state.safetensors")!.write(to: d.appendingPathComponent("epoch-0002.state.safetensors")) }),
            ("the model file", { d in try bytes(s2, "epoch-0002.safetensors")!.write(to: d.appendingPathComponent("epoch-0002.safetensors")) }),
            ("record.json (the commit)", { d in try bytes(s2, "record.json")!.write(to: d.appendingPathComponent("record.json")) }),
            ("best.safetensors", { d in try bytes(s2, "best.safetensors")!.write(to: d.appendingPathComponent("best.safetensors")) }),
        ]
        for k in 1...steps.count {
            let dir = temporaryDirectory("unit-kill\(k)")
            defer { try? FileManager.default.removeItem(at: dir) }
            try copyDirectory(ref.afterEpoch1, dir)
            for step in steps.prefix(k) { try step.1(dir) }
            try expectResumesToReference(dir, ref, data, "killed after \(steps[k - 1].0)")
        }
    }

    /// Committed results keep records, not checkpoints: a finished run without them trains again, to the
    /// same numbers and bytes, when a student needs its `best`.
    @Test func finishedRunWithoutCheckpointsTrainsAgain() throws {
        let data = try tinyFashionMNIST()
        let ref = try reference(data)
        let dir = temporaryDirectory("unit-clone")
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyDirectory(ref.dir, dir)
        for name in files(dir) where name.hasSuffix(".safetensors") { try FileManager.default.removeItem(at: dir.appendingPathComponent(name)) }
        try expectResumesToReference(dir, ref, data, "finished, checkpoints removed")
    }

    /// Records name the ISAs oneDNN and OpenBLAS ran on; a run resumed on other ones says so in its log (its numbers
    /// from there on are not an uninterrupted run's) and records the new ones. Records from before keep decoding.
    @Test func resumeOnOtherInstructionSetsIsLogged() throws {
        let data = try tinyFashionMNIST()
        let ref = try reference(data)
        #expect(ref.final.system.onednnISA == InstructionSets.oneDNN && ref.final.system.openblasCore == InstructionSets.openBLAS)
        #expect(!InstructionSets.oneDNN.isEmpty && InstructionSets.openBLAS != "unknown")
        #expect(ref.final.system.swiftVersion != "5.x", "the compiler's version, not the language mode's")
        let dir = temporaryDirectory("unit-isa")
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyDirectory(ref.afterEpoch1, dir)
        let recordURL = dir.appendingPathComponent("record.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: recordURL)) as? [String: Any])
        var system = try #require(json["system"] as? [String: Any])
        system["onednn_isa"] = "sse41"
        json["system"] = system
        try JSONSerialization.data(withJSONObject: json).write(to: recordURL)
        let r = try runTrainer(tinyConfig(), dir, data: data)
        let log = try String(contentsOf: dir.appendingPathComponent("log.txt"), encoding: .utf8)
        #expect(log.contains("resumed on other instruction sets (oneDNN sse41, OpenBLAS \(InstructionSets.openBLAS) before"), "\(log)")
        #expect(r.system.onednnISA == InstructionSets.oneDNN)

        // A record of before (no ISA fields) decodes, with none.
        system["onednn_isa"] = nil
        system["openblas_core"] = nil
        let old = try JSONDecoder().decode(SystemInfo.self, from: JSONSerialization.data(withJSONObject: system))
        #expect(old.onednnISA == nil && old.instructionSets == nil)
    }

    /// A run left in the layout before epoch units (`last.safetensors` + `last.state.safetensors`) resumes
    /// to the same bytes, and its old files go once the next epoch has committed.
    @Test func legacyLayoutResumes() throws {
        let data = try tinyFashionMNIST()
        let ref = try reference(data)
        let dir = temporaryDirectory("unit-legacy")
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyDirectory(ref.afterEpoch1, dir)
        let fm = FileManager.default
        try fm.moveItem(at: dir.appendingPathComponent("epoch-0001.safetensors"), to: dir.appendingPathComponent("last.safetensors"))
        try fm.moveItem(at: dir.appendingPathComponent("epoch-0001.state.safetensors"), to: dir.appendingPathComponent("last.state.safetensors"))
        try expectResumesToReference(dir, ref, data, "legacy layout")
        #expect(!files(dir).contains("last.safetensors") && !files(dir).contains("last.state.safetensors"))

        // The old layout's fault: a kill between last.safetensors and record.json left the model one epoch
        // ahead of the record. Resuming used to train that epoch twice; now the run starts over, to the same end.
        let torn = temporaryDirectory("unit-legacy-torn")
        defer { try? FileManager.default.removeItem(at: torn) }
        try copyDirectory(ref.afterEpoch1, torn)
        try fm.removeItem(at: torn.appendingPathComponent("epoch-0001.safetensors"))
        try fm.removeItem(at: torn.appendingPathComponent("epoch-0001.state.safetensors"))
        try epoch2File(ref, "epoch-0002.safetensors").write(to: torn.appendingPathComponent("last.safetensors"))
        try epoch2File(ref, "epoch-0002.state.safetensors").write(to: torn.appendingPathComponent("last.state.safetensors"))
        try expectResumesToReference(torn, ref, data, "legacy layout, record behind the model")
    }

    private func epoch2File(_ ref: Reference, _ name: String) throws -> Data {
        try Data(contentsOf: ref.afterEpoch2.appendingPathComponent(name))
    }
}

/// Divergence stops a run with one line, records it as failed and keeps the last finite checkpoint.
@Suite(.serialized) struct DivergenceTests {
    init() { Threads.set(2) }

    @Test func rule() {
        let finite = SafetensorsFile(tensors: ["w": Tensor(shape: [2], values: [1, 2])])
        let nan = SafetensorsFile(tensors: ["a": Tensor(shape: [1], values: [0]), "w": Tensor(shape: [2], values: [1, .nan])])
        #expect(Trainer.divergence(trainLoss: 2.3, testLoss: 40, model: finite) == nil)
        #expect(Trainer.divergence(trainLoss: .nan, testLoss: 1, model: finite) == "training loss became nan")
        #expect(Trainer.divergence(trainLoss: 1, testLoss: .infinity, model: finite) == "test loss became inf")
        #expect(Trainer.divergence(trainLoss: 1, testLoss: 3e14, model: finite)?.contains("above the divergence limit") == true)
        #expect(Trainer.divergence(trainLoss: 1, testLoss: 1, model: nan) == "weight 'w' became nan")
    }

    /// Adam at lr 1e4: used to finish "successfully" with a test loss of 3e14.
    @Test func hugeLearningRateFails() throws {
        let data = try tinyFashionMNIST()
        var c = tinyConfig(epochs: 3)
        c.optimizer = .adam
        c.lr = 1e4
        let dir = temporaryDirectory("diverge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: ConfigError.self) { _ = try runTrainer(c, dir, data: data) }
        let line = error.map { "\($0)" } ?? ""
        #expect(line.hasPrefix("training diverged: ") && !line.contains("\n"), "\(line)")
        let record = try RunDirectory(dir).readRecord()
        #expect(record.status == "failed")
        #expect(record.failure?.hasPrefix("diverged: ") == true, "\(record.failure ?? "")")
        // Whatever epochs committed before the divergence have finite checkpoints; none is written after.
        let n = record.epochs.count
        #expect(n < 3)
        for name in files(dir) where name.hasSuffix(".safetensors") {
            #expect(try SafetensorsFile.read(dir.appendingPathComponent(name)).firstNonFinite() == nil, "\(name) is not finite")
            if let e = RunDirectory.epoch(ofCheckpointFile: name) { #expect(e == n) }
        }
        // A rerun resumes from the last finite checkpoint and fails the same way, not from a NaN state.
        #expect(throws: ConfigError.self) { _ = try runTrainer(c, dir, data: data) }
        #expect(try RunDirectory(dir).readRecord().epochs.map(\.numbers) == record.epochs.map(\.numbers))
    }

    /// A teacher with finite weights whose outputs are NaN (a negative BatchNorm running variance): the KL
    /// loss used to be 0 then, and the student's weights went NaN. Now the first batch stops the run.
    @Test func nanTeacherOutputStopsTheRun() throws {
        let data = try tinyFashionMNIST()
        let teacherDir = temporaryDirectory("nan-teacher")
        let dir = temporaryDirectory("nan-student")
        defer { for d in [teacherDir, dir] { try? FileManager.default.removeItem(at: d) } }
        var t = tinyConfig(epochs: 1)
        t.seed = 5
        _ = try runTrainer(t, teacherDir, data: data)
        let best = teacherDir.appendingPathComponent("best.safetensors")
        var file = try SafetensorsFile.read(best)
        let v = try #require(file.tensors["bn1.running_var"])
        file.tensors["bn1.running_var"] = Tensor(shape: v.shape, values: [Float](repeating: -1, count: v.count))
        try file.write(to: best)

        var c = Recipe.cifarQAT.defaults()
        c.model = "resnet20"
        c.quantizer = "ewgs"
        c.bits = 2
        c.epochs = 1
        c.batchSize = 64
        c.teacher = teacherDir.path
        c.distill = .sqakd
        let error = #expect(throws: ConfigError.self) { _ = try runTrainer(c, dir, data: data) }
        #expect(error?.description.contains("the teacher's logits are not finite in epoch 1, batch 1") == true, "\(String(describing: error))")
        let record = try RunDirectory(dir).readRecord()
        #expect(record.status == "failed" && record.epochs.isEmpty)
    }

    @Test func klOfNaNTeacherIsNaN() {
        let kl = KLDivergenceLoss(temperature: 4)
        let s = Tensor(shape: [1, 3], values: [0.1, 0.2, 0.3])
        #expect(kl(student: s, teacher: Tensor(shape: [1, 3], values: [.nan, 0, 0])).loss.isNaN)
        #expect(kl(student: s, teacher: Tensor(shape: [1, 3], values: [1, 0, -1])).loss.isFinite)
    }

    /// A checkpoint holding NaN is refused wherever it is loaded (eval, teacher), naming the file and tensor.
    @Test func nonFiniteCheckpointIsRefused() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 0)
        let file = Checkpoint.modelFile(model)
        file.tensors["linear.weight"]!.withUnsafeMutablePointer { $0[3] = .infinity }
        let dir = temporaryDirectory("nan-ckpt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.safetensors")
        try file.write(to: url)
        let error = #expect(throws: ConfigError.self) { _ = try Checkpoint.loadModel(from: url) }
        #expect(error?.description == "\(url.path): tensor 'linear.weight' holds inf (a diverged run's weights); not used")
    }
}

/// Bad input gets one error line, never a trap or an allocation of its size.
@Suite struct CheckpointValidationTests {
    func write(_ mutate: (inout SafetensorsFile) -> Void) throws -> URL {
        let model = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 0)
        var file = Checkpoint.modelFile(model)
        mutate(&file)
        let url = temporaryDirectory("ckpt").appendingPathComponent("m.safetensors")
        try file.write(to: url)
        return url
    }

    func expectRefused(_ url: URL, _ fragment: String) {
        let error = #expect(throws: ConfigError.self) { _ = try Checkpoint.loadModel(from: url) }
        let line = error?.description ?? ""
        #expect(line.hasPrefix(url.path) && line.contains(fragment) && !line.contains("\n"), "\(line)")
        try? FileManager.default.removeItem(at: url.deletingLastPathComponent())
    }

    @Test func wrongRanks() throws {
        expectRefused(try write { $0.tensors["linear.weight"] = Tensor(shape: [], values: [1]) }, "no 2-D 'linear.weight'")
        expectRefused(try write { $0.tensors["conv1.weight"] = Tensor(shape: [3], values: [1, 2, 3]) }, "no 4-D 'conv1.weight'")
    }

    @Test func forgedSizes() throws {
        expectRefused(try write { $0.metadata["classes"] = "4000000000" }, "metadata classes 4000000000 disagrees with the tensors (10)")
        expectRefused(try write { $0.tensors["linear.weight"] = Tensor(shape: [4_000_000_000, 0], zeroed: true) },
                      "'linear.weight' has shape [4000000000, 0]; resnet20 needs [classes ≥ 1, 64]")
    }
}

@Suite struct ConfigValidationTests {
    @Test func momentumAndNesterov() throws {
        var c = TrainConfig()
        c.momentum = -5
        #expect(c.issues().map(\.key) == ["momentum"])
        c.momentum = 0
        c.nesterov = true
        #expect(c.issues().map(\.key) == ["nesterov"])
        c.optimizer = .adam
        #expect(c.issues().isEmpty)
        let error = #expect(throws: ConfigError.self) {
            _ = try TrainConfig.resolve([ConfigOverlay(["momentum": .text("-5")], source: ConfigSource("--momentum"))])
        }
        #expect(error?.description == "--momentum: 'momentum' must be ≥ 0, got -5.0")
    }
}

/// Run ids hash a teacher's run id, not its path.
@Suite struct RunIdentityTests {
    @Test func teacherCountsByItsRunID() {
        var a = TrainConfig()
        a.quantizer = "ewgs"
        a.bits = 2
        a.distill = .sqakd
        a.teacher = "results/fmnist/runs/08f44b07b5901a25"
        a.initFrom = a.teacher
        var b = a
        b.teacher = "/elsewhere/moved/runs/08f44b07b5901a25/"
        b.initFrom = "../../x/08f44b07b5901a25"
        #expect(a.runID == b.runID)
        #expect(a.pathRunID != b.pathRunID)
        var c = a
        c.teacher = "results/fmnist/runs/18f44b07b5901a25"
        #expect(c.runID != a.runID)
        #expect(TrainConfig.runReference("runs/resnet20-fashion-mnist-08f44b07b5901a25") == "08f44b07b5901a25")
        #expect(TrainConfig.runReference("teachers/best.safetensors") == "teachers/best.safetensors")
        // A config without teacher or init_from keeps its id.
        #expect(TrainConfig().runID == TrainConfig().pathRunID)
    }

    /// Results written when ids hashed the teacher's path: students are renamed to their id now, their
    /// record's run_id follows, their config stays, and a second migration changes nothing.
    @Test func migrationRenamesPathHashedStudents() throws {
        let root = temporaryDirectory("migrate-paths")
        defer { try? FileManager.default.removeItem(at: root) }
        let runs = root.appendingPathComponent("suite/runs")
        let teacher = tinyConfig(epochs: 1)
        var student = Recipe.cifarQAT.defaults()
        student.quantizer = "ewgs"; student.bits = 2; student.epochs = 2; student.distill = .sqakd
        student.initFrom = "results/suite/runs/\(teacher.runID)"
        student.teacher = student.initFrom
        #expect(student.pathRunID != student.runID && teacher.pathRunID == teacher.runID)
        func write(_ c: TrainConfig, as id: String) throws {
            let dir = RunDirectory(runs.appendingPathComponent(id))
            try dir.create()
            try c.storedJSON().write(to: dir.config)
            let r = RunRecord(runID: id, status: "finished", failure: nil, config: c, system: SystemInfo.current(), parameterCount: 1,
                              epochs: [], bestTop1: nil, bestEpoch: nil, lastTop1: nil, wallSeconds: 0, startedAt: "t", updatedAt: "t")
            try dir.writeRecord(r)
            try Data("model".utf8).write(to: dir.checkpoint(epoch: 2))
        }
        try write(teacher, as: teacher.runID)
        try write(student, as: student.pathRunID)
        let configBefore = try Data(contentsOf: runs.appendingPathComponent(student.pathRunID).appendingPathComponent("config.json"))

        let m = try ResultsMigration(root: root)
        #expect(m.warnings.isEmpty, "\(m.warnings)")
        #expect(m.runs.filter(\.changes).map(\.oldID) == [student.pathRunID])
        try m.apply()
        #expect(files(runs) == [teacher.runID, student.runID].sorted())
        let moved = RunDirectory(runs.appendingPathComponent(student.runID))
        #expect(try moved.readRecord().runID == student.runID)
        #expect(try Data(contentsOf: moved.config) == configBefore)
        #expect(FileManager.default.fileExists(atPath: moved.checkpoint(epoch: 2).path))

        let again = try ResultsMigration(root: root)
        #expect(again.warnings.isEmpty && again.runs.count == 2 && !again.runs.contains(where: \.changes))
    }

    /// A run directory trained with its teacher at one path resumes when the teacher is named by another.
    @Test func movedTeacherResumes() throws {
        let data = try tinyFashionMNIST()
        let root = temporaryDirectory("moved")
        defer { try? FileManager.default.removeItem(at: root) }
        let teacherID = tinyConfig(epochs: 1).runID
        let teacherDir = root.appendingPathComponent("a/\(teacherID)")
        _ = try runTrainer(tinyConfig(epochs: 1), teacherDir, data: data)
        var s = Recipe.cifarQAT.defaults()
        s.model = "resnet20"
        s.quantizer = "ewgs"
        s.bits = 2
        s.epochs = 2
        s.batchSize = 64
        s.teacher = teacherDir.path
        s.initFrom = teacherDir.path
        s.distill = .sqakd
        let dir = root.appendingPathComponent("student")
        _ = try runTrainer(s, dir, data: data, stopAfter: 1)
        try FileManager.default.moveItem(at: root.appendingPathComponent("a"), to: root.appendingPathComponent("b"))
        var moved = s
        moved.teacher = root.appendingPathComponent("b/\(teacherID)").path
        moved.initFrom = moved.teacher
        let r = try runTrainer(moved, dir, data: data)
        #expect(r.status == "finished" && r.epochs.count == 2 && r.runID == s.runID)
        #expect(try RunDirectory(dir).readConfig().teacher == moved.teacher)
    }
}
