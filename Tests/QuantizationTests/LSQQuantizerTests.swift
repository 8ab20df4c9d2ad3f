import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Quantization

// LSQ as MQBench runs it (reference §2.3.6): s init 2·mean|X|/√qmax, s ← max(|s|, eps) and z ← 0 each forward,
// grad factor f = 1/√(numel·qmax), PyTorch's learnable fake-quant backward.

@Suite("LSQ quantizer")
struct LSQQuantizerTests {
    typealias K = MQBenchTestKit

    @Test("calibration: s = 2·mean|X|/√qmax over the whole tensor, z = 0; the calibration pass returns X")
    func calibration() {
        // 4 bits, qmax = 7: X = [1, −1, 2, −2] → mean|X| = 1.5 → s = 3/√7 (float32: 3/float(√7)).
        let q = LSQQuantizer(role: .activation, bits: 4)
        let x = K.tensor([1, -1, 2, -2], shape: [2, 2])
        let out = q.calibrationForward(x)
        #expect(out === x)
        #expect(q.scaleValue == Float(3) / Float(Double(7).squareRoot()))
        #expect(q.zeroPoint.value.array == [0] && q.isCalibrated)
        // 8 bits: qmax = 127; 32 bits: qmax = 2^31 − 1 (√ ≈ 46340.95).
        let q8 = LSQQuantizer(role: .weight, bits: 8)
        q8.calibrate(x)
        #expect(q8.scaleValue == Float(3) / Float(Double(127).squareRoot()))
        let q32 = LSQQuantizer(role: .weight, bits: 32)
        q32.calibrate(x)
        #expect(q32.scaleValue == Float(3) / Float(Double(2_147_483_647).squareRoot()))
    }

    @Test("each forward: s ← max(|s|, eps), z ← 0; grad factor uses numel including the batch")
    func forwardHousekeeping() {
        let q = LSQQuantizer(role: .activation, bits: 4)
        q.calibrate(K.tensor([1]))
        q.scale.value[0] = -0.5
        q.zeroPoint.value[0] = 0.3
        _ = q.forward(K.tensor([1, 2]), mode: .eval)
        #expect(q.scaleValue == 0.5 && q.zeroPoint.value.array == [0])
        q.scale.value[0] = 1e-12
        _ = q.forward(K.tensor([1, 2]), mode: .eval)
        #expect(q.scaleValue == float32Epsilon)
        // f = 1/√(numel·qmax): [8, 3, 2, 2] → numel 96, 4 bits: 1/√(96·7).
        #expect(q.gradFactor(count: 96) == Float(1 / (96.0 * 7).squareRoot()))
    }

    @Test("∂/∂s in range, below and above (s = 0.5, 3 bits [−4, 3], dy = 1)")
    func stepGradient() {
        // numel = 4 → f = 1/√(4·3) = 0.28867513. 1/s = 2.
        //  x = 0.6:   q = 1 (1.2), x_fq = 0.5, ds = (0.5 − 0.6)·2·f, dx = 1
        //  x = −2.25: q = −4 (−4.5 tie → −4), in: ds = (−2 + 2.25)·2·f = 0.5·f, dx = 1
        //  x = 1.75:  q = 4 (3.5 tie → 4) > 3: ds = qmax·f = 3f, dz = −s·f, dx = 0
        //  x = −3:    q = −6 < −4: ds = qmin·f = −4f, dz = −s·f, dx = 0
        let q = LSQQuantizer(role: .weight, bits: 3)
        q.calibrate(K.tensor([1]))
        q.scale.value[0] = 0.5
        let x = K.tensor([0.6, -2.25, 1.75, -3])
        let r = K.run(q, x)
        #expect(r.y == [0.5, -2, 1.5, -2])
        #expect(r.dx == [1, 1, 0, 0])
        let f = Float(1 / (4.0 * 3).squareRoot())
        let expected = Double((0.5 - Float(0.6)) * 2 * f) + Double(0.25 * 2 * f) + Double(3 * f) + Double(-4 * f)
        #expect(abs(Double(q.scale.grad[0]) - expected) < 1e-7)
        #expect(abs(Double(q.zeroPoint.grad[0]) - 2 * Double(-1 * 0.5 * f)) < 1e-7)
        // Gradients accumulate.
        _ = K.run(q, x)
        #expect(abs(Double(q.scale.grad[0]) - 2 * expected) < 2e-7)
    }

