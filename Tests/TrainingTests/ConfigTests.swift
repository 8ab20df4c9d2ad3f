import Foundation
import Testing
@testable import Training

/// A layer from JSON text, as `--config FILE.json` reads it.
private func json(_ text: String, _ source: String = "--config run.json") throws -> ConfigOverlay {
    try ConfigOverlay.json(Data(text.utf8), source: ConfigSource(source))
}

/// The error line `resolve` throws for `layers`.
private func failure(_ layers: [ConfigOverlay]) -> String {
    do {
        _ = try TrainConfig.resolve(layers)
        return "no error"
    } catch {
        return "\(error)"
    }
}

/// The schema-1 teacher of the committed Fashion-MNIST results (config.json as the old code wrote it).
let schema1TeacherConfig = """
    {
      "alpha" : 1,
      "augment" : true,
      "batchSize" : 128,
      "bits" : 32,
      "dataset" : "fashion-mnist",
      "distill" : "none",
      "epochs" : 4,
      "evalBatchSize" : 100,
      "labelSmoothing" : 0,
      "lr" : 0.1,
      "model" : "resnet20",
      "momentum" : 0.9,
      "nesterov" : false,
      "optimizer" : "sgd",
      "quantizer" : "fp",
      "quantizerLR" : 1e-05,
      "quantizerSettings" : {

      },
      "schedule" : "cosine",
      "seed" : 0,
      "style" : "cifar",
      "temperature" : 4,
      "testLimit" : 0,
      "trainLimit" : 0,
      "warmupIterations" : 2500,
      "weightDecay" : 0.0001
    }
    """

/// A schema-1 record (camelCase keys) around `config`, one epoch.
func schema1Record(runID: String, config: String) -> String {
    """
    {
      "bestEpoch" : 1, "bestTop1" : 78.22, "config" : \(config),
      "epochs" : [ { "epoch" : 1, "imagesPerSecond" : 161.748209914238, "lr" : 0.1, "seconds" : 462.2916079759598,
                     "testLoss" : 0.6287288626493792, "testTop1" : 78.22, "testTop5" : 99.36,
                     "trainLoss" : 0.5798885217176638, "trainTop1" : 78.86333333333333 } ],
      "lastTop1" : 78.22, "parameterCount" : 269850, "runID" : "\(runID)", "schema" : 1,
      "startedAt" : "2026-11-30T03:55:43Z", "status" : "finished",
      "system" : { "cpu" : "Intel(R) Xeon(R) Processor", "gitDirty" : true, "gitRevision" : "d6b617f481ab494c3d7bb0c3ad6fa53bd1548c7c",
                   "hostname" : "vm", "onednnVersion" : "2.6.3", "swiftVersion" : "5.x", "threads" : 2 },
      "updatedAt" : "2026-11-30T04:21:19Z", "wallSeconds" : 1535.984104514122
    }
    """
}

@Suite("Typed config: overlays, strict decoder, recipes, run ids, records")
struct ConfigTests {
    @Test func keysAreTheSnakeCasePropertyNames() {
        #expect(ConfigSchema.snakeCase("quantizerLR") == "quantizer_lr")
        #expect(ConfigSchema.snakeCase("runID") == "run_id")
        #expect(ConfigSchema.snakeCase("bestTop1") == "best_top1")
        #expect(ConfigSchema.snakeCase("imagesPerSecond") == "images_per_second")
        let names = ConfigSchema.names
        #expect(names.count == Mirror(reflecting: TrainConfig()).children.count)
        #expect(names.contains("quantizer_lr") && names.contains("batch_size") && names.contains("init_from"))
        #expect(ConfigSchema.keys.first { $0.name == "optimizer" }?.kind == .choice(["sgd", "adam"]))
        #expect(ConfigSchema.keys.first { $0.name == "style" }?.kind == .choice(["cifar", "tiny-imagenet"]))
        #expect(ConfigSchema.keys.first { $0.name == "teacher" }?.optional == true)
        // The stored form round-trips through the strict decoder.
        var c = Recipe.cifarQAT.defaults()
        c.quantizer = "ewgs"; c.bits = 2; c.teacher = "runs/t"; c.distill = .sqakd; c.quantizerSettings = ["delta": 0]
        c.style = .tinyImageNet
        let o = try! ConfigOverlay.json(c.storedJSON(), source: ConfigSource("config.json"))
        #expect(try! TrainConfig.decode(o, onto: TrainConfig()) == c)
        #expect(String(decoding: c.storedJSON(), as: UTF8.self).contains(#""style" : "tiny-imagenet""#))
    }

