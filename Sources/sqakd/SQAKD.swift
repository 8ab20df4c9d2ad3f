import ArgumentParser
import CSystem
import Datasets
import Foundation
import Kernels
import Models
import NN
import Training

@main
struct SQAKD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sqakd",
        abstract: "SQAKDBench: reproduce Self-Supervised Quantization-Aware Knowledge Distillation on CPU.",
        subcommands: [Train.self, Eval.self, Models.self, BenchCommand.self, DataCommand.self, QuantizerCommand.self,
                      SweepCommand.self, ReportCommand.self, CheckCommand.self])
}

/// Options every computing command shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Engine threads (oneDNN, OpenBLAS and Swift kernels). Results are bit-identical for a given count.")
    var threads: Int = 2

    func apply() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
        Threads.set(threads)
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one full-precision model; writes a run directory (config, record, metrics, log, checkpoints).",
        discussion: "Re-running the same command resumes an interrupted run from its last checkpoint.")

    @Option(help: "JSON config file (TrainConfig keys); flags given on the command line override it.") var config: String?
    @Option(help: "Dataset: cifar10, cifar100, fashion-mnist (3×32×32), fashion-mnist-1ch.") var dataset: String?
    @Option(help: "Model from `sqakd models`.") var model: String?
    @Option var epochs: Int?
    @Option(name: .customLong("batch"), help: "Training batch size.") var batchSize: Int?
    @Option(help: "sgd or adam. QAT: adam = the CIFAR recipe (two Adams), sgd = the Tiny-ImageNet one (one SGD over everything).") var optimizer: String?
    @Option var lr: Double?
    @Option var momentum: Double?
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(name: .customLong("wd"), help: "Weight decay (coupled L2).") var weightDecay: Double?
    @Option(help: "cosine (per epoch), warmup-cosine (per iteration, reference Tiny-ImageNet) or constant.") var schedule: String?
    @Option(help: "Warm-up iterations of warmup-cosine.") var warmupIterations: Int?
    @Option(help: "Label smoothing of the cross-entropy.") var labelSmoothing: Double?
    @Flag(help: "Disable the random-crop + flip augmentation.") var noAugment = false
    @Option var seed: UInt64?
    @Option(help: "Use only the first N training images.") var trainLimit: Int?
    @Option(help: "Use only the first N test images.") var testLimit: Int?
    @Option(help: "Quantizer scheme (`sqakd quantizer list`); fp = full precision.") var quantizer: String?
    @Option(help: "Weight and activation bit-width (W = A).") var bits: Int?
    @Option(help: "Which layers to quantize: cifar (inner convs) or tiny-imagenet (all, first/last at 32 bits).") var style: String?
    @Option(name: .customLong("set"), help: "Quantizer setting key=value (repeatable), e.g. delta=0.") var settings: [String] = []
    @Option(name: .customLong("lr-q"), help: "Learning rate of the quantizer parameters' Adam.") var quantizerLR: Double?
    @Option(name: .customLong("init"), help: "FP checkpoint or run directory the student starts from (default: the teacher).") var initFrom: String?
    @Option(help: "Distillation: none or sqakd (α·T²·KL to the teacher, no labels).") var distill: String?
    @Option(help: "FP teacher: a .safetensors file or a run directory (its best.safetensors).") var teacher: String?
    @Option(help: "Weight α of the SQAKD loss.") var alpha: Double?
    @Option(help: "Distillation temperature T.") var temperature: Double?
    @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?
    @Option(help: "Run directory (default runs/<model>-<dataset>-<run id>).") var output: String?
    @OptionGroup var engine: EngineOptions

    func run() throws {
        // Launched by a sweep: die with it, so a killed sweep leaves no orphan run behind.
        if let parent = ProcessInfo.processInfo.environment["SQAKD_SWEEP_PARENT"].flatMap(Int32.init) {
            _ = sqakd_die_with_parent(parent)
        }
        try engine.apply()
        // QAT runs default to the reference's train_quant.py settings (two Adams, lr 1e-3 / 1e-5).
        var c = (quantizer.map { $0 != "fp" } ?? false) ? TrainConfig.quantizationDefaults() : TrainConfig()
        if let path = config { c = try TrainConfig.load(path) }
        if let v = quantizer { c.quantizer = v }
        if let v = bits { c.bits = v }
        if let v = style { c.style = v }
        for kv in settings {
            let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Double(parts[1]) else {
                throw ValidationError("--set expects key=number, got '\(kv)'")
            }
            c.quantizerSettings[parts[0]] = value
        }
        if let v = quantizerLR { c.quantizerLR = v }
        if let v = initFrom { c.initFrom = v }
        if let v = distill { c.distill = v }
        if let v = teacher { c.teacher = v }
        if let v = alpha { c.alpha = v }
        if let v = temperature { c.temperature = v }
        if let v = dataset { c.dataset = v }
        if let v = model { c.model = v }
        if let v = epochs { c.epochs = v }
        if let v = batchSize { c.batchSize = v }
        if let v = optimizer { c.optimizer = v }
        if let v = lr { c.lr = v }
        if let v = momentum { c.momentum = v }
        if nesterov { c.nesterov = true }
        if let v = weightDecay { c.weightDecay = v }
        if let v = schedule { c.schedule = v }
        if let v = warmupIterations { c.warmupIterations = v }
        if let v = labelSmoothing { c.labelSmoothing = v }
        if noAugment { c.augment = false }
        if let v = seed { c.seed = v }
        if let v = trainLimit { c.trainLimit = v }
        if let v = testLimit { c.testLimit = v }
        try c.validate()
        let label = c.isQuantized ? "-\(c.quantizer)-w\(c.bits)a\(c.bits)" + (c.isDistilled ? "-\(c.distill)" : "") : ""
        let dir = output ?? "runs/\(c.model)-\(c.dataset)\(label)-\(c.runID)"
        print("run directory: \(dir)")
        let record = try Trainer(config: c, runDirectory: URL(fileURLWithPath: dir), dataRoot: dataRoot).train()
        if let best = record.bestTop1, let last = record.lastTop1 {
            print(String(format: "best test top-1 %.2f%% (epoch %d), last %.2f%%, wall %@", best, record.bestEpoch ?? 0, last,
                         formatDuration(record.wallSeconds) as NSString))
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint (ours or PyTorch's, safetensors with the reference's names): top-1, top-5, mean loss.")

    @Option(help: "A .safetensors state dict.") var checkpoint: String
    @Option(help: "Dataset id.") var dataset: String
    @Option(help: "Model name (default: from the checkpoint's metadata, else inferred from its keys).") var model: String?
    @Option(help: "Evaluation batch size.") var batch: Int = 100
    @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?
    @OptionGroup var engine: EngineOptions

    func run() throws {
        try engine.apply()
        guard batch >= 1 else { throw ValidationError("--batch must be ≥ 1") }
        let kind = try DatasetKind(id: dataset)
        let test = try kind.load(root: dataRoot, split: .test)
        let net = try Checkpoint.loadModel(from: URL(fileURLWithPath: checkpoint), architecture: model)
        guard net.classes == test.classCount else {
            throw ValidationError("the checkpoint has \(net.classes) classes but \(dataset) has \(test.classCount)")
        }
        let r = try evaluate(net, on: test, batchSize: batch)
        print(String(format: "%@ on %@ (%d images): top-1 %.2f%%  top-5 %.2f%%  loss %.6f", net.architecture, dataset, r.count, r.top1, r.top5, r.loss))
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model zoo with parameter counts and MACs per image.")

    func run() throws {
        print("model      dataset     classes  params       MACs/image")
        let rows: [(String, String, Int)] = [("resnet20", "cifar10", 10), ("resnet20", "cifar100", 100),
                                             ("resnet32", "cifar10", 10), ("resnet32", "cifar100", 100),
                                             ("vgg8", "cifar10", 10), ("vgg8", "cifar100", 100),
                                             ("vgg11", "cifar10", 10), ("vgg11", "cifar100", 100),
                                             ("vgg13", "cifar10", 10), ("vgg13", "cifar100", 100)]
        for (name, ds, classes) in rows {
            let m = try ModelZoo.make(name, classes: classes, seed: 0)
            let macs = m.macs(inputHeight: 32, inputWidth: 32)
            let params = m.parameterCount.formatted(.number)
            print(name.padding(toLength: 10, withPad: " ", startingAt: 0) + " " + ds.padding(toLength: 11, withPad: " ", startingAt: 0)
                  + String(format: " %7d  ", classes) + String(repeating: " ", count: max(0, 11 - params.count)) + params
                  + String(format: "  %8.2f M", Double(macs) / 1e6))
        }
    }
}

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Check datasets.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find a dataset's files and say what is missing and how to get it.")
        @Argument(help: "Dataset id.") var dataset: String
        @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?

        func run() throws {
            let v = try DatasetKind(id: dataset).verify(root: dataRoot)
            print(v.description)
            if !v.complete { throw ExitCode(1) }
        }
    }
}
