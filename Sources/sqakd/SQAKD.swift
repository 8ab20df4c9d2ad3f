import ArgumentParser
import Bench
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
                      SweepCommand.self, ReportCommand.self, CheckCommand.self, ResultsCommand.self])
}

/// Options every computing command shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Engine threads (oneDNN, OpenBLAS and Swift kernels). Results are bit-identical for a given count.")
    var threads: Int = 2

    func apply() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
        Threads.set(cappedThreads(threads))
    }
}

/// `requested` threads, capped at the cores this process may run on (with a one-line notice on standard
/// error): more threads than cores only slow the kernels down, and a thousand would start a thousand
/// threads per pool. The count that runs is the one the results are bit-identical for.
func cappedThreads(_ requested: Int, flag: String = "--threads") -> Int {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    guard requested > cores else { return requested }
    FileHandle.standardError.write(Data("note: \(flag) \(requested) is more than the \(cores) core(s) available; using \(cores)\n".utf8))
    return cores
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one model (FP, QAT, or QAT + SQAKD); writes a run directory (config, record, metrics, log, checkpoints).",
        usage: "sqakd train [--config FILE.json|FILE.yaml] [--set KEY=VALUE]... [--KEY VALUE]... [--output DIR] [--data-root DIR] [--threads N]",
        discussion: """
            Settings are TrainConfig keys (snake_case, as in suites and config.json), applied in order over the \
            recipe that the merged quantizer and style choose (FP teacher, CIFAR QAT, Tiny-ImageNet): --config \
            FILE, then --KEY VALUE flags, then --set KEY=VALUE (quantizer settings: --set quantizer_settings.delta=0). \
            Every key is also a flag with dashes (--batch-size 64, --label-smoothing 0.1; booleans: --nesterov, \
            --no-augment); shorthands: \(ConfigFlags.shorthands.map { "--\($0.flag) = \($0.key)" }.joined(separator: ", ")). \
            Keys: \(ConfigSchema.names.joined(separator: ", ")). Re-running the same command resumes an interrupted run.
            """)

    @Option(help: "Config file: JSON or YAML, TrainConfig keys.") var config: String?
    @Option(name: .customLong("set"), help: "KEY=VALUE (repeatable), applied last.") var assignments: [String] = []
    @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?
    @Option(help: "Run directory (default runs/<model>-<dataset>-<run id>).") var output: String?
    @OptionGroup var engine: EngineOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var flags: [String] = []

    func run() throws {
        // Launched by a sweep: die with it, so a killed sweep leaves no orphan run behind.
        if let parent = ProcessInfo.processInfo.environment["SQAKD_SWEEP_PARENT"].flatMap(Int32.init) {
            _ = sqakd_die_with_parent(parent)
        }
        // Line-buffered even into a file, so "run directory: …" cannot land after the error it preceded.
        setvbuf(stdout, nil, _IOLBF, 0)
        try engine.apply()
        var layers: [ConfigOverlay] = []
        if let path = config { layers.append(try ConfigFile.overlay(path)) }
        layers.append(try ConfigFlags.overlay(flags))
        layers.append(try ConfigOverlay.assignments(assignments))
        let c = try TrainConfig.resolve(layers)
        let label = c.isQuantized ? "-\(c.quantizer)-w\(c.bits)a\(c.bits)" + (c.isDistilled ? "-\(c.distill.rawValue)" : "") : ""
        let dir = output ?? "runs/\(c.model)-\(c.dataset)\(label)-\(c.runID)"
        print("run directory: \(dir)")
        let record: RunRecord
        do { record = try Trainer(config: c, runDirectory: URL(fileURLWithPath: dir), dataRoot: dataRoot).train() } catch let busy as RunLockBusy {
            FileHandle.standardError.write(Data("Error: \(busy)\n".utf8))
            throw ExitCode(RunLock.busyExitStatus)
        }
        if let best = record.bestTop1, let last = record.lastTop1 {
            print(String(format: "best test top-1 %.2f%% (epoch %d), last %.2f%%, wall %@", best, record.bestEpoch ?? 0, last,
                         formatDuration(record.wallSeconds) as NSString))
        }
    }
}

/// `--KEY VALUE` flags of `sqakd train`: every config key with dashes (`--batch-size`), booleans as
/// `--KEY` / `--no-KEY`, and a few shorthands. Each flag is a config key; nothing is copied field by field.
enum ConfigFlags {
    static let shorthands: [(flag: String, key: String)] = [
        ("batch", "batch_size"), ("wd", "weight_decay"), ("lr-q", "quantizer_lr"), ("init", "init_from"),
    ]

