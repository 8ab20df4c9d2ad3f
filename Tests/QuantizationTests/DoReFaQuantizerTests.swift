import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Quantization

// DoReFa as MQBench runs it (reference §2.3.4): Y = tanh(X)/(max|tanh X| + 1e-5) over the whole tensor,
// s = max|Y|/((qmax − qmin)/2) from the calibration batch, then the signed fake-quant; gradients flow
// through tanh and the (not detached) max.

/// Independent double-precision statement of the DoReFa backward for a given fake-quant mask:
///   dx_i = (1 − t_i²)·(g_i/d + [|t_i| = M]·sign(t_i)·(Σ_j −g_j·t_j/d²)/#maxima),  g = dy·mask.
private func referenceGradient(x: [Float], dy: [Float], mask: [Bool]) -> [Double] {
    let t = x.map { Double(tanhf($0)) }
    let m = t.map(abs).max()!
    let d = m + Double(Float(1e-5))
    let g = zip(dy, mask).map { $1 ? Double($0) : 0 }
    let dD = zip(g, t).reduce(0.0) { $0 - $1.0 * $1.1 / (d * d) }
    let ties = Double(t.filter { abs($0) == m }.count)
    return (0..<x.count).map { i in
        let viaMax = abs(t[i]) == m ? (t[i] > 0 ? 1.0 : -1.0) * dD / ties : 0
        return (1 - t[i] * t[i]) * (g[i] / d + viaMax)
    }
}

@Suite("DoReFa quantizer")
struct DoReFaQuantizerTests {
    typealias K = MQBenchTestKit

    @Test("calibration: Y = tanh(x)/(max|tanh x| + 1e-5), s = max|Y|/7.5 at 4 bits, frozen afterwards")
    func calibration() {
        let xs: [Float] = [1, -0.5, 0.25, 0, -2]
        let q = DoReFaQuantizer(role: .weight, bits: 4)
        let y = q.calibrationForward(K.tensor(xs)).array
        let t = xs.map { tanhf($0) }
        let d = abs(tanhf(-2)) + Float(1e-5)
        #expect(y == t.map { $0 / d })
        // min Y = tanh(−2)/d (the largest magnitude), max Y = tanh(1)/d: s = |min Y|/7.5.
        #expect(q.scaleValue == -(t[4] / d) / 7.5)
        #expect(q.isCalibrated)
        let s = q.scaleValue
        _ = q.forward(K.tensor([5, 6]), mode: .train)
        #expect(q.scaleValue == s)
        // 8 bits: /127.5; 32 bits: 1/2^31 < eps, so s = eps.
        let q8 = DoReFaQuantizer(role: .weight, bits: 8)
        q8.calibrate(K.tensor(xs))
        #expect(q8.scaleValue == -(t[4] / d) / 127.5)
        let q32 = DoReFaQuantizer(role: .activation, bits: 32)
        q32.calibrate(K.tensor(xs))
        #expect(q32.scaleValue == float32Epsilon)
    }

    @Test("4-bit forward on the calibration batch: the grid ends ±max|Y| map to −8·s … 7·s")
    func gridEnds() {
        // x = [2, −2, 0.3]: Y = ±M/d and a middle value; s = (M/d)/7.5, so Y·(1/s) = ±7.5 up to one rounding:
        // the positive end lands on 7·s (clamped from 8, or rounded down from 7.4999995), the negative on
        // −8·s (tie −7.5 → −8) or −7·s. Checked against the fake-quant of Y computed here.
        let q = DoReFaQuantizer(role: .weight, bits: 4)
        let x = K.tensor([2, -2, 0.3])
        let yN = DoReFaQuantizer(role: .weight, bits: 4).calibrationForward(x).array
        q.calibrate(x)
        let s = q.scaleValue
        let y = q.forward(x, mode: .eval).array
        #expect(y[0] == 7 * s)
        let inv = 1 / s
        for i in 0..<3 {
            let level = min(max((yN[i] * inv).rounded(.toNearestOrEven), -8), 7)
            #expect(y[i] == level * s)
        }
    }

