import TestSupport
import Foundation
import Models
import NN
import Tensors
import Testing
@testable import Quantization

// The plain STE quantizer (STEQuantizer.swift): s from max|x| at calibration, y = clamp(nearbyint(x/s))·s on
// the signed grid [−Q, Q] (Q = 2^(b−1) − 1) or the unsigned [0, 2^b − 1], dx = dy·[q in range]. Steps are
// chosen as powers of two, so every x/s below is exact and the rounding case is the one written.

@Suite("STE quantizer")
struct STEQuantizerTests {
    typealias K = MQBenchTestKit

    @Test("weights, 2 bits: m = max|w| = 2, Q = 1, s = 2, grid {−2, 0, 2}")
    func weights2() {
        let q = STEQuantizer(role: .weight, bits: 2)
        #expect(!q.isCalibrated && q.isSigned)
        q.calibrate(K.tensor([-0.5, 0.25, 1.0, -2.0]))
        #expect(q.isCalibrated && q.scaleValue == 2 && q.isSigned && q.grid == (-1, 1))
        //  x      x/s     q    y    dx
        //  0.9    0.45    0    0    1
        //  1.0    0.5     0    0    1   (tie → even)
        //  1.2    0.6     1    2    1
        //  2.9    1.45    1    2    1
        //  3.0    1.5     2    2    0   (tie → even 2 > Q: outside, clamped to Q·s)
        // −2.9   −1.45   −1   −2    1
        // −3.0   −1.5    −2   −2    0
        let r = K.run(q, K.tensor([0.9, 1.0, 1.2, 2.9, 3.0, -2.9, -3.0]), dy: [0.5, -2, 3, 4, 5, -6, 7])
        #expect(r.y == [0, 0, 2, 2, 2, -2, -2])
        #expect(r.dx == [0.5, -2, 3, 4, 0, -6, 0])
    }

    @Test("weights, 4 bits: m = 3.5, Q = 7, s = 0.5")
    func weights4() {
        let q = STEQuantizer(role: .weight, bits: 4)
        q.calibrate(K.tensor([3.5, -1, 0.2]))
        #expect(q.scaleValue == 0.5 && q.grid == (-7, 7))
        //  1.25 → 2.5 → 2 → 1.0;  1.75 → 3.5 → 4 → 2.0;  3.6 → 7.2 → 7 → 3.5 (in);  3.75 → 7.5 → 8 → out
        // −3.74 → −7.48 → −7 → −3.5 (in);  −3.76 → −7.52 → −8 → out
        let r = K.run(q, K.tensor([1.25, 1.75, 3.6, 3.75, -3.74, -3.76]))
        #expect(r.y == [1, 2, 3.5, 3.5, -3.5, -3.5])
        #expect(r.dx == [1, 1, 1, 0, 1, 0])
    }

    @Test("activations ≥ 0 at calibration: unsigned grid [0, 2^b − 1], s = max x / (2^b − 1)")
    func activationsUnsigned() {
        let q = STEQuantizer(role: .activation, bits: 2)
        #expect(!q.isSigned)
        q.calibrate(K.tensor([0, 0.5, 3.0, 1.0]))
        #expect(q.scaleValue == 1 && !q.isSigned && q.grid == (0, 3))
        // −0.5 → −0 (tie → even) ≥ 0: in, y = +0;  −0.6 → −1: out;  1.5 → 2;  2.5 → 2;  3.4 → 3 in;  3.5 → 4 out
        let r = K.run(q, K.tensor([-0.5, -0.6, 1.5, 2.5, 3.4, 3.5]))
        #expect(r.y == [0, 0, 2, 2, 3, 3])
        #expect(r.y[0].sign == .plus)
        #expect(r.dx == [1, 0, 1, 1, 1, 0])
    }

    @Test("activations with negative values at calibration: the signed grid, s = max|x| / Q")
    func activationsSigned() {
        let q = STEQuantizer(role: .activation, bits: 3)
        q.calibrate(K.tensor([-6, 1, 2]))
        // Q = 3, s = 6/3 = 2.
        #expect(q.isSigned && q.scaleValue == 2 && q.grid == (-3, 3))
        let r = K.run(q, K.tensor([-6.9, -7, 3, 5]))
        // −3.45 → −3 in;  −3.5 → −4 out;  1.5 → 2;  2.5 → 2
        #expect(r.y == [-6, -6, 4, 4])
        #expect(r.dx == [1, 0, 1, 1])
    }

