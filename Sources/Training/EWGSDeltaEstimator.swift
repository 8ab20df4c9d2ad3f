import Foundation
import Kernels
import Models
import NN
import Quantization
import Tensors

/// Hutchinson estimates of Tr(∂²L/∂Q_i²) for several probed tensors Q_i, with Hessian-vector products by
/// central finite differences of gradients (we have no double backward):
///
///     H_i v_i ≈ (∇_{Q_i} L(Q + ε·v) − ∇_{Q_i} L(Q − ε·v)) / (2ε),   v_i ∈ {−1, +1}^numel(Q_i) (Rademacher)
///     sample_i = Σ v_i ⊙ H_i v_i   (double),   Tr(H_i) ≈ mean of the samples
///
/// Stopping rule, per tensor, exactly as the authors' `trace` (EWGS `CIFAR10/utils.py:140-168`; SQAKD
/// `CIFAR/utils.py:205-233`): at most `maxIterations` samples; after each, stop when
/// |mean − previous mean| / (previous mean + 1e-6) < `tolerance` (previous mean starts at 0; a negative
/// previous mean makes the ratio negative and stops at once, as in the authors' code).
///
/// Modes: `perTensor` runs one Hutchinson chain per tensor, perturbing that tensor alone (the authors'
/// loop: 2 gradient passes per sample per tensor). `joint` perturbs every still-running tensor at once,
/// each with its own v_i, and reads each sample from its own gradient: sample_i = v_iᵀH_ii v_i +
/// Σ_{j≠i} v_iᵀH_ij v_j, whose cross terms have mean 0 (independent v's), so it estimates the same
/// Tr(H_ii) with more variance at 1/#tensors of the cost. A tensor that has stopped is no longer perturbed.
///
/// The FD measures the curvature of the network as it runs (rounding downstream of Q_i is piecewise
/// constant, ReLU kinks are crossed with probability ∝ ε), while the authors' autograd double backward
/// differentiates their surrogate (downstream discretizers pass their EWGS/STE backward). The two agree
/// wherever the loss is smooth in Q_i (tests: a quadratic, exact; a small network); ε = 1e-3 (Q spans
/// [0, 1], its grid step is ≥ 1/15 at 4 bits) keeps kink crossings rare and float32 round-off in the
/// gradient difference ~1e-4 relative.
public struct HutchinsonTrace {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        case perTensor = "per-tensor"
        case joint
    }

    public var maxIterations = 50
    public var tolerance = 1e-3
    public var epsilon: Float = 1e-3
    public var mode: Mode = .perTensor

    public init(mode: Mode = .perTensor) { self.mode = mode }

    /// One estimate per probe: the mean sample (Tr(H_i)) and the number of samples taken.
    public struct Estimate: Equatable, Sendable {
        public var trace: Double
        public var iterations: Int
    }

    /// H_i v_i ≈ (∇_{Q_i}L(Q + ε·v) − ∇_{Q_i}L(Q − ε·v))/(2ε) for every probe at once (all perturbed
    /// together: `vectors[i]` has probe i's gradient shape and layout). Two calls of `pass`; float32
    /// difference, divided in double. Clears the perturbations.
    public func hessianVectorProducts(probes: [QuantizerProbe], vectors: [Tensor], pass: () -> Void) -> [Tensor] {
        precondition(probes.count == vectors.count, "HutchinsonTrace: \(probes.count) probes, \(vectors.count) vectors")
        var plus: [Tensor] = []
        for sign: Float in [1, -1] {
            for (p, v) in zip(probes, vectors) {
                let e = Tensor(shape: v.shape, layout: v.layout, zeroed: false)
                withUnsafeMutablePointers(e, v) { [n = v.count, scale = sign * epsilon] e, v in
                    for j in 0..<n { e[j] = scale * v[j] }
                }
                p.perturbation = e
            }
            pass()
            if sign > 0 { plus = probes.map { $0.gradient! } }
        }
        for p in probes { p.perturbation = nil }
        return zip(probes, vectors).enumerated().map { k, pv in
            let (p, v) = pv
            let gp = plus[k], gm = p.gradient!
            precondition(gp.shape == v.shape && gm.shape == v.shape && gp.layout == v.layout && gm.layout == v.layout,
                         "HutchinsonTrace: gradient of probe \(k) has shape \(gm.shape) \(gm.layout), vector \(v.shape) \(v.layout)")
            let hv = Tensor(shape: v.shape, layout: v.layout, zeroed: false)
            withUnsafeMutablePointers(hv, gp, gm) { [n = v.count, h = 2 * Double(epsilon)] hv, gp, gm in
                for j in 0..<n { hv[j] = Float((Double(gp[j]) - Double(gm[j])) / h) }
            }
            return hv
        }
    }

    /// `pass` runs the forward and backward of L with the probes' current perturbations, leaving
    /// ∇_{Q_i}L in `probes[i].gradient`. Every probe must hold a gradient already (from an unperturbed
    /// pass), which fixes its shape and layout. Draws v_i from `rng.derived(i).derived(iteration)`, so
    /// the two modes see the same vectors. Perturbations are cleared on return.
    public func traces(probes: [QuantizerProbe], rng: RNG, pass: () -> Void) -> [Estimate] {
        let templates: [Tensor] = probes.enumerated().map { i, p in
            guard let g = p.gradient else { preconditionFailure("HutchinsonTrace: probe \(i) has no gradient yet") }
            return g
        }
        var samples = [[Double]](repeating: [], count: probes.count)
        var running = [Double](repeating: 0, count: probes.count)
        var active = Array(repeating: true, count: probes.count)
        defer { for p in probes { p.perturbation = nil } }

        func vector(_ i: Int, _ iteration: Int) -> Tensor {
            var r = rng.derived(UInt64(i)).derived(UInt64(iteration))
            let t = templates[i]
            let v = Tensor(shape: t.shape, layout: t.layout, zeroed: false)
            v.withUnsafeMutablePointer { v in
                var k = 0
                while k < t.count {
                    var bits = r.next()
                    for _ in 0..<min(64, t.count - k) {
                        v[k] = bits & 1 == 0 ? -1 : 1
                        bits >>= 1
                        k += 1
                    }
                }
            }
            return v
        }

        /// Runs one ± pair for the tensors in `set`, appends their samples, updates `active`.
        func sample(_ set: [Int], iteration: Int) {
            let vs = set.map { vector($0, iteration) }
            let hvs = hessianVectorProducts(probes: set.map { probes[$0] }, vectors: vs, pass: pass)
            for (k, i) in set.enumerated() {
                var s = 0.0
                withUnsafeMutablePointers(hvs[k], vs[k]) { [n = vs[k].count] hv, v in
                    for j in 0..<n { s += Double(v[j]) * Double(hv[j]) }
                }
                samples[i].append(s)
                let mean = samples[i].reduce(0, +) / Double(samples[i].count)
                if abs(mean - running[i]) / (running[i] + 1e-6) < tolerance {
                    active[i] = false
                    probes[i].perturbation = nil
                } else {
                    running[i] = mean
                }
            }
        }

        switch mode {
        case .perTensor:
            for i in probes.indices {
                for iteration in 0..<maxIterations where active[i] { sample([i], iteration: iteration) }
                probes[i].perturbation = nil
            }
        case .joint:
            for iteration in 0..<maxIterations {
                let set = probes.indices.filter { active[$0] }
                if set.isEmpty { break }
                sample(set, iteration: iteration)
            }
        }
        return samples.map { Estimate(trace: $0.reduce(0, +) / Double(max($0.count, 1)), iterations: $0.count) }
    }
}

