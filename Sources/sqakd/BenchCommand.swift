import ArgumentParser
import Benchmarks
import Foundation
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
        @Option var classes: Int = 10
        @Option(help: "Input height and width of the synthetic images.") var imageSize: Int = 32
        @Option(help: "Quantizer scheme (fp = full precision).") var quantizer: String = "fp"
        @Option(help: "Weight and activation bit-width.") var bits: Int = 32
        @Option(help: "A distillation method (\(DistillationMethod.spellings.joined(separator: ", "))): adds the teacher's forward and the method's loss.") var distill: String = "none"
        @Option(help: "Timed steps (median reported).") var steps: Int = 10
        @Option var warmup: Int = 3
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var engine: EngineOptions

        func run() throws {
            try engine.apply()
            let r = try benchmark(model: model, batch: batch, classes: classes, size: imageSize, quantizer: quantizer, bits: bits,
                                  distill: distill, warmup: warmup, steps: steps)
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys]
                print(String(decoding: try e.encode(r), as: UTF8.self))
            } else {
                print(String(format: "%@ batch %d threads %d: train %.1f images/s (%.1f ms/step), inference %.1f images/s",
                             model + (quantizer == "fp" ? "" : " \(quantizer) W\(bits)A\(bits)") + (distill == "none" ? "" : " distill \(distill)"), batch, r.threads, r.trainImagesPerSecond, Double(batch) / r.trainImagesPerSecond * 1000,
                             r.inferenceImagesPerSecond))
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
            abstract: "Augmented 3×32×32 batches of 128 built per second on one thread (target > 5,000).")

        @Option(help: "Synthetic images per epoch.") var images: Int = 2048
        @Option var epochs: Int = 4

        func validate() throws {
            guard images >= 128, epochs >= 1 else { throw ValidationError("--images must be ≥ 128 and --epochs ≥ 1") }
        }

        func run() throws {
            let r = try loaderBenchmark(images: images, epochs: epochs)
            print("BatchLoader throughput: \(Int(r.imagesPerSecond)) augmented 3×32×32 images/s on one thread (\(r.images) images)")
        }
    }
}
