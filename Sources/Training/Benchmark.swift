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
}

/// Times the training step of `sqakd train` with the same options on a synthetic batch:
/// FP: forward, cross-entropy, backward, SGD (momentum 0.9, wd 1e-4).
/// QAT (`quantizer` ≠ fp): the quantized student (calibrated on the batch), the recipe's optimizers as in `train`;
/// with `distill` (any `DistillationMethod`) the FP teacher's eval forward and the method's loss mix
/// (`TrainConfig.objective`, default weights) replace the plain cross-entropy, its own modules stepped too.
/// crd and cktf keep memory banks of `dataCount` samples (CIFAR's 50,000; labels i mod classes) and see the
/// batch as samples 0 ..< batch of epoch 0, their negatives drawn afresh each step.
public func benchmark(model name: String, batch: Int, classes: Int = 10, inputChannels: Int = 3, size: Int = 32,
                      quantizer: String = "fp", bits: Int = 32, distill: String = "none",
                      warmup: Int = 3, steps: Int = 10, dataCount: Int = 50_000) throws -> BenchmarkResult {
    guard batch >= 1, steps >= 1, warmup >= 0 else { throw ConfigError("batch and steps must be ≥ 1") }
    var settings = ConfigOverlay(["model": .string(name), "quantizer": .string(quantizer), "bits": .integer(bits),
                                  "distill": .text(distill), "epochs": .integer(1)], source: ConfigSource("sqakd bench"))
    var teacherDirectory: URL?
    if distill != DistillationMethod.none.rawValue {
        // A freshly initialised FP teacher of the same architecture: timing does not depend on its weights.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqakd-bench-teacher-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("teacher.safetensors")
        try Checkpoint.saveModel(ModelZoo.make(name, classes: classes, inputChannels: inputChannels, seed: 0), to: url)
        settings.set("teacher", .string(url.path), ConfigSource("sqakd bench"))
        teacherDirectory = dir
    }
    defer { if let teacherDirectory { try? FileManager.default.removeItem(at: teacherDirectory) } }
    let config = try TrainConfig.resolve([settings])
    let minimumSize = try ModelZoo.entry(name).minimumInputSize
    guard size >= minimumSize else { throw ConfigError("image size \(size): \(name) needs inputs of at least \(minimumSize)×\(minimumSize)") }
    let setup = try TrainingSetup(config: config, classes: classes, inputChannels: inputChannels, inputHeight: size,
                                  inputWidth: size, iterationsPerEpoch: 1,
                                  trainingLabels: (0..<max(dataCount, batch)).map { Int32($0 % classes) })
    let model = setup.student
    var rng = RNG(seed: 1)
    let x = Tensor(shape: [batch, inputChannels, size, size])
    x.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] = rng.normal() } }
    let labels = (0..<batch).map { _ in Int32(rng.below(classes)) }
    if config.isQuantized { setup.calibrate(x) }
    setup.setLearningRates(epoch: 0)
    let step = try TrainingStep(setup: setup, objective: setup.objective)
    var epoch = 0
    func trainStep() {
        _ = step(x, labels: labels, samples: BatchSamples(indices: Array(0..<batch), epoch: epoch))
        epoch += 1
    }
    func time(_ f: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        f()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    }
    for _ in 0..<warmup { trainStep() }
    let train = (0..<steps).map { _ in time(trainStep) }
    for _ in 0..<warmup { _ = model.forward(x, mode: .eval) }
    let infer = (0..<steps).map { _ in time { _ = model.forward(x, mode: .eval) } }
    // Median step time: robust to the odd hiccup of a shared machine.
    func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
    return BenchmarkResult(model: name, batch: batch, imageSize: size, threads: Threads.count,
                           trainImagesPerSecond: Double(batch) / (median(train) / 1000),
                           inferenceImagesPerSecond: Double(batch) / (median(infer) / 1000),
                           trainStepMilliseconds: train, inferenceMilliseconds: infer)
}
