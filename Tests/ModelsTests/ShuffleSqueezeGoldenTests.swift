import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Models

// ShuffleNet-V2 ×0.5 and SqueezeNet 1.0 (10 classes, two 64×64 images) against torchvision 0.14 (the
// torchvision 0.11 definitions the authors used are the same): the sine format of scripts/make_imagenet_golden.py,
// Golden/<model>_golden.safetensors (`ImageNetGolden`, ImageNetGoldenTests.swift, reads it), whose docstring
// defines the closed-form weight pattern (`SinePattern` below computes the same) and lists the stored tensors.

/// The sine format's closed-form weights (scripts/make_imagenet_golden.py `sine_pattern`, `set_sine_pattern`).
enum SinePattern {
    /// Element i of state tensor number t (its position among the sorted state-dict keys) before scaling:
    /// sin(0.1·((i² + 7919·i + 104729·t) mod 65521) + 0.3), in double precision.
    static func u(_ n: Int, _ t: Int) -> [Double] {
        (0..<n).map { i in sin(0.1 * Double((i * i + 7919 * i + 104729 * t) % 65521) + 0.3) }
    }

    /// Sets every parameter and buffer of `model`: conv/linear weights u·√(2g/fan_in), other biases 0.1u;
    /// BN weight 1 + 0.2u, bias 0.1u, running_mean 0.1u, running_var 1 + 0.5u, num_batches_tracked 0.
    static func set(_ model: any Model, gain: Double) {
        let entries = model.namedTensors()
        let order = entries.map(\.name).sorted()
        for e in entries {
            let path = e.name.split(separator: ".").dropLast().joined(separator: ".")
            let field = String(e.name.split(separator: ".").last!)
            if field == "num_batches_tracked" { e.tensor.fill(0); continue }
            let u = u(e.tensor.count, order.firstIndex(of: e.name)!)
            let isBN = model.layer(at: path) is BatchNorm2d
            let fanIn = Double(e.tensor.count / e.tensor.shape[0])
            let values: [Float] = u.map { u in
                switch (isBN, field) {
                case (true, "weight"): return Float(1 + 0.2 * u)
                case (true, "running_var"): return Float(1 + 0.5 * u)
                case (false, "weight"): return Float(u * (2 * gain / fanIn).squareRoot())
                default: return Float(0.1 * u)
                }
            }
            e.tensor.copyElements(from: Tensor(shape: e.tensor.shape, values: values).toLayout(e.tensor.layout))
        }
    }
}

/// Dropout with a fixed mask (the golden's `dropout_mask`): y = x ⊙ mask in training, x in evaluation.
final class FixedMask: Layer {
    let mask: Tensor
    init(_ mask: Tensor) { self.mask = mask }
    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        guard mode == .train else { return x }
        let xs = x.toLayout(.plain), y = Tensor(shape: x.shape)
        for i in 0..<y.count { y[i] = xs[i] * mask[i] }
        return y.toLayout(x.layout)
    }
    func backward(_ dy: Tensor) -> Tensor { forward(dy, mode: .train) }
}

@Suite("ImageNet models vs torchvision")
struct ImageNetModelGoldenTests {
    /// (zoo name, weight gain of the pattern).
    static let cases: [(String, Double)] = [("shufflenet_v2_x0_5", 1), ("squeezenet1_0", 2)]