    @Test func unknownKeyNamesTheKeyAndItsSource() throws {
        let e = failure([try json(#"{"learning_rate": 0.1}"#)])
        #expect(e.hasPrefix("--config run.json: unknown key 'learning_rate'; valid keys: dataset, model, epochs"), "\(e)")
        let s = failure([try ConfigOverlay.assignments(["quantizer=ewgs", "bits=2", "delta=0"])])
        #expect(s.hasPrefix("--set delta=0: unknown key 'delta'"), "\(s)")
        let nested = failure([try ConfigOverlay.assignments(["lr.x=1"])])
        #expect(nested.hasPrefix("--set lr.x=1: 'lr.x' is not a mapping"), "\(nested)")
    }

    @Test func wrongTypeNamesTheKeyAndItsSource() throws {
        #expect(failure([try json(#"{"epochs": "four"}"#)]) == "--config run.json: 'epochs' must be an integer, got \"four\"")
        #expect(failure([try json(#"{"epochs": 2.5}"#)]) == "--config run.json: 'epochs' must be an integer, got 2.5")
        #expect(failure([try json(#"{"lr": true}"#)]) == "--config run.json: 'lr' must be a number, got true")
        #expect(failure([try json(#"{"quantizer_settings": 3}"#)]).contains("'quantizer_settings' must be a mapping of names to numbers"))
        #expect(failure([try ConfigOverlay.assignments(["nesterov=maybe"])]) == "--set nesterov=maybe: 'nesterov' must be true or false, got 'maybe'")
        #expect(failure([try ConfigOverlay.assignments(["seed=-1"])]) == "--set seed=-1: 'seed' must be an integer ≥ 0, got '-1'")
        #expect(failure([try json(#"{"epochs": null}"#)]) == "--config run.json: 'epochs' must be an integer, got null")
    }

    @Test func badEnumListsTheValidValues() throws {
        #expect(failure([try json(#"{"optimizer": "lion"}"#)]) == "--config run.json: 'optimizer' must be one of sgd, adam, got 'lion'")
        #expect(failure([try ConfigOverlay.assignments(["schedule=step"])])
                == "--set schedule=step: 'schedule' must be one of cosine, warmup-cosine, constant, got 'step'")
        #expect(failure([try json(#"{"style": "tinyImageNet"}"#)]).hasSuffix("'style' must be one of cifar, tiny-imagenet, got 'tinyImageNet'"))
        #expect(failure([try json(#"{"distill": "teleport"}"#)])
                .hasSuffix("'distill' must be one of \(DistillationMethod.spellings.joined(separator: ", ")), got 'teleport'"))
        #expect(DistillationMethod.spellings.starts(with: ["none", "sqakd", "kd", "at", "nst", "sp", "rkd", "fitnet", "cc", "vid"]))
    }

    @Test func outOfRangeNamesTheKeyAndWhereTheValueCameFrom() throws {
        let file = ConfigOverlay(["epochs": .integer(3), "lr": .double(0.1)], source: ConfigSource("suites/x.yaml:23", keyPath: "student"))
        #expect(failure([file, try ConfigOverlay.assignments(["lr=-1"])]) == "--set lr=-1: 'lr' must be a positive number, got -1.0")
        let fromFile = ConfigOverlay(["lr": .text("-1")], source: ConfigSource("suites/x.yaml:23", keyPath: "student"))
        #expect(failure([fromFile]) == "suites/x.yaml:23: 'student.lr' must be a positive number, got -1.0")
        #expect(failure([try json(#"{"label_smoothing": 1}"#)]) == "--config run.json: 'label_smoothing' must be in [0, 1), got 1.0")
        #expect(failure([try json(#"{"quantizer": "ewgs", "bits": 17}"#)]).hasPrefix("--config run.json: 'bits' quantizer 'ewgs' supports"))
        #expect(failure([try json(#"{"quantizer": "ewgs", "bits": 2, "quantizer_settings": {"delta": 0, "gamma": 1}}"#)])
                .hasPrefix("--config run.json: 'quantizer_settings' quantizer 'ewgs' has no setting 'gamma'"))
        #expect(failure([try json(#"{"quantizer": "ewgs", "bits": 2, "distill": "sqakd"}"#)])
                == "--config run.json: 'distill' sqakd needs a 'teacher' (an FP run directory or .safetensors file)")
        #expect(failure([try json(#"{"model": "resnet56"}"#)]).hasPrefix("--config run.json: 'model' names an unknown model 'resnet56'"))
    }

    @Test func laterLayersWinKeyByKey() throws {
        let suite = ConfigOverlay(["epochs": .text("5"), "lr": .text("0.2"), "quantizer_settings": .object(["delta": .integer(1)])],
                                  source: ConfigSource("suites/x.yaml:3", keyPath: "student"))
        let file = try json(#"{"lr": 0.3, "batch_size": 32}"#)
        let flags = try ConfigOverlay.assignments(["lr=0.4", "quantizer=ewgs", "bits=2", "quantizer_settings.delta=0"])
        let c = try TrainConfig.resolve([suite, file, flags])
        #expect(c.epochs == 5 && c.batchSize == 32 && c.lr == 0.4 && c.quantizerSettings == ["delta": 0])
        let reversed = try TrainConfig.resolve([flags, file, suite])
        #expect(reversed.lr == 0.2 && reversed.quantizerSettings == ["delta": 1])
        // Provenance follows the winning value.
        let merged = ConfigOverlay.merged([suite, file, flags])
        #expect(merged["lr"]?.source.location == "--set lr=0.4" && merged["epochs"]?.source.location == "suites/x.yaml:3")
        #expect(merged["batch_size"]?.source.location == "--config run.json")
    }

    @Test func recipeIsChosenFromTheMergedQuantizerAndStyle() throws {
        // `{"quantizer": "ewgs"}` alone is a CIFAR QAT run: two Adams at 1e-3 / 1e-5 (reference §4.2).
        let qat = try TrainConfig.resolve([try json(#"{"quantizer": "ewgs", "bits": 2}"#)])
        #expect(qat.optimizer == .adam && qat.lr == 1e-3 && qat.quantizerLR == 1e-5 && qat.weightDecay == 1e-4 && qat.schedule == .cosine)
        #expect(qat == { var c = Recipe.cifarQAT.defaults(); c.quantizer = "ewgs"; c.bits = 2; return c }())
        // Keys given win over the recipe; the quantizer may come from any layer.
        let later = try TrainConfig.resolve([try json(#"{"lr": 0.01}"#), try ConfigOverlay.assignments(["quantizer=pact", "bits=4"])])
        #expect(later.optimizer == .adam && later.lr == 0.01)
        #expect(try TrainConfig.resolve([]) == TrainConfig())
        #expect(Recipe(quantizer: "fp", style: .cifar) == .fpTeacher && Recipe.fpTeacher.defaults() == TrainConfig())
        let tiny = try TrainConfig.resolve([try json(#"{"quantizer": "lsq", "bits": 4, "style": "tiny-imagenet"}"#)])
        #expect(tiny.optimizer == .sgd && tiny.nesterov && tiny.schedule == .warmupCosine && tiny.warmupIterations == 2500)
        #expect(tiny.labelSmoothing == 0.1 && tiny.lr == 5e-4 && tiny.weightDecay == 5e-4 && tiny.momentum == 0.9)
        let tinyKD = try TrainConfig.resolve([try json(#"{"quantizer": "lsq", "bits": 4, "style": "tiny-imagenet", "distill": "sqakd", "teacher": "t"}"#)])
        #expect(tinyKD.labelSmoothing == 0)
        let tinyFP = try TrainConfig.resolve([try json(#"{"style": "tiny-imagenet"}"#)])
        #expect(tinyFP.lr == 0.05 && tinyFP.labelSmoothing == 0.1)
    }

    @Test func runIDHashesOnlyTheKeysThatDifferFromTheDefaults() {
        #expect(TrainConfig().changedValues.isEmpty)
        #expect(TrainConfig().runID == fnv1a64(Data("{}".utf8)))
        var c = TrainConfig()
        c.lr = 0.05
        c.seed = 2
        #expect(c.changedValues == ["lr": .double(0.05), "seed": .integer(2)])
        #expect(c.runID == fnv1a64(Data(#"{"lr":0.05,"seed":2}"#.utf8)))
        // Setting a key to its default value is the same run.
        var d = c
        d.momentum = 0.9
        #expect(d.runID == c.runID)
        // Pinned: the id of the committed Fashion-MNIST teacher. A change here renames every run folder.
        let teacher = try! TrainConfig(stored: try! JSONDecoder().decode([String: ConfigValue].self, from: Data(schema1TeacherConfig.utf8)),
                                       source: ConfigSource("fixture"))
        #expect(teacher.runID == "08f44b07b5901a25")
    }

    @Test func schema1IdIsTheOldHash() throws {
        let c = try TrainConfig(stored: try JSONDecoder().decode([String: ConfigValue].self, from: Data(schema1TeacherConfig.utf8)),
                                source: ConfigSource("fixture"))
        #expect(c.schema1RunID == "b48c292223dd026c")   // the folder name the old code gave it
        #expect(c.model == "resnet20" && c.quantizerLR == 1e-5 && c.optimizer == .sgd && c.style == .cifar)
        // A committed LSQ student: its schema-1 folder name, and its id once its teacher path names the new id.
        var student = c
        student.quantizer = "lsq"; student.bits = 4; student.epochs = 2; student.seed = 2
        student.optimizer = .adam; student.lr = 0.001
        student.initFrom = "results/fashion-mnist/runs/b48c292223dd026c"
        #expect(student.schema1RunID == "03535189e84d1c5d")
        student.initFrom = "results/fashion-mnist/runs/08f44b07b5901a25"
        #expect(student.pathRunID == "7d81e4ce9956ecde")   // the folder name while ids hashed the teacher's path
        #expect(student.runID == "53983b49d7ba2dbb")       // its id now: the teacher counted by its run id
    }

    @Test func schema1RecordsAreRead() throws {
        let r = try RunRecord.decode(Data(schema1Record(runID: "b48c292223dd026c", config: schema1TeacherConfig).utf8), source: "fixture")
        #expect(r.schema == 2 && r.runID == "b48c292223dd026c" && r.status == "finished" && r.parameterCount == 269850)
        #expect(r.bestTop1 == 78.22 && r.bestEpoch == 1 && r.wallSeconds == 1535.984104514122)
        #expect(r.epochs.count == 1 && r.epochs[0].trainLoss == 0.5798885217176638 && r.epochs[0].imagesPerSecond == 161.748209914238)
        #expect(r.system.gitRevision == "d6b617f481ab494c3d7bb0c3ad6fa53bd1548c7c" && r.system.onednnVersion == "2.6.3" && r.system.threads == 2)
        #expect(r.config.batchSize == 128 && r.config.epochs == 4)
        // Schema 2 writes snake_case throughout and reads back equal.
        let text = String(decoding: try JSON.encode(r), as: UTF8.self)
        for key in ["\"run_id\"", "\"best_top1\"", "\"images_per_second\"", "\"git_revision\"", "\"batch_size\"", "\"quantizer_lr\"", "\"schema\" : 2"] {
            #expect(text.contains(key), "\(key)")
        }
        #expect(!text.contains("runID") && !text.contains("batchSize"))
        let back = try RunRecord.decode(Data(text.utf8), source: "round trip")
        #expect(back.epochs == r.epochs && back.config == r.config && back.system == r.system)
        #expect(throws: ConfigError.self) { try RunRecord.decode(Data(#"{"schema": 7}"#.utf8), source: "x") }
    }

    @Test func migrationRenamesRewritesPathsAndIsIdempotent() throws {
        let root = temporaryDirectory("migrate")
        defer { try? FileManager.default.removeItem(at: root) }
        let runs = root.appendingPathComponent("suite/runs")
        // Schema-1 teacher and a student that starts from it and distils from it.
        let teacher = try TrainConfig(stored: try JSONDecoder().decode([String: ConfigValue].self, from: Data(schema1TeacherConfig.utf8)),
                                      source: ConfigSource("fixture"))
        var student = Recipe.cifarQAT.defaults()
        student.quantizer = "ewgs"; student.bits = 2; student.epochs = 2; student.distill = .sqakd
        student.initFrom = "results/suite/runs/\(teacher.schema1RunID)"
        student.teacher = student.initFrom
        func writeSchema1(_ c: TrainConfig) throws -> URL {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            let camel = String(decoding: try e.encode(c), as: UTF8.self)
            let dir = runs.appendingPathComponent(c.schema1RunID)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data(camel.utf8).write(to: dir.appendingPathComponent("config.json"))
            try Data(schema1Record(runID: c.schema1RunID, config: camel).utf8).write(to: dir.appendingPathComponent("record.json"))
            try Data("epoch,lr\n".utf8).write(to: dir.appendingPathComponent("metrics.csv"))
            return dir
        }
        _ = try writeSchema1(teacher)
        _ = try writeSchema1(student)

        let plan = try ResultsMigration(root: root)
        #expect(plan.warnings.isEmpty, "\(plan.warnings)")
        #expect(plan.runs.count == 2 && plan.runs.allSatisfy(\.changes))
        #expect(try plan.apply().count == 2)

        let newTeacher = RunDirectory(runs.appendingPathComponent(teacher.runID))
        var migratedStudent = student
        migratedStudent.initFrom = "results/suite/runs/\(teacher.runID)"
        migratedStudent.teacher = migratedStudent.initFrom
        let newStudent = RunDirectory(runs.appendingPathComponent(migratedStudent.runID))
        #expect(try FileManager.default.contentsOfDirectory(atPath: runs.path).sorted() == [teacher.runID, migratedStudent.runID].sorted())
        #expect(try newTeacher.readConfig() == teacher && newTeacher.readRecord().runID == teacher.runID)
        #expect(try newStudent.readConfig() == migratedStudent)
        let record = try newStudent.readRecord()
        #expect(record.schema == 2 && record.runID == migratedStudent.runID && record.config == migratedStudent)
        #expect(record.epochs[0].testTop1 == 78.22)
        let raw = try String(contentsOf: newStudent.record, encoding: .utf8)
        #expect(raw.contains("\"init_from\" : \"results\\/suite\\/runs\\/\(teacher.runID)\"") && !raw.contains("initFrom"), "\(raw)")
        #expect(FileManager.default.fileExists(atPath: newStudent.metrics.path))

        // Rerunning changes nothing.
        let files = try Data(contentsOf: newStudent.record) + Data(contentsOf: newStudent.config)
        let again = try ResultsMigration(root: root)
        #expect(again.warnings.isEmpty && again.runs.count == 2 && !again.runs.contains(where: \.changes))
        #expect(try again.apply().isEmpty)
        #expect(try Data(contentsOf: newStudent.record) + Data(contentsOf: newStudent.config) == files)
    }

    @Test func halfMigratedFoldersAreFinished() throws {
        let root = temporaryDirectory("migrate-half")
        defer { try? FileManager.default.removeItem(at: root) }
        let runs = root.appendingPathComponent("runs")
        let teacher = try TrainConfig(stored: try JSONDecoder().decode([String: ConfigValue].self, from: Data(schema1TeacherConfig.utf8)),
                                      source: ConfigSource("fixture"))
        // The teacher already migrated (new name, new files); its student still names the old id.
        let t = RunDirectory(runs.appendingPathComponent(teacher.runID))
        try t.create()
        try teacher.storedJSON().write(to: t.config)
        var student = Recipe.cifarQAT.defaults()
        student.quantizer = "ewgs"; student.bits = 2
        student.initFrom = "runs/\(teacher.schema1RunID)"
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        let s = RunDirectory(runs.appendingPathComponent(student.schema1RunID))
        try s.create()
        try e.encode(student).write(to: s.config)
        let m = try ResultsMigration(root: root)
        #expect(m.warnings.isEmpty, "\(m.warnings)")
        try m.apply()
        student.initFrom = "runs/\(teacher.runID)"
        #expect(try RunDirectory(runs.appendingPathComponent(student.runID)).readConfig() == student)
    }
}
