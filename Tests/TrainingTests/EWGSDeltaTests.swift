import Foundation
import Kernels
import Models
import NN
import Quantization
import Tensors
import Testing
@testable import Training

// The EWGS paper's δ (`EWGSDeltaEstimator`): Hessian-vector products by finite differences through the
// quantizers' probes, checked on quadratics (exact traces) and against PyTorch's double backward
// (Tests/QuantizationTests/Golden/quirks.safetensors, `ewgs_hessian`, scripts/make_quirks_golden.py).

private let regenerate = "regenerate with `/usr/bin/python3 scripts/make_quirks_golden.py` (repository root)"

/// An EWGS quantizer calibrated so that Q = x exactly for x on the grid k/255 (8 bits, interval [0, 1]).
private func identityQuantizer(_ role: QuantizerRole) -> EWGSQuantizer {
    let q = EWGSQuantizer(role: role, bits: 8)
    q.lower.value[0] = role == .weight ? 0 : 0
    q.upper.value[0] = 1
    return q
}

/// L = ½ Σ_i a_i y_i² + Σ_{i,j} c_ij y_i z_j over two quantizers' outputs y = Q_1 (activation), z = W(Q_2)
/// (weight: z = 2(Q_2 − 0.5)); returns the pass closure that feeds dL/dy, dL/dz into their backwards.
private func quadraticPass(_ q1: EWGSQuantizer, _ x1: Tensor, _ a: [Float],
                           _ q2: EWGSQuantizer, _ x2: Tensor, _ b: [Float], coupling c: Float) -> () -> Void {
    {
        let y = q1.forward(x1, mode: .train).array, z = q2.forward(x2, mode: .train).array
        let sy = y.reduce(0, +), sz = z.reduce(0, +)
        // c_ij = c for all i, j: ∂/∂y_i = a_i y_i + c Σz, ∂/∂z_j = b_j z_j + c Σy.
        _ = q1.backward(Tensor(shape: x1.shape, values: zip(a, y).map { $0 * $1 + c * sz }))
        _ = q2.backward(Tensor(shape: x2.shape, values: zip(b, z).map { $0 * $1 + c * sy }))
    }
}

@Suite("EWGS δ: Hutchinson trace by finite differences", .serialized)
struct EWGSDeltaTests {
    init() { Threads.set(2) }

    private static func grid(_ n: Int, _ seed: UInt64) -> Tensor {
        var r = RNG(seed: seed)
        return Tensor(shape: [n], values: (0..<n).map { _ in Float(r.below(256)) / 255 })
    }

    @Test("quadratic: Tr(H) exact (diagonal: 2 samples, then the tolerance stops); weights see the factor 4 of W = 2(Q − ½)")
    func quadraticExact() {
        let a: [Float] = (0..<16).map { Float($0 % 5) * 0.5 + 0.25 }
        let b: [Float] = (0..<12).map { Float($0 % 3) + 1 }
        let q1 = identityQuantizer(.activation), q2 = identityQuantizer(.weight)
        let x1 = Self.grid(16, 1), x2 = Self.grid(12, 2)
        let p1 = QuantizerProbe(), p2 = QuantizerProbe()
        q1.probe = p1
        q2.probe = p2
        let pass = quadraticPass(q1, x1, a, q2, x2, b, coupling: 0)
        pass()
        for mode in HutchinsonTrace.Mode.allCases {
            let e = HutchinsonTrace(mode: mode).traces(probes: [p1, p2], rng: RNG(seed: 9), pass: pass)
            let trA = Double(a.reduce(0, +)), trB = 4 * Double(b.reduce(0, +))
            #expect(abs(e[0].trace - trA) < 1e-3 * trA, "\(mode): \(e[0].trace) vs \(trA)")
            #expect(abs(e[1].trace - trB) < 1e-3 * trB, "\(mode): \(e[1].trace) vs \(trB)")
            #expect(e[0].iterations == 2 && e[1].iterations == 2, "\(mode)")
        }
        #expect(p1.perturbation == nil && p2.perturbation == nil)
    }

