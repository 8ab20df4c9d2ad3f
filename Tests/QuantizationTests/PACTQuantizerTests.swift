import TestSupport
import Testing
import NN
import Tensors
@testable import Quantization

// PACT as MQBench runs it (reference §2.3.5): s = α/((qmax − qmin)/2) = 2α/(2^b − 1) with α = 6 fixed,
// then the signed fake-quant. Derivations in the comments; float32 constants written as PyTorch computes them.

@Suite("PACT quantizer")
struct PACTQuantizerTests {
    typealias K = MQBenchTestKit

    @Test("calibration, unsigned input: s = 6/7.5 = 0.8 at 4 bits; output clipped at α, no negative clip")
    func calibrationUnsigned() {
        let q = PACTQuantizer(bits: 4)
        #expect(!q.isCalibrated)
        let out = q.calibrationForward(K.tensor([0, 1, 5.9, 6, 7.5, 100]))
        #expect(q.isCalibrated)
        #expect(q.scaleValue == Float(6) / Float(7.5))
        #expect(out.array == [0, 1, 5.9, 6, 6, 6])
    }

    @Test("calibration, signed input: the same s; output clipped to [−α, α]")
    func calibrationSigned() {
        let q = PACTQuantizer(bits: 4)
        let out = q.calibrationForward(K.tensor([-10, -6, -1, 2, 8]))
        #expect(q.scaleValue == Float(6) / Float(7.5))
        #expect(out.array == [-6, -6, -1, 2, 6])
        // Inputs all above α: clipped min = α ≥ 0, unsigned branch, same s.
        let r = PACTQuantizer(bits: 4)
        #expect(r.calibrationForward(K.tensor([7, 9])).array == [6, 6])
        #expect(r.scaleValue == Float(6) / Float(7.5))
    }

    @Test("s = 2α/(2^b − 1) at 2, 3, 8 bits; at 32 bits the eps floor: s = max(6/2^31, 1.1920929e-07) = eps")
    func scales() {
        // (qmax − qmin)/2: 2 bits 1.5, 3 bits 3.5, 8 bits 127.5, 32 bits 2^31 (float32 of 2147483647.5).
        for (bits, half) in [(2, Float(1.5)), (3, Float(3.5)), (8, Float(127.5))] {
            let q = PACTQuantizer(bits: bits)
            q.calibrate(K.tensor([1, 2]))
            #expect(q.scaleValue == Float(6) / half, "bits \(bits)")
        }
        let q32 = PACTQuantizer(bits: 32)
        q32.calibrate(K.tensor([1, 2]))
        // 6/2^31 = 2.8e-9 < eps: the MinMax observer's floor wins, so the 32-bit clip is qmax·s = 2^31·2^−23 = 256,
        // not 6 (reference §2.3.5 says ±6; the observer's eps makes it ±256).
        #expect(q32.scaleValue == float32Epsilon)
        let y = K.run(q32, K.tensor([300, -300, 5.5, -0.1])).y
        #expect(y[0] == 256 && y[1] == -256)
        #expect(abs(y[2] - 5.5) <= float32Epsilon && abs(y[3] + 0.1) <= float32Epsilon)
    }

    @Test("4-bit forward and masked STE at the grid ends (s = 0.8, 1/s = 1.25)")
    func forwardBackward4() {
        // 1/0.8f = 1.25 exactly in float32.
        //  x     x/s     q   y        dx
        //  2.0   2.5     2   1.6      1   (tie → even)
        //  2.8   3.5     4   3.2      1   (tie → even)
        //  5.9   7.375   7   5.6      1
        //  6.0   7.5     8   5.6      0   (q = qmax + 1 → out; the clip is 5.6 < α)
        // −6.8  −8.5    −8  −6.4      1   (tie → even −8 = qmin: in)
        // −7.0  −8.75   −9  −6.4      0
        //  0.3   0.375   0   0        1
        let q = PACTQuantizer(bits: 4)
        q.calibrate(K.tensor([1]))
        let s = q.scaleValue
        #expect(1 / s == 1.25)
        let r = K.run(q, K.tensor([2.0, 2.8, 5.9, 6.0, -6.8, -7.0, 0.3]))
        #expect(r.y == [2 * s, 4 * s, 7 * s, 7 * s, -8 * s, -8 * s, 0])
        #expect(r.dx == [1, 1, 1, 0, 1, 0, 1])
    }