/// The EWGS paper's δ (Lee et al., "Network Quantization with Element-wise Gradient Scaling", CVPR 2021,
/// §3.3), as the authors' `update_grad_scales` computes it (EWGS `CIFAR10/utils.py:26-114`; the copy in
/// SQAKD `CIFAR/utils.py:91-179`, never called: `train_quant.py:364-365` prints instead, reference §2.2.5):
///
///     for each of the first 3 training batches (train mode; labelled cross-entropy, no smoothing):
///         one forward + backward  →  g_i = ∂L/∂Q_i for every EWGS quantizer's discretized value Q_i
///         T_i = Hutchinson Tr(∂²L/∂Q_i²)                       (`HutchinsonTrace`)
///         s_i += [T_i / numel(Q_i)] / (3·std(g_i))             (std unbiased, as torch)
///     δ_i = max(s_i / #batches, 0)   → `bkwd_scaling_factorW` / `bkwd_scaling_factorA` of each layer
///
/// Q is the discretizer's [0, 1] output on both operands of every QConv (weights before the 2(Q − 0.5)
/// shift); upstream updates both δ_W and δ_A (`QWeightFlag`, `QActFlag` default true). Upstream runs it
/// every `update_every` = 10 epochs for ep > 0 (EWGS `CIFAR10/train_quant.py:250-251`), i.e. before
/// epochs 10, 20, …; `TrainConfig.ewgsDeltaUpdateEvery` sets the interval here.
///
/// Side effects, as upstream: the unperturbed pass of each batch moves BatchNorm running statistics once
/// (3 train-mode forwards); the perturbed passes do not (buffers are restored after each batch). Gradients
/// are zeroed on return. A batch whose ∂L/∂Q_i is constant (std 0: no gradient reaches the layer) adds
/// nothing to s_i (upstream would divide by 0). Upstream divides by the index of the last batch, which is 3 only when the loader
/// has more than 3 batches; here the divisor is the number of batches used (min(3, batches)).
public final class EWGSDeltaEstimator {
    /// One layer's result.
    public struct LayerDelta: Equatable, Sendable {
        public var path: String
        public var deltaWeight: Float?
        public var deltaActivation: Float?
        /// Mean over batches of Tr(H)/numel (weights, activations).
        public var traceWeight: Double?
        public var traceActivation: Double?
        /// Hutchinson samples summed over batches.
        public var iterationsWeight = 0
        public var iterationsActivation = 0
    }