    @Test("backward equals the independent formula (mask, division, max, tanh) at 4 bits")
    func backwardFormula() {
        let xs = K.randomTensor([3, 7], seed: 21).array
        let x = K.tensor(xs, shape: [3, 7])
        let q = DoReFaQuantizer(role: .activation, bits: 4)
        q.calibrate(K.randomTensor([3, 7], seed: 22, scale: 2))
        let dy = K.randomTensor([3, 7], seed: 23).array
        let r = K.run(q, x, dy: dy)
        // mask from the forward: q in range ⇔ the output equals Y's un-clamped level
        let yN = DoReFaQuantizer(role: .activation, bits: 4).calibrationForward(x).array
        let inv = 1 / q.scaleValue
        let mask = yN.map { v -> Bool in let l = (v * inv).rounded(.toNearestOrEven); return l >= -8 && l <= 7 }
        let ref = referenceGradient(x: xs, dy: dy, mask: mask)
        for i in 0..<xs.count { #expect(abs(Double(r.dx[i]) - ref[i]) <= 1e-6 + 1e-5 * abs(ref[i]), "element \(i)") }
    }

    @Test("tied maxima share the max's gradient evenly (PyTorch's max())")
    func tiedMaxima() {
        // tanh(3) and tanh(−3) have the same magnitude: both get sign·∂d/2. (Their Y = ±M/d sits at
        // ±127.5·s up to rounding, so the fake-quant mask of the positive one may be 0: take it from Y.)
        let xs: [Float] = [3, -3, 0.5, -0.25]
        let dy: [Float] = [0.3, -0.7, 1.1, 0.2]
        let q = DoReFaQuantizer(role: .weight, bits: 8)
        q.calibrate(K.tensor([4, 0]))
        let r = K.run(q, K.tensor(xs), dy: dy)
        let yN = DoReFaQuantizer(role: .weight, bits: 8).calibrationForward(K.tensor(xs)).array
        let inv = 1 / q.scaleValue
        let mask = yN.map { v -> Bool in let l = (v * inv).rounded(.toNearestOrEven); return l >= -128 && l <= 127 }
        let ref = referenceGradient(x: xs, dy: dy, mask: mask)
        for i in 0..<4 { #expect(abs(Double(r.dx[i]) - ref[i]) <= 1e-6 + 1e-5 * abs(ref[i]), "element \(i)") }
        // Without the even split (all of ∂d to one maximum) element 1 would differ by ≈ (1 − t²)·|∂d|/2.
        #expect(r.dx[0] != r.dx[1])
    }

    @Test("finite differences through tanh and the max at 32 bits (the fake-quant is continuous there)")
    func finiteDifference32() {
        // All |x| ≤ 1.5 except the unique maximum 2.0 (margin ≫ h), so the argmax does not change under ±h.
        var xs = K.randomTensor([2, 3, 2, 2], seed: 31).array.map { max(-1.5, min(1.5, $0)) }
        xs[5] = 2.0
        let x = K.tensor(xs, shape: [2, 3, 2, 2])
        let q = DoReFaQuantizer(role: .activation, bits: 32)
        q.calibrate(x)
        let r = K.randomTensor([2, 3, 2, 2], seed: 32)
        _ = q.forward(x, mode: .train)
        let dx = q.backward(r).array
        for i in 0..<xs.count {
            let numeric = K.centralDifference(q, x: x, r: r, value: x, index: i, h: 1e-2)
            #expect(abs(Double(dx[i]) - numeric) <= 2e-3 + 1e-2 * abs(numeric), "x[\(i)]: analytic \(dx[i]), numeric \(numeric)")
        }
        // The maximum's gradient includes the max path (it would be (1 − t²)·g/d if the max were detached).
        let t5 = Double(tanhf(2)), d = t5 + 1e-5
        let detached = (1 - t5 * t5) * Double(r[5]) / d
        #expect(abs(Double(dx[5]) - detached) > 1e-3)
    }

    @Test("batch dependence (documented quirk): the same value quantizes differently in another batch")
    func batchDependence() {
        let q = DoReFaQuantizer(role: .activation, bits: 8)
        q.calibrate(K.tensor([0.5, 1]))
        let a = q.forward(K.tensor([0.5, 1]), mode: .eval).array[0]
        let b = q.forward(K.tensor([0.5, 3]), mode: .eval).array[0]
        // 0.5 → tanh(0.5)/tanh(1) ≈ 0.607 vs tanh(0.5)/tanh(3) ≈ 0.464: 77 vs 59 steps of s.
        #expect(a != b)
        #expect(abs(a - 0.607) < 0.01 && abs(b - 0.464) < 0.01)
    }

    @Test("state and scheme")
    func state() throws {
        let q = DoReFaQuantizer(role: .weight, bits: 4)
        #expect(q.parameters().isEmpty)
        #expect(q.buffers().map(\.name) == ["scale", "zero_point", "observer_enabled"])
        let s = DoReFaScheme()
        #expect(s.name == "dorefa" && s.supportedBits == 2...32 && s.quantizesFirstAndLastLayers)
        #expect(try s.makeActivationQuantizer(bits: 4, settings: [:]) is DoReFaQuantizer)
        #expect(throws: QuantizationError.self) { try s.makeWeightQuantizer(bits: 1, settings: [:]) }
    }
}