    /// Our state names are torchvision's state-dict keys, exactly (same set, each once), and every
    /// torchvision module path is a path of our tree.
    @Test(arguments: cases.map(\.0))
    func stateDictKeysAndModulePathsMatchTorchvision(_ name: String) throws {
        let g = try ImageNetGolden(file: name + "_golden")
        let model = try ModelZoo.make(name, classes: 10, seed: 0)
        let ours = model.namedTensors().map(\.name)
        let theirs = try g.list("keys")
        #expect(ours.count == theirs.count && Set(ours) == Set(theirs),
                "only ours: \(Set(ours).subtracting(theirs).sorted()); only torchvision's: \(Set(theirs).subtracting(ours).sorted())")
        #expect(Set(ours).count == ours.count)
        let paths = Set(model.modules().map(\.path))
        let missing = try g.list("modules").filter { !paths.contains($0) }
        #expect(missing.isEmpty, "torchvision modules missing from our tree: \(missing)")
        #expect(model.parameterCount == (try g.integer("parameter_count")))
    }

    /// Eval-mode logits and loss; train-mode logits, loss, gradients and running statistics.
    /// Tolerances: logits atol 1e-4, rtol 1e-4 and losses 1e-5 relative (summation order differs through
    /// ~50 layers); full gradients atol 3e-4·(largest |g| of the tensor), rtol 1e-3 (ShuffleNet's stem
    /// gradient differs in 2 of 648 elements by 0.6%, 1.3e-4 of its largest: one ReLU input of the
    /// torchvision run lies 9.8e-6 from zero, within the two engines' rounding difference, and a flipped
    /// ReLU moves the stem gradient locally; no max-pool near-tie: the stem pool's closest top-two gap among
    /// positive maxima is 1.4e-4); per-tensor gradient
    /// sums and norms atol 1e-5 + 1e-4·√n·norm (a sum of n terms each off by ε·|g| is off by at most
    /// ε·√n·‖g‖), rtol 1e-3 for norms. BN biases whose shift the next train-mode BN removes have gradients
    /// that are rounding noise (~1e-7) in both engines: the atol covers them.
    @Test(arguments: cases)
    func forwardBackwardMatchTorchvision(_ name: String, _ gain: Double) throws {
        let g = try ImageNetGolden(file: name + "_golden")
        let model = try ModelZoo.make(name, classes: 10, seed: 0)
        SinePattern.set(model, gain: gain)
        if let mask = g.file.tensors["dropout_mask"] {
            #expect(model.layer(at: "classifier.0") is Dropout)
            try model.replaceLayer(at: "classifier.0", with: FixedMask(mask))
        }
        let x = try g.tensor("input"), labels = try g.tensor("labels").array.map { Int($0) }
        let loss = CrossEntropyLoss()

        let logitsEval = model.forward(x, mode: .eval)
        expectClose(logitsEval, try g.tensor("logits_eval"), atol: 1e-4, rtol: 1e-4, "\(name) eval logits", hint: imageNetGoldenHint)
        let lossEval = loss(logitsEval, labels: labels).loss
        expectClose(lossEval, Double(try g.tensor("loss_eval")[0]), atol: 1e-5, rtol: 1e-5, "\(name) eval loss")

        let logits = model.forward(x, mode: .train)
        expectClose(logits, try g.tensor("logits"), atol: 1e-4, rtol: 1e-4, "\(name) logits", hint: imageNetGoldenHint)
        let (l, dLogits) = loss(logits, labels: labels)
        expectClose(l, Double(try g.tensor("loss")[0]), atol: 1e-5, rtol: 1e-5, "\(name) loss")
        model.zeroGrad()
        _ = model.backward(dLogits)

        let parameters = Dictionary(uniqueKeysWithValues: model.parameters().map { ($0.name, $0.parameter) })
        let names = try g.list("parameters")
        #expect(names.count == parameters.count)
        let sums = try g.tensor("grad_sum"), norms = try g.tensor("grad_norm")
        for (i, p) in names.enumerated() {
            guard let grad = parameters[p]?.grad.plainArray else { Issue.record("no parameter \(p)"); continue }
            let sum = grad.reduce(0.0) { $0 + Double($1) }, norm = grad.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let slack = 1e-5 + 1e-4 * Double(grad.count).squareRoot() * Double(norms[i])
            expectClose(sum, Double(sums[i]), atol: slack, rtol: 0, "\(name) grad sum \(p)", hint: imageNetGoldenHint)
            expectClose(norm, Double(norms[i]), atol: slack, rtol: 1e-3, "\(name) grad norm \(p)", hint: imageNetGoldenHint)
        }
        for key in g.file.tensors.keys where key.hasPrefix("grad.") {
            let p = String(key.dropFirst(5)), expected = try g.tensor(key)
            guard let grad = parameters[p]?.grad else { Issue.record("no parameter \(p)"); continue }
            let scale = expected.array.map(abs).max() ?? 0
            expectClose(grad, expected, atol: 3e-4 * scale, rtol: 1e-3, "\(name) \(key)", hint: imageNetGoldenHint)
        }

        let buffers = Dictionary(uniqueKeysWithValues: model.buffers().map { ($0.name, $0.buffer) })
        if let bufferSums = g.file.tensors["buffer_sum"] {
            let bufferNorms = try g.tensor("buffer_norm")
            for (i, b) in try g.list("buffers").enumerated() {
                guard let v = buffers[b]?.value.array else { Issue.record("no buffer \(b)"); continue }
                let sum = v.reduce(0.0) { $0 + Double($1) }, norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                expectClose(sum, Double(bufferSums[i]), atol: 1e-4, rtol: 1e-5, "\(name) \(b) sum")
                expectClose(norm, Double(bufferNorms[i]), atol: 1e-4, rtol: 1e-5, "\(name) \(b) norm")
            }
        }
        for (n, b) in buffers where n.hasSuffix("num_batches_tracked") { #expect(b.value[0] == 1, "\(n)") }
    }
}
