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
    public var threads: Int
    public var trainImagesPerSecond: Double
    public var inferenceImagesPerSecond: Double
    public var trainStepMilliseconds: [Double]
    public var inferenceMilliseconds: [Double]
}

public func benchmark(model name: String, batch: Int, classes: Int = 10, inputChannels: Int = 3, size: Int = 32,
                      warmup: Int = 3, steps: Int = 10) throws -> BenchmarkResult {
    guard batch >= 1, steps >= 1, warmup >= 0 else { throw ConfigError("batch and steps must be ≥ 1") }
    let model = try ModelZoo.make(name, classes: classes, inputChannels: inputChannels, seed: 0)
    var rng = RNG(seed: 1)
    let x = Tensor(shape: [batch, inputChannels, size, size])
    for i in 0..<x.count { x.data[i] = rng.normal() }
    let labels = (0..<batch).map { _ in Int32(rng.below(classes)) }
    let sgd = SGD(groups: [ParameterGroup(parameters: model.parameters(), lr: 0.01, weightDecay: 1e-4)], momentum: 0.9)
    let ce = CrossEntropyLoss()

    func trainStep() {
        sgd.zeroGrad()
        let logits = model.forward(x, mode: .train)
        let (_, d) = ce(logits, labels: labels)
        _ = model.backward(d)
        sgd.step()
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
    return BenchmarkResult(model: name, batch: batch, threads: Threads.count,
                           trainImagesPerSecond: Double(batch) / (median(train) / 1000),
                           inferenceImagesPerSecond: Double(batch) / (median(infer) / 1000),
                           trainStepMilliseconds: train, inferenceMilliseconds: infer)
}