    @Test("quadratic with cross terms: per-tensor is exact, joint averages the cross terms v₁ᵀCv₂ (mean 0) away")
    func quadraticCoupled() {
        let a: [Float] = (0..<64).map { Float($0 % 7) * 0.1 + 0.5 }
        let b: [Float] = (0..<64).map { Float($0 % 4) * 0.2 + 0.3 }
        let q1 = identityQuantizer(.activation), q2 = identityQuantizer(.weight)
        let x1 = Self.grid(64, 3), x2 = Self.grid(64, 4)
        let p1 = QuantizerProbe(), p2 = QuantizerProbe()
        q1.probe = p1
        q2.probe = p2
        let pass = quadraticPass(q1, x1, a, q2, x2, b, coupling: 0.002)
        pass()
        let trA = Double(a.reduce(0, +)), trB = 4 * Double(b.reduce(0, +))
        let perTensor = HutchinsonTrace(mode: .perTensor).traces(probes: [p1, p2], rng: RNG(seed: 5), pass: pass)
        #expect(abs(perTensor[0].trace - trA) < 1e-3 * trA && abs(perTensor[1].trace - trB) < 1e-3 * trB)
        let joint = HutchinsonTrace(mode: .joint).traces(probes: [p1, p2], rng: RNG(seed: 5), pass: pass)
        // Each joint sample carries Σ c·v₁v₂ terms: c·(Σv₁)(Σv₂)·(2 for W) ~ 0.002·8·8·2 ≈ 0.26 per sample.
        #expect(abs(joint[0].trace - trA) < 0.05 * trA, "joint Tr(H₁) \(joint[0].trace) vs \(trA)")
        #expect(abs(joint[1].trace - trB) < 0.05 * trB, "joint Tr(H₂) \(joint[1].trace) vs \(trB)")
    }

    @Test("QConv → Linear → cross-entropy: FD Hessian-vector products and exact traces match PyTorch's double backward")
    func goldenNetwork() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("QuantizationTests/Golden/quirks.safetensors")
        let file = try SafetensorsFile.read(url)
        func t(_ k: String) throws -> Tensor { try #require(file.tensors["ewgs_hessian." + k], "\(k): \(regenerate)") }
        let conv = Conv2d(inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: 1, bias: false)
        conv.weight.value.copyElements(from: try t("weight"))
        let wq = EWGSQuantizer(role: .weight, bits: 2), aq = EWGSQuantizer(role: .activation, bits: 2)
        wq.lower.value[0] = try t("lW")[0]; wq.upper.value[0] = try t("uW")[0]
        aq.lower.value[0] = try t("lA")[0]; aq.upper.value[0] = try t("uA")[0]
        let qconv = QConv2d(conv, weightQuantizer: wq, inputQuantizer: aq, outputScale: true)
        qconv.outputScale!.value[0] = try t("output_scale")[0]
        let fc = Linear(inputFeatures: 48, outputFeatures: 4)
        fc.weight.value.copyElements(from: try t("fc_weight"))
        fc.bias!.value.copyElements(from: try t("fc_bias"))
        let net = Sequential([qconv, Flatten(), fc])
        let x = try t("x"), labels = try t("labels").array.map { Int32($0) }
        let pa = QuantizerProbe(), pw = QuantizerProbe()
        aq.probe = pa
        wq.probe = pw
        let pass = {
            let logits = net.forward(x, mode: .train)
            _ = net.backward(CrossEntropyLoss()(logits, labels: labels).dLogits)
        }
        pass()
        let h = HutchinsonTrace()
        let va = try t("v_a").toLayout(pa.gradient!.layout), vw = try t("v_w")
        let hv = h.hessianVectorProducts(probes: [pa, pw], vectors: [va, vw], pass: pass)
        // One ± pair perturbs Q_a and Q_w together: H_aa v_a + H_aw v_w, which is not PyTorch's H_aa v_a;
        // each tensor alone instead.
        let hva = h.hessianVectorProducts(probes: [pa], vectors: [va], pass: pass)[0]
        let hvw = h.hessianVectorProducts(probes: [pw], vectors: [vw], pass: pass)[0]
        #expect(hv.count == 2)
        expectNear(hva.plainArray, try t("hv_a").array, "H_aa v_a")
        expectNear(hvw.plainArray, try t("hv_w").array, "H_ww v_w")
        // Exact traces: Σ_i e_iᵀ H e_i with unit vectors.
        for (probe, key) in [(pa, "trace_a"), (pw, "trace_w")] {
            let g = probe.gradient!
            var trace = 0.0
            for i in 0..<g.count {
                let e = Tensor(shape: g.shape, layout: g.layout)
                e.withUnsafeMutablePointer { $0[i] = 1 }
                trace += Double(h.hessianVectorProducts(probes: [probe], vectors: [e], pass: pass)[0].withUnsafeMutablePointer { $0[i] })
            }
            let expected = Double(try t(key)[0])
            #expect(abs(trace - expected) < 2e-3 * abs(expected), "\(key): FD \(trace), PyTorch \(expected); \(regenerate)")
        }
    }

