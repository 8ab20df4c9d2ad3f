import Distillation
import Foundation
import Kernels
import Models
import NN
import Tensors

/// Throughput of one configuration on synthetic data (no loader in the loop): the training step
/// (forward, cross-entropy, backward, SGD with momentum and weight decay) and the eval-mode forward.
public struct BenchmarkResult: Codable, Sendable {
    public var model: String
    public var batch: Int
    /// Input height and width.
    public var imageSize: Int
    public var threads: Int
    public var trainImagesPerSecond: Double
    public var inferenceImagesPerSecond: Double
    public var trainStepMilliseconds: [Double]
    public var inferenceMilliseconds: [Double]
    /// With `baseline`: the same configuration's step without distillation, timed alternately with the method's.
    public var baselineStepMilliseconds: [Double]? = nil

    /// Median of `trainStepMilliseconds` over median of `baselineStepMilliseconds`: the method's cost in steps
    /// of the quantizer alone.
    public var baselineRatio: Double? {
        baselineStepMilliseconds.map { median(trainStepMilliseconds) / median($0) }
    }
}

/// Times the training step of `sqakd train` with the same options on a synthetic batch:
/// FP: forward, cross-entropy, backward, SGD (momentum 0.9, wd 1e-4).
/// QAT (`quantizer` ≠ fp): the quantized student (calibrated on the batch), the recipe's optimizers as in `train`;
/// with `distill` (any `DistillationMethod`) the FP teacher's eval forward and the method's loss mix
/// (`TrainConfig.objective`, default weights) replace the plain cross-entropy, its own modules stepped too.
/// crd and cktf keep memory banks of `dataCount` samples (CIFAR's 50,000; labels i mod classes) and see the
/// batch as samples 0 ..< batch of epoch 0, their negatives drawn afresh each step.
/// `baseline` (with a `distill` other than none): also times the same configuration without distillation,
/// alternating the two step by step (`baselineStepMilliseconds`), so that the ratio of the medians, what the
/// method costs over the quantizer alone, is not moved by the CPU's speed drifting between two runs.
public func benchmark(model name: String, batch: Int, classes: Int = 10, inputChannels: Int = 3, size: Int = 32,
                      quantizer: String = "fp", bits: Int = 32, distill: String = "none", baseline: Bool = false,
                      warmup: Int = 3, steps: Int = 10, dataCount: Int = 50_000) throws -> BenchmarkResult {
    guard batch >= 1, steps >= 1, warmup >= 0 else { throw ConfigError("batch and steps must be ≥ 1") }
    let minimumSize = try ModelZoo.entry(name).minimumInputSize
    guard size >= minimumSize else { throw ConfigError("image size \(size): \(name) needs inputs of at least \(minimumSize)×\(minimumSize)") }
    var rng = RNG(seed: 1)
    let x = Tensor(shape: [batch, inputChannels, size, size])
    x.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] = rng.normal() } }
    let labels = (0..<batch).map { _ in Int32(rng.below(classes)) }
    func bench(_ distill: String) throws -> BenchStep {
        try BenchStep(model: name, classes: classes, inputChannels: inputChannels, size: size, quantizer: quantizer, bits: bits,
                      distill: distill, x: x, labels: labels, dataCount: dataCount)
    }
    let main = try bench(distill)
    let base = baseline && distill != DistillationMethod.none.rawValue ? try bench(DistillationMethod.none.rawValue) : nil
    for _ in 0..<warmup {
        base?.step()
        main.step()
    }
    var train: [Double] = [], baseTrain: [Double] = []
    for _ in 0..<steps {
        if let base { baseTrain.append(milliseconds(base.step)) }
        train.append(milliseconds(main.step))
    }
    let model = main.setup.student
    for _ in 0..<warmup { _ = model.forward(x, mode: .eval) }
    let infer = (0..<steps).map { _ in milliseconds { _ = model.forward(x, mode: .eval) } }
    return BenchmarkResult(model: name, batch: batch, imageSize: size, threads: Threads.count,
                           trainImagesPerSecond: Double(batch) / (median(train) / 1000),
                           inferenceImagesPerSecond: Double(batch) / (median(infer) / 1000),
                           trainStepMilliseconds: train, inferenceMilliseconds: infer,
                           baselineStepMilliseconds: base == nil ? nil : baseTrain)
}

/// One configuration's training step on the synthetic batch, ready to call (the `benchmark` helper).
private final class BenchStep {
    let setup: TrainingSetup
    private let trainingStep: TrainingStep
    private let x: Tensor
    private let labels: [Int32]
    private let batch: Int
    private var epoch = 0

    init(model name: String, classes: Int, inputChannels: Int, size: Int, quantizer: String, bits: Int, distill: String,
         x: Tensor, labels: [Int32], dataCount: Int) throws {
        var settings = ConfigOverlay(["model": .string(name), "quantizer": .string(quantizer), "bits": .integer(bits),
                                      "distill": .text(distill), "epochs": .integer(1)], source: ConfigSource("sqakd bench"))
        var teacherDirectory: URL?
        defer { if let teacherDirectory { try? FileManager.default.removeItem(at: teacherDirectory) } }
        if distill != DistillationMethod.none.rawValue {
            // A freshly initialised FP teacher of the same architecture: timing does not depend on its weights.
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqakd-bench-teacher-\(getpid())-\(distill)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            teacherDirectory = dir
            let url = dir.appendingPathComponent("teacher.safetensors")
            try Checkpoint.saveModel(ModelZoo.make(name, classes: classes, inputChannels: inputChannels, seed: 0), to: url)
            settings.set("teacher", .string(url.path), ConfigSource("sqakd bench"))
        }
        let config = try TrainConfig.resolve([settings])
        let batch = x.shape[0]
        setup = try TrainingSetup(config: config, classes: classes, inputChannels: inputChannels, inputHeight: size,
                                  inputWidth: size, iterationsPerEpoch: 1,
                                  trainingLabels: (0..<max(dataCount, batch)).map { Int32($0 % classes) })
        if config.isQuantized { setup.calibrate(x) }
        setup.setLearningRates(epoch: 0)
        trainingStep = try TrainingStep(setup: setup, objective: setup.objective)
        self.x = x
        self.labels = labels
        self.batch = batch
    }

    func step() {
        _ = trainingStep(x, labels: labels, samples: BatchSamples(indices: Array(0..<batch), epoch: epoch))
        epoch += 1
    }
}

private func milliseconds(_ f: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    f()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
}

/// Median step time: robust to the odd hiccup of a shared machine.
private func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
