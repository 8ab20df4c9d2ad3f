import Distillation
import Foundation
import Kernels
import NN
import Tensors
import Testing
@testable import Training

/// β·½‖f‖² on one student feature: dL/df = β·f (an objective that reads an intermediate activation).
struct FeatureEnergy: Objective {
    let path: String
    var name: String { "feature-energy" }
    var usesLabels: Bool { false }
    var usesTeacher: Bool { false }
    var featurePaths: [String] { [path] }

    func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        let f = student.features[path]!.toLayout(.plain)
        let v = f.array
        return ObjectiveValue(loss: v.reduce(0) { $0 + 0.5 * Double($1) * Double($1) }, dLogits: nil,
                              dFeatures: [path: f.copy()])
    }
}

@Suite(.serialized) struct TrainingStepTests {
    init() { Threads.set(2) }

    func batch() -> (Tensor, [Int32]) {
        var rng = RNG(seed: 5)
        let x = Tensor(shape: [8, 3, 32, 32])
        x.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] = rng.normal() } }
        return (x, (0..<8).map { Int32($0 % 10) })
    }

    /// The step hands the objective the tapped feature and feeds its gradient back at the tap: the weight
    /// gradients equal those of a hand-made forward, CE, injection into the tap and backward.
    @Test func featureGradientsReachTheStudent() throws {
        var config = TrainConfig()
        config.model = "resnet20"
        let (x, labels) = batch()
        let beta = 0.001
        let mix = LossMix([(1, CrossEntropyObjective()), (beta, FeatureEnergy(path: "layer2"))])
        let a = try TrainingSetup(config: config, classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        let step = try TrainingStep(setup: a, objective: mix)
        let r = step(x, labels: labels)
        #expect(r.stepped && r.loss.isFinite)

        let b = try TrainingSetup(config: config, classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        let tap = try #require(b.student.tap(["layer2"]).first)
        b.zeroGrad()
        let logits = b.student.forward(x, mode: .train)
        let (ce, dLogits) = CrossEntropyLoss()(logits, labels: labels)
        let f = try #require(tap.output).toLayout(.plain)
        let energy = f.array.reduce(0.0) { $0 + 0.5 * Double($1) * Double($1) }
        let g = f.copy()
        g.withUnsafeMutablePointer { p in for i in 0..<g.count { p[i] *= Float(beta) } }
        tap.injectedGradient = g
        _ = b.student.backward(dLogits)
        #expect(r.loss == ce + beta * energy)
        for (pa, pb) in zip(a.student.parameters(), b.student.parameters()) {
            #expect(pa.parameter.grad.array == pb.parameter.grad.array, "\(pa.name)")
        }
        // The feature term moved the gradients: without it the stem's gradient differs.
        let c = try TrainingSetup(config: config, classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        _ = try TrainingStep(setup: c, objective: LossMix([(1, CrossEntropyObjective())]))(x, labels: labels)
        #expect(c.student.parameters()[0].parameter.grad.array != a.student.parameters()[0].parameter.grad.array)
    }

    /// A feature path the model lacks is one error line, before any training.
    @Test func unknownFeaturePathIsAnError() throws {
        let setup = try TrainingSetup(config: TrainConfig(), classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        #expect(throws: ConfigError.self) {
            _ = try TrainingStep(setup: setup, objective: LossMix([(1, FeatureEnergy(path: "layer9"))]))
        }
    }
}