    public let model: any Model
    public var hutchinson: HutchinsonTrace

    /// (layer path, role, quantizer) in network order, weight before activation.
    let targets: [(path: String, role: QuantizerRole, quantizer: EWGSQuantizer)]

    public init(model: any Model, mode: HutchinsonTrace.Mode = .perTensor) {
        self.model = model
        hutchinson = HutchinsonTrace(mode: mode)
        var t: [(String, QuantizerRole, EWGSQuantizer)] = []
        for (path, layer) in quantizedLayers(in: model) {
            if let w = layer.weightQuantizer as? EWGSQuantizer { t.append((path, .weight, w)) }
            if let a = layer.inputQuantizer as? EWGSQuantizer { t.append((path, .activation, a)) }
        }
        targets = t
    }

    /// Whether the model has EWGS quantizers at all.
    public var isApplicable: Bool { !targets.isEmpty }

    /// Estimates δ on `batches` (images [B, C, H, W], labels), writes it into every EWGS quantizer and
    /// returns the per-layer values. `rng` draws the Rademacher vectors.
    @discardableResult
    public func update(batches: [(images: Tensor, labels: [Int32])], rng: RNG) -> [LayerDelta] {
        precondition(!batches.isEmpty, "EWGSDeltaEstimator needs at least one batch")
        let probes = targets.map { _ in QuantizerProbe() }
        for (k, t) in targets.enumerated() { t.quantizer.probe = probes[k] }
        defer {
            for t in targets { t.quantizer.probe = nil }
            for p in model.parameters() { p.parameter.zeroGrad() }
        }
        let loss = CrossEntropyLoss()
        var scale = [Double](repeating: 0, count: targets.count)
        var traceSum = [Double](repeating: 0, count: targets.count)
        var iterations = [Int](repeating: 0, count: targets.count)
        for (b, batch) in batches.enumerated() {
            func pass() {
                let logits = model.forward(batch.images, mode: .train)
                _ = model.backward(loss(logits, labels: batch.labels).dLogits)
            }
            pass()
            for (k, t) in targets.enumerated() where probes[k].gradient == nil {
                // EWGS never quantizes the first layer (the only one whose input gradient is skipped).
                preconditionFailure("EWGSDeltaEstimator: no ∂L/∂Q reached \(t.path) (\(t.role)); its input gradient is not propagated")
            }
            let buffers = model.buffers().map { ($0.buffer, $0.buffer.value.copy()) }
            let stds = probes.map { p in p.gradient!.withUnsafeMutablePointer { tensorStatistics($0, count: p.gradient!.count).std } }
            let estimates = hutchinson.traces(probes: probes, rng: rng.derived(UInt64(b)), pass: pass)
            for (buffer, saved) in buffers { buffer.value.copyElements(from: saved) }
            for k in targets.indices {
                let perElement = estimates[k].trace / Double(probes[k].gradient!.count)
                traceSum[k] += perElement
                let term = perElement / (stds[k] * 3)
                if term.isFinite { scale[k] += term }
                iterations[k] += estimates[k].iterations
            }
        }
        var byPath: [String: LayerDelta] = [:]
        var order: [String] = []
        for (k, t) in targets.enumerated() {
            let delta = Float(max(scale[k] / Double(batches.count), 0))
            t.quantizer.delta = delta
            if byPath[t.path] == nil { byPath[t.path] = LayerDelta(path: t.path); order.append(t.path) }
            let trace = traceSum[k] / Double(batches.count)
            switch t.role {
            case .weight:
                byPath[t.path]!.deltaWeight = delta
                byPath[t.path]!.traceWeight = trace
                byPath[t.path]!.iterationsWeight = iterations[k]
            case .activation:
                byPath[t.path]!.deltaActivation = delta
                byPath[t.path]!.traceActivation = trace
                byPath[t.path]!.iterationsActivation = iterations[k]
            }
        }
        return order.map { byPath[$0]! }
    }
}