    static func overlay(_ args: [String]) throws -> ConfigOverlay {
        var o = ConfigOverlay()
        var i = 0
        while i < args.count {
            let arg = args[i]
            guard arg.hasPrefix("--"), arg.count > 2 else {
                throw ConfigError("unexpected argument '\(arg)'; settings are --KEY VALUE or --set KEY=VALUE")
            }
            var name = String(arg.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            let source = ConfigSource("--\(name)")
            func key(_ flag: String) -> ConfigSchema.Key? {
                let k = shorthands.first { $0.flag == flag }?.key ?? flag.replacingOccurrences(of: "-", with: "_")
                return ConfigSchema.keys.first { $0.name == k }
            }
            if let k = key(name), k.kind == .bool, inline == nil {
                o.set(k.name, .bool(true), source)
            } else if name.hasPrefix("no-"), let k = key(String(name.dropFirst(3))), k.kind == .bool, inline == nil {
                o.set(k.name, .bool(false), source)
            } else if let k = key(name) {
                if let v = inline {
                    o.set(k.name, .text(v), source)
                } else {
                    guard i + 1 < args.count else { throw ConfigError("--\(name) needs a value") }
                    i += 1
                    o.set(k.name, .text(args[i]), source)
                }
            } else {
                throw ConfigError("unknown option '--\(name)'; flags are config keys with dashes (\(ConfigSchema.names.map { "--" + $0.replacingOccurrences(of: "_", with: "-") }.joined(separator: " "))), --set KEY=VALUE, --config, --output, --data-root, --threads")
            }
            i += 1
        }
        return o
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint (ours or PyTorch's, safetensors with the reference's names): top-1, top-5, mean loss.")

    @Option(help: "A .safetensors state dict.") var checkpoint: String
    @Option(help: "Dataset id.") var dataset: String
    @Option(help: "Model name (default: from the checkpoint's metadata, else inferred from its keys).") var model: String?
    @Option(help: "Evaluation batch size.") var batch: Int = 100
    @Option(help: "Resolution (tiny-imagenet: resize to ⌊S·256/224⌋, centre crop S; default 224).") var imageSize: Int?
    @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?
    @OptionGroup var engine: EngineOptions

    func run() throws {
        try engine.apply()
        guard batch >= 1 else { throw ValidationError("--batch must be ≥ 1") }
        let kind = try DatasetKind(id: dataset)
        if let imageSize, !kind.isResizable, imageSize != kind.info.height {
            throw ValidationError("--image-size \(imageSize): \(dataset) is evaluated at its stored \(kind.info.height)×\(kind.info.width) only")
        }
        let test = try kind.load(root: dataRoot, split: .test)
        let net = try Checkpoint.loadModel(from: URL(fileURLWithPath: checkpoint), architecture: model)
        guard net.classes == test.classCount else {
            throw ConfigError("\(checkpoint) has \(net.classes) classes but \(dataset) has \(test.classCount)")
        }
        let r = try evaluate(net, on: test, batchSize: batch, transform: kind.evaluationTransform(imageSize: imageSize))
        print(String(format: "%@ on %@ (%d images): top-1 %.2f%%  top-5 %.2f%%  loss %.6f", net.architecture, dataset, r.count, r.top1, r.top5, r.loss))
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model zoo with parameter counts and MACs per image.")

    func run() throws { print(try ModelZoo.listing()) }
}

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Check datasets; prepare Tiny-ImageNet.", subcommands: [Verify.self, Prepare.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find a dataset's files and say what is missing and how to get it (prepared data: sizes and sha256 against its manifest).")
        @Argument(help: "Dataset id.") var dataset: String
        @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?

        func run() throws {
            let v = try DatasetKind(id: dataset).verify(root: dataRoot, checksums: true)
            print(v.description)
            if !v.ok { throw ExitCode(1) }
        }
    }

    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode a dataset's source files into the packed files training reads (tiny-imagenet).",
            discussion: """
                tiny-imagenet: --from is the unzipped tiny-imagenet-200 folder (\(TinyImageNet.downloadURL)): wnids.txt, \
                train/<wnid>/images/*.JPEG, and val/images/*.JPEG with val/val_annotations.txt or per-wnid val/<wnid>/ \
                folders. Writes <data root>/tiny-imagenet/ (packed uint8 images, int32 labels, manifest.json with sha256s); \
                an interrupted run leaves no partial data behind and is simply run again.
                """)
        @Argument(help: "Dataset id (tiny-imagenet).") var dataset: String
        @Option(help: "The source folder (tiny-imagenet-200).") var from: String
        @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?
        @Flag(help: "No progress bar.") var quiet = false

        func run() throws {
            let kind = try DatasetKind(id: dataset)
            guard kind == .tinyImageNet else {
                throw ValidationError("\(dataset) needs no preparation (`sqakd data verify \(dataset)` checks its files); only tiny-imagenet is prepared")
            }
            let bar = ProgressBar("decoding")
            bar.quiet = quiet
            let m = try TinyImageNet.prepare(from: from, root: dataRoot) { bar.update(done: $0, total: $1) }
            let counts = ["train", "val"].compactMap { s in m.splits[s].map { "\(s) \($0.count) (\($0.perClass)/class)" } }
            print("prepared \(m.classCount) classes, \(counts.joined(separator: ", ")), val layout \(m.valLayout), in \(TinyImageNet.directory(root: dataRoot))")
        }
    }
}