    @Test("3-bit and 8-bit grid ends")
    func otherBits() {
        // 3 bits: s = 6/3.5 = 1.7142857, grid [−4, 3]: post-ReLU levels 0..3 (max 5.14).
        let q3 = PACTQuantizer(bits: 3)
        q3.calibrate(K.tensor([1]))
        let s3 = q3.scaleValue
        let r3 = K.run(q3, K.tensor([3 * s3, 6, -4 * s3, -8]))
        #expect(r3.y == [3 * s3, 3 * s3, -4 * s3, -4 * s3])
        #expect(r3.dx == [1, 0, 1, 0])
        // 8 bits: s = 6/127.5, levels 0..127 (max 5.98); 6 → 127.5 → 128 → out.
        let q8 = PACTQuantizer(bits: 8)
        q8.calibrate(K.tensor([1]))
        let s8 = q8.scaleValue
        let r8 = K.run(q8, K.tensor([6, 5.9, 127 * s8]))
        #expect(r8.y[0] == 127 * s8 && r8.dx[0] == 0)
        #expect(r8.dx[1] == 1 && r8.y[2] == 127 * s8 && r8.dx[2] == 1)
    }

    @Test("α is a buffer (never trained), there are no parameters; state names match MQBench")
    func state() {
        let q = PACTQuantizer(bits: 4)
        #expect(q.parameters().isEmpty)
        #expect(q.buffers().map(\.name) == ["alpha", "scale", "zero_point", "observer_enabled"])
        #expect(q.alpha.value.array == [6])
        #expect(q.statePrefix == "input_fake_quant")
        // forward on an uncalibrated quantizer calibrates first
        _ = q.forward(K.tensor([1, 2]), mode: .eval)
        #expect(q.isCalibrated && q.scaleValue == Float(6) / Float(7.5))
        // scale frozen afterwards: another batch does not change it
        _ = q.forward(K.tensor([100, -100]), mode: .train)
        #expect(q.scaleValue == Float(6) / Float(7.5))
    }

    @Test("layout: a blocked activation gives the same values in the same layout")
    func blockedLayout() {
        let x = K.randomTensor([2, 16, 3, 3], seed: 3, scale: 4)
        let a = PACTQuantizer(bits: 4), b = PACTQuantizer(bits: 4)
        let ya = a.forward(x, mode: .train)
        let xb = x.toLayout(.blocked(16))
        let yb = b.forward(xb, mode: .train)
        #expect(yb.layout == .blocked(16))
        #expect(yb.plainArray == ya.plainArray)
        let dy = K.randomTensor([2, 16, 3, 3], seed: 4)
        #expect(b.backward(dy).plainArray == a.backward(dy).plainArray)
    }

    @Test("pact scheme: DoReFa weights, PACT activations; 1 bit rejected; alpha setting")
    func scheme() throws {
        let s = PACTScheme()
        #expect(s.name == "pact" && s.supportedBits == 2...32 && !s.usesOutputScale && s.quantizesFirstAndLastLayers)
        #expect(try s.makeWeightQuantizer(bits: 4, settings: [:]) is DoReFaQuantizer)
        let a = try s.makeActivationQuantizer(bits: 4, settings: ["alpha": 3]) as? PACTQuantizer
        #expect(a?.alpha.value.array == [3])
        #expect(throws: QuantizationError.self) { try s.makeActivationQuantizer(bits: 1, settings: [:]) }
        #expect(throws: QuantizationError.self) { try s.makeActivationQuantizer(bits: 4, settings: ["alpha": -1]) }
        let w32 = try s.makeWeightQuantizer(bits: 32, settings: [:])
        #expect(w32?.bits == 32)
    }
}
