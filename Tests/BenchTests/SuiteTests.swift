import Foundation
import Testing
@testable import Bench
import Training

/// Parses a suite given as text; `body` is the grid and anything else after the header.
private func parse(_ body: String, header: String = "dataset: fashion-mnist\n") throws -> Suite {
    try Suite.parse(header + body, file: URL(fileURLWithPath: "/tmp/test-suite.yaml"))
}

private let grid = """
    grid:
      - model: resnet20
        quantizers: [ewgs]
        bits: [2]

    """

@Suite("Suite files")
struct SuiteTests {
    @Test func unknownTopLevelKeyNamesFileLineAndKey() throws {
        let e = #expect(throws: SuiteError.self) { try parse(grid + "epoch: 3\n") }
        #expect(e?.description.hasPrefix("/tmp/test-suite.yaml:6: unknown key 'epoch'") == true, "\(e!.description)")
    }

    @Test func unknownNestedKeyNamesItsPath() throws {
        let e = #expect(throws: SuiteError.self) { try parse(grid + "student:\n  learning_rate: 0.1\n") }
        #expect(e?.description.contains(":7: unknown key 'student.learning_rate'") == true, "\(e!.description)")
        let g = #expect(throws: SuiteError.self) {
            try parse("grid:\n  - model: resnet20\n    quantizers: [ewgs]\n    bits: [2]\n    bit: 3\n")
        }
        #expect(g?.description.contains(":6: unknown key 'grid[0].bit'") == true, "\(g!.description)")
    }

    @Test func badBitWidthsAreRejectedWithTheLine() throws {
        let e = #expect(throws: SuiteError.self) { try parse("grid:\n  - model: resnet20\n    quantizers: [ewgs]\n    bits: [2, 0]\n") }
        #expect(e?.description.contains(":5: 'grid[0].bits' has 0, which ewgs does not support") == true, "\(e!.description)")
        let t = #expect(throws: SuiteError.self) { try parse("grid:\n  - model: resnet20\n    quantizers: [ewgs]\n    bits: [two]\n") }
        #expect(t?.description.contains("must be integers, got 'two'") == true, "\(t!.description)")
    }

    @Test func unknownModelsAndQuantizersAreRejected() throws {
        let m = #expect(throws: SuiteError.self) { try parse("grid:\n  - model: resnet56\n    quantizers: [ewgs]\n    bits: [2]\n") }
        #expect(m?.description.contains(":3: 'grid[0].model' names an unknown model 'resnet56'; the zoo has: resnet20") == true, "\(m!.description)")
        let q = #expect(throws: SuiteError.self) { try parse("grid:\n  - model: resnet20\n    quantizers: [ewgs, apot]\n    bits: [2]\n") }
        #expect(q?.description.contains("unknown quantizer 'apot'; registered: ewgs, pact, lsq, dorefa") == true, "\(q!.description)")
        let d = #expect(throws: SuiteError.self) { try parse(grid, header: "dataset: imagenet\n") }
        #expect(d?.description.contains("unknown dataset 'imagenet'") == true, "\(d!.description)")
    }

    @Test func badValuesAndBudgetsAreRejected() throws {
        #expect(throws: SuiteError.self) { try parse(grid + "student:\n  optimizer: rmsprop\n") }
        #expect(throws: SuiteError.self) { try parse(grid + "teacher:\n  lr: -1\n") }
        #expect(throws: SuiteError.self) { try parse(grid + "methods: [baseline, distill-all]\n") }
        #expect(throws: SuiteError.self) { try parse(grid + "seeds: 0\n") }
        let b = #expect(throws: SuiteError.self) { try parse(grid + "budgets:\n  Tiny_1: {student_epochs: 1}\n") }
        #expect(b?.description.contains("budget name 'Tiny_1' must be paper, reduced, smoke or a label") == true, "\(b!.description)")
        #expect(try parse(grid + "budgets:\n  reduced-v1: {student_epochs: 1}\n").budget("reduced-v1").studentEpochs == 1)
        let k = #expect(throws: SuiteError.self) { try parse(grid + "budgets:\n  smoke: {epochs: 1}\n") }
        #expect(k?.description.contains("unknown key 'budgets.smoke.epochs'") == true, "\(k!.description)")
        #expect(throws: SuiteError.self) { try parse("grid: [\n") }
        let s = try parse(grid)
        #expect(throws: SuiteError.self) { try s.budget("reduced") }
    }

    @Test func badHyperParametersNameTheKeyFileAndLine() throws {
        let lr = #expect(throws: SuiteError.self) { try parse(grid + "student:\n  epochs: 2\n  lr: -1\n") }
        #expect(lr?.description == "/tmp/test-suite.yaml:8: 'student.lr' must be a positive number, got -1.0", "\(lr!.description)")
        let type = #expect(throws: SuiteError.self) { try parse(grid + "teacher:\n  epochs: two\n") }
        #expect(type?.description == "/tmp/test-suite.yaml:7: 'teacher.epochs' must be an integer, got 'two'", "\(type!.description)")
        let quoted = #expect(throws: SuiteError.self) { try parse(grid + "teacher:\n  nesterov: \"true\"\n") }
        #expect(quoted?.description.contains("'teacher.nesterov' must be true or false, got \"true\"") == true, "\(quoted!.description)")
        let choice = #expect(throws: SuiteError.self) { try parse(grid + "student:\n  schedule: step\n") }
        #expect(choice?.description.hasSuffix(":7: 'student.schedule' must be one of cosine, warmup-cosine, constant, got 'step'") == true,
                "\(choice!.description)")
        let owned = #expect(throws: SuiteError.self) { try parse(grid + "student:\n  seed: 3\n") }
        #expect(owned?.description.contains(":7: 'student.seed' is set by the plan") == true, "\(owned!.description)")
        let entry = #expect(throws: SuiteError.self) {
            try parse("grid:\n  - model: resnet20\n    quantizers: [ewgs]\n    bits: [2]\n    overrides:\n      - {bits: 2, alpha: -1}\n")
        }
        #expect(entry?.description.contains(":7: 'grid[0].overrides[0].alpha' must be ≥ 0, got -1") == true, "\(entry?.description ?? "no error")")
        // Settings of a quantizer: a nested mapping, merged key by key over the suite's.
        let s = try parse(grid.replacingOccurrences(of: "bits: [2]", with: "bits: [2]\n    student: {quantizer_settings: {delta: 0.5}}")
                          + "student:\n  quantizer_settings:\n    delta: 0\n")
        let plan = try Plan(suite: s, budget: "paper", resultsRoot: URL(fileURLWithPath: "/tmp/r"))
        #expect(plan.students.allSatisfy { $0.config.quantizerSettings == ["delta": 0.5] })
    }

    /// One model, one name in the paper; budgets' image size and warm-up reach every run and are checked.
    @Test func paperModelAndBudgetImageSize() throws {
        let two = "grid:\n  - model: resnet20\n    paper_model: rn20\n    quantizers: [ewgs]\n    bits: [2]\n"
            + "  - model: resnet20\n    quantizers: [ewgs]\n    bits: [4]\n"
        let e = #expect(throws: SuiteError.self) { try parse(two) }
        #expect(e?.description.contains("paper_model of resnet20 is 'resnet20', but the entry at /tmp/test-suite.yaml:3 says 'rn20'") == true,
                "\(e!.description)")
        let s = try parse(two.replacingOccurrences(of: "bits: [4]\n", with: "bits: [4]\n    paper_model: rn20\n"))
        #expect(s.paperModel("resnet20") == "rn20" && s.paperModel("vgg8") == "vgg8")
        let tiny = try parse("grid:\n  - model: resnet18\n    quantizers: [lsq]\n    bits: [4]\n"
                             + "budgets:\n  smoke: {image_size: 40, warmup_iterations: 3}\n", header: "dataset: tiny-imagenet\n")
        let plan = try Plan(suite: tiny, budget: "smoke", resultsRoot: URL(fileURLWithPath: "/tmp/r"))
        #expect(plan.runs.allSatisfy { $0.config.imageSize == 40 && $0.config.warmupIterations == 3 })
        // fashion-mnist is stored at 32×32 and does not resize: the plan names the key.
        let f = try parse(grid + "budgets:\n  smoke: {image_size: 40}\n")
        let m = #expect(throws: SuiteError.self) { try Plan(suite: f, budget: "smoke", resultsRoot: URL(fileURLWithPath: "/tmp/r")) }
        #expect(m?.description.contains("image_size") == true, "\(m!.description)")
    }

    @Test func shippedSuitesLoadAndExpand() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("suites").path).filter { $0.hasSuffix(".yaml") }
        #expect(Set(files).isSuperset(of: ["fashion-mnist.yaml", "smoke.yaml", "table4-cifar10.yaml", "table4-cifar100.yaml"]))
        for f in files {
            let s = try Suite.load(repoRoot.appendingPathComponent("suites/\(f)"))
            for b in s.budgets { _ = try Plan(suite: s, budget: b.name, resultsRoot: URL(fileURLWithPath: "/tmp/r")) }
        }
    }

    @Test func fashionMNISTReducedIsTheIssuesGrid() throws {
        let s = try Suite.load(repoRoot.appendingPathComponent("suites/fashion-mnist.yaml"))
        let plan = try Plan(suite: s, budget: "reduced", resultsRoot: URL(fileURLWithPath: "results"))
        #expect(plan.runs.count == 1 + 9 * 2 * 3)
        let teacher = plan.runs[0]
        #expect(teacher.cell.isTeacher && teacher.config.epochs == 30 && teacher.config.batchSize == 128 && teacher.config.optimizer == .sgd)
        #expect(teacher.config.lr == 0.1 && teacher.config.quantizer == "fp" && teacher.config.trainLimit == 15000)
        for r in plan.students {
            #expect(r.config.epochs == 2 && r.config.batchSize == 128 && r.config.trainLimit == 15000 && r.config.temperature == 4)
            if r.cell.quantizer == "ewgs" || r.cell.variant == "cifar-recipe" {
                // The authors' CIFAR recipe (train_quant.py).
                #expect(r.config.optimizer == .adam && r.config.style == .cifar && r.config.alpha == 1)
                #expect(r.config.lr == 1e-3 && r.config.quantizerLR == 1e-5 && r.config.weightDecay == 1e-4 && r.config.labelSmoothing == 0)
            } else {
                // The authors' Tiny-ImageNet recipe (main.py): MQBench style, one SGD-Nesterov, warm-up + cosine,
                // label smoothing for baselines only, the paper's α of the nearest cell.
                #expect(r.cell.variant.isEmpty && r.config.style == .tinyImageNet && r.config.optimizer == .sgd && r.config.nesterov)
                #expect(r.config.lr == 5e-4 && r.config.weightDecay == 5e-4 && r.config.schedule == .warmupCosine && r.config.warmupIterations == 4)
                #expect(r.config.labelSmoothing == (r.cell.method == .baseline ? 0.1 : 0))
                #expect(r.cell.method == .baseline || r.config.alpha == ["pact": 1, "lsq": 50, "dorefa": 50][r.cell.quantizer]!)
            }
            #expect(r.config.initFrom == "results/fashion-mnist/runs/\(teacher.id)")
            #expect(r.config.distill == (r.cell.method == .sqakd ? .sqakd : DistillationMethod.none))
            #expect(r.config.teacher == (r.cell.method == .sqakd ? r.config.initFrom : nil))
        }
        // Every cell's first seed comes before any second seed.
        let seeds = plan.students.map(\.seed)
        #expect(seeds == seeds.sorted())
        let cells = Set(plan.students.map(\.cell))
        #expect(cells.count == 18)
        #expect(cells.contains(CellKey(model: "resnet20", quantizer: "dorefa", bits: 4, method: .sqakd)))
        #expect(cells.contains(CellKey(model: "resnet20", quantizer: "dorefa", bits: 4, method: .sqakd, variant: "cifar-recipe")))
        #expect(cells.contains(CellKey(model: "resnet20", quantizer: "ewgs", bits: 1, method: .baseline)))
        // Ids are distinct hashes of the resolved configs.
        #expect(Set(plan.runs.map(\.id)).count == plan.runs.count)
        let smoke = try Plan(suite: s, budget: "smoke", seeds: 1, resultsRoot: URL(fileURLWithPath: "results"))
        #expect(smoke.runs.count == 19 && smoke.runs.allSatisfy { $0.config.trainLimit == 512 && $0.config.epochs == 1 })
        // The first budget, kept for comparison: a 4-epoch teacher on every training image.
        let old = try Plan(suite: s, budget: "reduced-4ep-teacher", resultsRoot: URL(fileURLWithPath: "results"))
        #expect(old.runs[0].config.epochs == 4 && old.runs.allSatisfy { $0.config.trainLimit == 0 })
        let only = try Plan(suite: s, budget: "reduced", resultsRoot: URL(fileURLWithPath: "results"), only: ["ewgs/W2A2"])
        #expect(only.runs.count == 7 && only.runs[0].cell.isTeacher)
    }

    @Test func table4FollowsTheAuthorsScripts() throws {
        let c10 = try Suite.load(repoRoot.appendingPathComponent("suites/table4-cifar10.yaml"))
        #expect(c10.paperTable == "4" && c10.paperResults?.path == repoRoot.appendingPathComponent("suites/paper-results.csv").standardizedFileURL.path)
        let p10 = try Plan(suite: c10, budget: "paper", resultsRoot: URL(fileURLWithPath: "results"))
        let vgg = p10.students.filter { $0.cell.model == "vgg8" }
        #expect(vgg.count == 2 * 3 && vgg.allSatisfy { $0.config.epochs == 400 && $0.cell.bits == 2 })
        #expect(p10.students.filter { $0.cell.model == "resnet20" }.allSatisfy { $0.config.epochs == 1200 && $0.config.batchSize == 256 })
        #expect(p10.teachers.map(\.config.epochs) == [1200, 400])
        let c100 = try Suite.load(repoRoot.appendingPathComponent("suites/table4-cifar100.yaml"))
        let p100 = try Plan(suite: c100, budget: "paper", seeds: 1, resultsRoot: URL(fileURLWithPath: "results"))
        for r in p100.students {
            #expect(r.config.lr == 5e-4 && r.config.quantizerLR == 5e-6 && r.config.weightDecay == 5e-4 && r.config.batchSize == 64)
            let alpha100 = r.cell.model == "resnet32" && r.cell.bits == 4 && r.cell.method == .sqakd
            #expect(r.config.alpha == (alpha100 ? 100 : 1), "\(r.label)")
        }
        #expect(p100.teachers.allSatisfy { $0.config.lr == 0.05 && $0.config.epochs == 720 })
    }
}