    @Test("calibration happens once: forward calibrates an uncalibrated quantizer, then s and the grid stay frozen")
    func frozenAfterCalibration() {
        let q = STEQuantizer(role: .activation, bits: 4)
        _ = q.forward(K.tensor([0, 15]), mode: .train)
        #expect(q.scaleValue == 1 && !q.isSigned)
        _ = q.forward(K.tensor([-100, 100]), mode: .train)
        #expect(q.scaleValue == 1 && !q.isSigned)
        let y = q.forward(K.tensor([-100, 100, 7.4]), mode: .eval).array
        #expect(y == [0, 15, 7])
        // An all-zero tensor: s floored at float32 eps (calibrated, no division by zero).
        let z = STEQuantizer(role: .weight, bits: 2)
        z.calibrate(K.tensor([0, 0]))
        #expect(z.isCalibrated && z.scaleValue == float32Epsilon)
        #expect(K.run(z, K.tensor([0, 1])).y == [0, float32Epsilon])
    }

    @Test("every bit-width 2…8: grid sizes and steps; 1 and 9 bits rejected with the registry's message")
    func bits() throws {
        let s = try QuantizerRegistry.scheme(named: "ste")
        #expect(s is STEScheme && s.supportedBits == 2...8 && s.settings.isEmpty && !s.usesOutputScale && !s.quantizesFirstAndLastLayers)
        for b in 2...8 {
            let a = try #require(try s.makeActivationQuantizer(bits: b, settings: [:]) as? STEQuantizer)
            let levels = Float((1 << b) - 1)
            a.calibrate(K.tensor([0, levels / 4]))
            #expect(a.scaleValue == 0.25 && a.grid == (0, (1 << b) - 1), "bits \(b)")
            #expect(K.run(a, K.tensor([levels / 4, levels / 4 + 0.126])).dx == [1, 0], "bits \(b)")
            let w = try #require(try s.makeWeightQuantizer(bits: b, settings: [:]) as? STEQuantizer)
            let qmax = (1 << (b - 1)) - 1
            w.calibrate(K.tensor([-Float(qmax) / 2]))
            #expect(w.scaleValue == 0.5 && w.grid == (-qmax, qmax), "bits \(b)")
        }
        for b in [0, 1, 9, 32] {
            #expect(throws: QuantizationError.unsupportedBits(scheme: "ste", bits: b, supported: 2...8)) {
                try s.makeWeightQuantizer(bits: b, settings: [:])
            }
            #expect(throws: QuantizationError.self) { try QuantizerRegistry.validate(s, bits: b) }
        }
        #expect(QuantizationError.unsupportedBits(scheme: "ste", bits: 1, supported: 2...8).description
                == "quantizer 'ste' supports 2…8 bits, got 1")
        #expect(throws: QuantizationError.self) { try QuantizerRegistry.resolve(s, settings: ["delta": 0]) }
    }

    @Test("state: buffers scale and signed under weight_fake_quant / input_fake_quant; no parameters")
    func state() {
        let w = STEQuantizer(role: .weight, bits: 2), a = STEQuantizer(role: .activation, bits: 2)
        #expect(w.parameters().isEmpty && a.parameters().isEmpty)
        #expect(w.buffers().map(\.name) == ["scale", "signed"])
        #expect(w.ownerBuffers().map(\.name) == ["weight_fake_quant.scale", "weight_fake_quant.signed"])
        #expect(a.ownerBuffers().map(\.name) == ["input_fake_quant.scale", "input_fake_quant.signed"])
        #expect(!w.scale.isInteger && w.signed.isInteger)
        #expect(w.signed.value.array == [1] && a.signed.value.array == [0] && w.scale.value.array == [0])
    }

    @Test("layout: a blocked activation gives the same values in the same layout")
    func blockedLayout() {
        let x = K.randomTensor([2, 16, 3, 3], seed: 3, scale: 4)
        let a = STEQuantizer(role: .activation, bits: 3), b = STEQuantizer(role: .activation, bits: 3)
        let ya = a.forward(x, mode: .train)
        let yb = b.forward(x.toLayout(.blocked(16)), mode: .train)
        #expect(yb.layout == .blocked(16) && yb.plainArray == ya.plainArray)
        let dy = K.randomTensor([2, 16, 3, 3], seed: 4)
        #expect(b.backward(dy).plainArray == a.backward(dy).plainArray)
    }

    /// ResNet-20 W2A2: the 18 inner convs carry STE quantizers; calibration on a batch gives signed weight
    /// grids and, behind ReLUs, unsigned activation grids; a training forward/backward is finite, reaches
    /// every quantized weight, and the quantized weights sit on their grid.
    @Test func resnet20ForwardBackward() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 11)
        let names = try quantize(model: model, scheme: STEScheme(), bits: 2)
        #expect(names.count == 18 && quantizerParameters(of: model).isEmpty)
        calibrateQuantizers(model: model, firstBatch: randomTensor([4, 3, 8, 8], seed: 12))
        for (name, l) in quantizedLayers(in: model) {
            let w = try #require(l.weightQuantizer as? STEQuantizer), a = try #require(l.inputQuantizer as? STEQuantizer)
            #expect(w.isCalibrated && w.isSigned && a.isCalibrated && !a.isSigned, "\(name)")
            let conv = try #require(l as? QConv2d)
            let m = conv.weight.value.array.map(abs).max()!
            #expect(w.scaleValue == m, "\(name): 2 bits, Q = 1, s = max|w|")
            let wq = w.forward(conv.weight.value, mode: .eval).array
            #expect(wq.allSatisfy { $0 == 0 || abs($0) == m }, "\(name)")
        }
        model.zeroGrad()
        let x = randomTensor([4, 3, 8, 8], seed: 13)
        let logits = model.forward(x, mode: .train)
        #expect(logits.shape == [4, 10] && logits.array.allSatisfy(\.isFinite))
        _ = model.backward(randomTensor([4, 10], seed: 14))   // the stem returns no input gradient
        let stem = try #require(model.parameters().first { $0.name == "conv1.weight" }).parameter.grad.array
        #expect(stem.allSatisfy(\.isFinite) && stem.contains { $0 != 0 })
        for (name, l) in quantizedLayers(in: model) {
            let g = (l as! QConv2d).weight.grad.array
            #expect(g.allSatisfy(\.isFinite) && g.contains { $0 != 0 }, "\(name)")
        }
    }

    /// Calibrated state saved through safetensors and loaded into a fresh (uncalibrated) STE model: calibrated,
    /// identical eval outputs.
    @Test func checkpointRoundTrip() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 4)
        try quantize(model: model, scheme: STEScheme(), bits: 3)
        calibrateQuantizers(model: model, firstBatch: randomTensor([4, 3, 8, 8], seed: 5))
        let named = model.namedTensors()
        #expect(named.contains { $0.name == "layer1.0.conv1.weight_fake_quant.scale" })
        #expect(named.first { $0.name == "layer3.2.conv2.input_fake_quant.signed" }?.isInteger == true)
        let file = SafetensorsFile(tensors: Dictionary(uniqueKeysWithValues: named.map { ($0.name, $0.tensor) }),
                                   integerKeys: Set(named.filter(\.isInteger).map(\.name)))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ste-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try file.write(to: url)
        let fresh = try ModelZoo.make("resnet20", classes: 10, seed: 99)
        try quantize(model: fresh, scheme: STEScheme(), bits: 3)
        #expect(!quantizedLayers(in: fresh).contains { $0.layer.weightQuantizer!.isCalibrated })
        try fresh.load(stateDict: try SafetensorsFile.read(url).tensors, strict: true)
        #expect(quantizedLayers(in: fresh).allSatisfy { $0.layer.weightQuantizer!.isCalibrated && $0.layer.inputQuantizer!.isCalibrated })
        let x = randomTensor([3, 3, 8, 8], seed: 6)
        #expect(model.forward(x, mode: .eval).array == fresh.forward(x, mode: .eval).array)
    }

    /// `sqakd quantizer curve ste`'s table: defaults give the range [0, 1] for activations, [−1, 1] for weights.
    @Test func curve() throws {
        // Activation, 2 bits: s = 1/3, x ∈ [−0.5, 1.5] in 9 steps of 0.25.
        let a = try QuantizerCurve.compute(scheme: STEScheme(), role: .activation, bits: 2, steps: 9)
        #expect(a.columns == ["x", "y", "dy_dx"])
        let s = Float(1) / 3
        #expect(a.rows.map(\.x) == [-0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5])
        #expect(a.rows.map(\.y) == [0, 0, 0, s, 2 * s, 2 * s, 3 * s, 3 * s, 3 * s])
        // x = −0.25 → −0.75 → −1: out; 1.25 → 3.75 → 4: out.
        #expect(a.rows.map(\.dydx) == [0, 0, 1, 1, 1, 1, 1, 0, 0])
        // Weight, 2 bits: s = 1, grid {−1, 0, 1}, x ∈ [−1.5, 1.5].
        let w = try QuantizerCurve.compute(scheme: STEScheme(), role: .weight, bits: 2, steps: 7)
        #expect(w.rows.map(\.y) == [-1, -1, 0, 0, 0, 1, 1])
        #expect(w.rows.map(\.dydx) == [0, 1, 1, 1, 1, 1, 0])
        // --set scale=0.5 overrides the default range.
        let half = try QuantizerCurve.compute(scheme: STEScheme(), role: .weight, bits: 2, set: ["scale": 0.5], steps: 7)
        #expect(half.rows.map(\.y) == [-0.5, -0.5, -0.5, 0, 0.5, 0.5, 0.5])
    }
}