    @Test("finite differences: ∂s/f equals the true derivative minus Σ_in-range dy·x/s (LSQ's STE term)")
    func stepFiniteDifference() {
        // Away from rounding boundaries y(s) = clamp(round(x/s))·s is smooth in s with dy/ds = round(x/s) in
        // range and qmin/qmax outside. LSQ's gradient is f·Σ dy·{(x_fq − x)/s; qmin; qmax}, i.e.
        // f·(dL/ds − Σ_in dy·x/s). Inputs have x/s ∈ k + [0.2, 0.3] and |k| far from the rounding edges.
        let bits = 4
        let s: Float = 0.5
        var rng = RNG(seed: 9)
        var values: [Float] = []
        for _ in 0..<40 {
            let k = Float(rng.below(30)) - 15  // −15 … 14: both sides of [−8, 7]
            values.append((k + 0.2 + 0.1 * rng.uniform()) * s)
        }
        let x = K.tensor(values)
        let r = K.randomTensor([values.count], seed: 10)
        let q = LSQQuantizer(role: .activation, bits: bits)
        q.calibrate(x)
        q.scale.value[0] = s
        _ = q.forward(x, mode: .train)
        _ = q.backward(r)
        let analytic = Double(q.scale.grad[0])
        // h moves x/s by at most |x/s|·h/s ≈ 15·4e-3 = 0.06 < 0.2: no element crosses a rounding edge.
        let numeric = K.centralDifference(q, x: x, r: r, value: q.scale.value, index: 0, h: 2e-3)
        var inRange = 0.0
        for (i, v) in values.enumerated() {
            let qv = (v / s).rounded(.toNearestOrEven)
            if qv >= -8 && qv <= 7 { inRange += Double(r[i]) * Double(v) / Double(s) }
        }
        let f = Double(q.gradFactor(count: values.count))
        #expect(abs(analytic - f * (numeric - inRange)) <= 1e-4 * max(1, abs(analytic)),
                "analytic \(analytic), f·(FD − Σ dy·x/s) = \(f * (numeric - inRange))")
    }

    @Test("32 bits: ≈ identity, s = 2·mean|X|/√(2^31 − 1)")
    func thirtyTwo() {
        let q = LSQQuantizer(role: .activation, bits: 32)
        let x = K.randomTensor([4, 8], seed: 2)
        let r = K.run(q, x)
        let s = q.scaleValue
        for (a, b) in zip(r.y, x.array) { #expect(abs(a - b) <= s / 2 + b.ulp) }
        #expect(r.dx.allSatisfy { $0 == 1 })
    }

    @Test("state: parameters scale and zero_point ([1]); lsq scheme rejects 1 bit")
    func state() throws {
        let q = LSQQuantizer(role: .weight, bits: 4)
        #expect(q.parameters().map(\.name) == ["scale", "zero_point"])
        #expect(q.scale.value.shape == [1] && q.scale.value.array == [1] && q.zeroPoint.value.array == [0])
        #expect(q.buffers().map(\.name) == ["observer_enabled"])
        #expect(q.statePrefix == "weight_fake_quant")
        let s = LSQScheme()
        #expect(s.name == "lsq" && s.supportedBits == 2...32)
        #expect(try s.makeActivationQuantizer(bits: 3, settings: [:]) is LSQQuantizer)
        #expect(throws: QuantizationError.self) { try s.makeWeightQuantizer(bits: 1, settings: [:]) }
        #expect(throws: QuantizationError.self) { try s.makeWeightQuantizer(bits: 33, settings: [:]) }
    }
}