    private func expectNear(_ actual: [Float], _ expected: [Float], _ what: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        let scale = expected.map(abs).max() ?? 1
        let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(actual.count == expected.count && worst < 2e-3 * scale,
                "\(what): worst |FD − PyTorch| \(worst), max |PyTorch| \(scale); \(regenerate)", sourceLocation: sourceLocation)
    }

    @Test("ResNet-20 W2A2: δ ≥ 0 written to every layer, BN statistics moved by the unperturbed passes only, deterministic")
    func estimatorOnModel() throws {
        func make() throws -> (any Model, [(images: Tensor, labels: [Int32])]) {
            let model = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 2)
            _ = try quantize(model: model, scheme: EWGSScheme(), bits: 2)
            var r = RNG(seed: 8)
            let images = Tensor(shape: [2, 3, 32, 32], values: (0..<(2 * 3 * 32 * 32)).map { _ in r.normal() })
            calibrateQuantizers(model: model, firstBatch: images)
            return (model, [(images, [3, 9])])
        }
        let (model, batches) = try make()
        let (twin, _) = try make()
        _ = twin.forward(batches[0].images, mode: .train)
        // 8 samples per tensor at most (the authors' 50) keeps the test short.
        let estimator = EWGSDeltaEstimator(model: model, mode: .joint)
        estimator.hutchinson.maxIterations = 8
        let layers = estimator.update(batches: batches, rng: RNG(seed: 1))
        #expect(layers.count == 18)
        for l in layers {
            let dw = try #require(l.deltaWeight), da = try #require(l.deltaActivation)
            #expect(dw >= 0 && dw.isFinite && da >= 0 && da.isFinite, "\(l.path): δ_W \(dw), δ_A \(da)")
            #expect(l.iterationsWeight >= 2 && l.iterationsWeight <= 8)
        }
        #expect(layers.contains { ($0.deltaWeight ?? 0) > 0 || ($0.deltaActivation ?? 0) > 0 })
        for (path, layer) in quantizedLayers(in: model) {
            let l = layers.first { $0.path == path }!
            #expect((layer.weightQuantizer as! EWGSQuantizer).delta == l.deltaWeight)
            #expect((layer.inputQuantizer as! EWGSQuantizer).delta == l.deltaActivation)
            #expect((layer.weightQuantizer as! EWGSQuantizer).probe == nil)
        }
        // Buffers equal a model that ran one plain train forward; gradients cleared.
        let a = model.buffers(), b = twin.buffers()
        for (x, y) in zip(a, b) where !x.name.contains("bkwd_scaling") {
            #expect(x.buffer.value.array == y.buffer.value.array, "\(x.name)")
        }
        #expect(model.parameters().allSatisfy { $0.parameter.grad.array.allSatisfy { $0 == 0 } })
        let (again, _) = try make()
        let twinEstimator = EWGSDeltaEstimator(model: again, mode: .joint)
        twinEstimator.hutchinson.maxIterations = 8
        let repeated = twinEstimator.update(batches: batches, rng: RNG(seed: 1))
        #expect(repeated == layers)
    }
}
