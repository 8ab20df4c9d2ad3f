import ArgumentParser
import Benchmarks
import Foundation
import Models
import Training

/// `sqakd bench`: timings on synthetic data. Measurements, not tests: nothing here asserts a speed.
/// Without a subcommand it runs `step` (scripts/bench_*.py and the Makefile call `sqakd bench --model …`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks on synthetic data (default: the training step).",
        subcommands: [Step.self, Conv.self, Layers.self, Optimizer.self, Loader.self], defaultSubcommand: Step.self)

    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Training-step and inference images/s on synthetic data.")

        @Option var model: String = "resnet20"
        @Option var batch: Int = 128
        @Option(help: "Classifier outputs (default: the model's first dataset in `sqakd models`, e.g. 10 for resnet20, 200 for resnet18).")
        var classes: Int?
        @Option(help: "Input height and width (default: the model's input size in `sqakd models`, e.g. 32 for resnet20, 224 for resnet18).")
        var imageSize: Int?
        @Option(help: "Quantizer scheme (fp = full precision).") var quantizer: String = "fp"
        @Option(help: "Weight and activation bit-width.") var bits: Int = 32
        @Option(help: "A distillation method (\(DistillationMethod.spellings.joined(separator: ", "))): adds the teacher's forward and the method's loss.") var distill: String = "none"
        @Flag(help: "With --distill: also time the step without distillation, alternating the two step by step, and report the ratio (what the method costs over the quantizer alone, immune to the CPU's drift between runs).")
        var baseline = false
        @Option(help: "Timed steps (median reported).") var steps: Int = 10
        @Option var warmup: Int = 3
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            guard !baseline || distill != DistillationMethod.none.rawValue else {
                throw ValidationError("--baseline compares a --distill method with the step without it; name one")
            }
        }

        func run() throws {
            try engine.apply()
            let entry = try ModelZoo.entry(model)
            let size = imageSize ?? entry.inputSize.height
            guard size >= entry.minimumInputSize else {
                throw ValidationError("--image-size \(size): \(model) needs at least \(entry.minimumInputSize)")
            }
            let classes = classes ?? entry.datasets.first?.classes ?? 10
            let r = try benchmark(model: model, batch: batch, classes: classes, size: size, quantizer: quantizer, bits: bits,
                                  distill: distill, baseline: baseline, warmup: warmup, steps: steps)
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys]
                print(String(decoding: try e.encode(r), as: UTF8.self))
            } else {
                print(String(format: "%@ %d×%d batch %d threads %d: train %.1f images/s (%.1f ms/step), inference %.1f images/s",
                             model + (quantizer == "fp" ? "" : " \(quantizer) W\(bits)A\(bits)") + (distill == "none" ? "" : " distill \(distill)"), size, size, batch, r.threads, r.trainImagesPerSecond, Double(batch) / r.trainImagesPerSecond * 1000,
                             r.inferenceImagesPerSecond))
                if let ratio = r.baselineRatio {
                    print(String(format: "  timed alternately with the step without distillation: %@ costs %.2f× that step", distill, ratio))
                }
            }
        }
    }

    struct Conv: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ResNet-20 convolutions (batch 128): forward, backward-data, backward-weights, ms per call.",
            discussion: "The PyTorch side of the comparison: scripts/bench_conv_torch.py.")

        @Option(help: "Engine threads.") var threads: Int = 2
        @Option(help: "Calls per measurement (median and minimum reported).") var iterations: Int = 20
        @Option var batch: Int = 128

        func validate() throws {
            guard threads >= 1, iterations >= 1, batch >= 1 else { throw ValidationError("--threads, --iterations and --batch must be ≥ 1") }
        }

        func run() throws {
            for line in convBenchmarkResNet20(threads: threads, iterations: iterations, batch: batch) { print(line) }
        }
    }

    struct Layers: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Non-convolution layers at ResNet-20 shapes (batch norm, ReLU, shortcut, add, pooling head).")

        @Option(help: "Engine threads.") var threads: Int = 2
        @Option(help: "Timed calls per layer (fastest reported).") var repeats: Int = 21

        func validate() throws {
            guard threads >= 1, repeats >= 1 else { throw ValidationError("--threads and --repeats must be ≥ 1") }
        }

        func run() throws {
            for line in layerBenchmarkResNet20(threads: threads, repeats: repeats) { print(line) }
        }
    }

    struct Optimizer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "SGD and Adam update time at ResNet-20 (0.27 M) and ResNet-18 (11.2 M) parameter counts.")

        @Option(parsing: .upToNextOption, help: "Thread counts to compare.") var threads: [Int] = [1, 2]

        func validate() throws {
            guard !threads.isEmpty, threads.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads must be ≥ 1") }
        }

        func run() throws {
            for line in optimizerBenchmark(threads: threads) { print(line) }
        }
    }

    struct Loader: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Augmented batches of 128 built per second on one thread: CIFAR 3×32×32 (target > 5,000), or with --image-size S the Tiny-ImageNet pipeline from 3×64×64 to S×S.")

        @Option(help: "Synthetic images per epoch.") var images: Int = 2048
        @Option var epochs: Int = 4
        @Option(help: "Tiny-ImageNet pipeline at this resolution (random-resized crop + resize + flip).") var imageSize: Int?
        @Flag(help: "With --image-size: the val pipeline (resize + centre crop) instead.") var evaluation = false

        func validate() throws {
            guard images >= 128, epochs >= 1 else { throw ValidationError("--images must be ≥ 128 and --epochs ≥ 1") }
            if let imageSize, !(8...1024).contains(imageSize) { throw ValidationError("--image-size must be in 8…1024") }
            if evaluation && imageSize == nil { throw ValidationError("--evaluation needs --image-size") }
        }

        func run() throws {
            let r = try loaderBenchmark(images: images, epochs: epochs, imageSize: imageSize, evaluation: evaluation)
            let what = imageSize.map { "Tiny-ImageNet \(evaluation ? "val" : "train") pipeline 3×64×64 → 3×\($0)×\($0)" } ?? "augmented 3×32×32"
            print("BatchLoader throughput: \(Int(r.imagesPerSecond)) \(what) images/s on one thread (\(r.images) images)")
        }
    }
}
