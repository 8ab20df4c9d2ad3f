import TestSupport
import Foundation
import Kernels
import NN
import Quantization
import Tensors
import Testing

/// Runs a quantizer on `xs` (1-D) in training mode and backpropagates `dy` (default all ones).
private func run(_ q: Quantizer, _ xs: [Float], dy: [Float]? = nil) -> (y: [Float], dx: [Float]) {
    q.zeroGrad()
    let y = q.forward(Tensor(shape: [xs.count], values: xs), mode: .train)
    let dx = q.backward(Tensor(shape: [xs.count], values: dy ?? Array(repeating: 1, count: xs.count)))
    return (y.array, dx.array)
}

private func ewgs(_ role: QuantizerRole, bits: Int, l: Float, u: Float, delta: Float = 0) -> EWGSQuantizer {
    let q = EWGSQuantizer(role: role, bits: bits, delta: delta)
    q.lower.value[0] = l
    q.upper.value[0] = u
    return q
}

@Suite struct EWGSQuantizerTests {
    /// Ties: x at the middle of [l, u] gives n = 0.5 exactly, so n·(L−1) = (L−1)/2 = k + ½ with
    /// k = L/2 − 1; half-to-even picks the even neighbour: L=2: 0.5→0; L=4: 1.5→2; L=16: 7.5→8; L=256: 127.5→128.
    @Test func activationTiesRoundToEven() {
        let expected: [Int: Float] = [1: 0, 2: 2.0 / 3, 4: 8.0 / 15, 8: 128.0 / 255]
        for (bits, y) in expected {
            let q = ewgs(.activation, bits: bits, l: 0, u: 1)
            #expect(run(q, [0.5]).y == [y], "bits \(bits)")
        }
        // Weights: W_q = 2(q − 0.5): 1 bit → −1; 2 bits → 2(2/3 − 0.5) = 1/3.
        #expect(run(ewgs(.weight, bits: 1, l: -1, u: 1), [0]).y == [-1])
        #expect(isClose(run(ewgs(.weight, bits: 2, l: -1, u: 1), [0]).y[0], 1.0 / 3, atol: 1e-6, rtol: 1e-6))
    }

    /// Clip boundaries with l = −1, u = 3 (u − l = 4), activations, STE (δ = 0), dy = 1:
    ///   x < l: y = 0, dx = 0 (clamped);   x = l: n = 0, y = 0, gradient passes (inclusive): dx = 1/4,
    ///   ∂/∂u = −n/4 = 0, ∂/∂l = (n − 1)/4 = −1/4;   x = u: n = 1, y = 1, dx = 1/4, ∂/∂u = −1/4, ∂/∂l = 0;
    ///   x > u: y = 1, dx = 0.   x = 1: n = 0.5: dx = 1/4, ∂/∂u = −1/8, ∂/∂l = −1/8.
    @Test func activationClipBoundariesAndIntervalGradients() {
        let cases: [(x: Float, y: Float, dx: Float, du: Float, dl: Float)] = [
            (-1.5, 0, 0, 0, 0), (-1, 0, 0.25, 0, -0.25), (3, 1, 0.25, -0.25, 0), (3.5, 1, 0, 0, 0),
            (1, 2.0 / 3, 0.25, -0.125, -0.125),
        ]
        for c in cases {
            let q = ewgs(.activation, bits: 2, l: -1, u: 3)
            let r = run(q, [c.x])
            #expect(isClose(r.y[0], c.y, atol: 1e-6, rtol: 1e-6) && r.dx == [c.dx], "x \(c.x): y \(r.y), dx \(r.dx)")
            #expect(q.upper.grad[0] == c.du && q.lower.grad[0] == c.dl,
                    "x \(c.x): du \(q.upper.grad[0]) dl \(q.lower.grad[0])")
            #expect(q.upperT!.grad[0] == 0 && q.lowerT!.grad[0] == 0)
        }
    }

    /// Weights carry the factor 2 of W_q = 2(q − 0.5): with l = −1, u = 1 (u − l = 2), dy = 1, x = 0.5:
    /// n = 0.75, g = 2, dx = 2/2 = 1, ∂/∂u = −n·1 = −0.75, ∂/∂l = (n − 1)·1 = −0.25;
    /// y: 0.75·3 = 2.25 → 2 → q = 2/3 → W_q = 1/3. At x = 1 (n = 1): W_q = 1, dx = 1, ∂/∂u = −1, ∂/∂l = 0.
    @Test func weightGradients() {
        let q = ewgs(.weight, bits: 2, l: -1, u: 1)
        let r = run(q, [0.5])
        #expect(isClose(r.y[0], 1.0 / 3, atol: 1e-6, rtol: 1e-6) && r.dx == [1])
        #expect(q.upper.grad[0] == -0.75 && q.lower.grad[0] == -0.25)
        let q2 = ewgs(.weight, bits: 2, l: -1, u: 1)
        let r2 = run(q2, [1, 1.01, -1.01])
        #expect(r2.y == [1, 1, -1] && r2.dx == [1, 0, 0])
        #expect(q2.upper.grad[0] == -1 && q2.lower.grad[0] == 0)
    }

    /// 1 bit: {0, 1} activations, {−1, +1} weights; 8 bits: 255 steps, the extremes map to 0 and 1 and the
    /// first step sits at n = 0.5/255 (just above → 1/255).
    @Test func oneAndEightBitExtremes() {
        #expect(run(ewgs(.activation, bits: 1, l: 0, u: 1), [-0.2, 0, 0.49, 0.51, 1, 7]).y == [0, 0, 0, 1, 1, 1])
        #expect(run(ewgs(.weight, bits: 1, l: -1, u: 1), [-3, -0.1, 0.1, 3]).y == [-1, -1, 1, 1])
        let r = run(ewgs(.activation, bits: 8, l: 0, u: 1), [0, 0.0019, 0.0021, 1])
        #expect(r.y[0] == 0 && r.y[1] == 0 && isClose(r.y[2], 1.0 / 255, atol: 1e-6, rtol: 1e-6) && r.y[3] == 1)
        let w = run(ewgs(.weight, bits: 8, l: -1, u: 1), [-1, 1])
        #expect(w.y == [-1, 1])
    }

    /// EWGS backward, δ = 0.5, activations, l = 0, u = 1, 2 bits, x = 0.4: c = 0.4, q = round(1.2)/3 = 1/3,
    /// c − q = 1/15. dy = +1: g_in = 1·(1 + 0.5·1·(1/15)) = 1 + 1/30; dy = −1: g_in = −1·(1 + 0.5·(−1)·(1/15))
    /// = −1 + 1/30. x = 0.6: q = 2/3, c − q = −1/15: dy = 1 → 1 − 1/30.
    @Test func ewgsScaledBackward() {
        let q = ewgs(.activation, bits: 2, l: 0, u: 1, delta: 0.5)
        let r = run(q, [0.4, 0.4, 0.6], dy: [1, -1, 1])
        #expect(isClose(r.dx[0], 1 + 1.0 / 30, atol: 1e-6, rtol: 1e-6) && isClose(r.dx[1], -1 + 1.0 / 30, atol: 1e-6, rtol: 1e-6) && isClose(r.dx[2], 1 - 1.0 / 30, atol: 1e-6, rtol: 1e-6), "\(r.dx)")
        q.delta = 0
        #expect(run(q, [0.4, 0.4], dy: [1, -1]).dx == [1, -1])
        #expect(q.buffers().map(\.name) == ["bkwd_scaling_factorA"])
    }

    /// Calibration (reference §2.2.3). W = [1, 2, 3, 4]: unbiased std = √(5/3) = 1.2909944;
    /// uW = 3·std = 3.8729833, lW = −uW. x = [0, 1, 2, 3]: same std; uA = 3·std/√(1 − 2/π) = 6.4254…,
    /// lA = min = 0; uA_t, lA_t copy them.
    @Test func calibrationFormulas() {
        let w = EWGSQuantizer(role: .weight, bits: 2)
        #expect(!w.isCalibrated)
        w.calibrate(Tensor(shape: [4], values: [1, 2, 3, 4]))
        let std = Float((5.0 / 3).squareRoot())
        #expect(isClose(w.upper.value[0], 3 * std, atol: 1e-6, rtol: 1e-6) && isClose(w.lower.value[0], -3 * std, atol: 1e-6, rtol: 1e-6) && w.isCalibrated)
        let a = EWGSQuantizer(role: .activation, bits: 2)
        a.calibrate(Tensor(shape: [2, 2], values: [0, 1, 2, 3]))
        let uA = Float(3 * (5.0 / 3).squareRoot() / (1 - 2 / Double.pi).squareRoot())
        #expect(isClose(a.upper.value[0], uA, atol: 1e-6, rtol: 1e-6) && a.lower.value[0] == 0)
        #expect(a.upperT!.value[0] == a.upper.value[0] && a.lowerT!.value[0] == 0)
        // An uncalibrated quantizer calibrates itself on its first forward.
        let b = EWGSQuantizer(role: .weight, bits: 2)
        _ = b.forward(Tensor(shape: [4], values: [1, 2, 3, 4]), mode: .eval)
        #expect(isClose(b.upper.value[0], 3 * std, atol: 1e-6, rtol: 1e-6))
    }

    /// The vectorised kernels equal their naive twins bit for bit (values; sums to rounding), across chunk
    /// boundaries and a ragged tail, for several thread counts.
    @Test func kernelsMatchNaiveTwins() {
        let n = 40_003
        let x = randomTensor([n], seed: 3, -2, 3), dy = randomTensor([n], seed: 4)
        for threads in [1, 2] {
            Threads.set(threads)
            for (bits, signed, delta) in [(1, false, Float(0)), (2, true, 0.3), (4, false, 0.7), (8, true, 0)] {
                let y1 = Tensor(shape: [n]), y2 = Tensor(shape: [n])
                withUnsafeMutablePointers(y1, x) { y1, x in
                    intervalQuantizeForward(y: y1, x: x, count: n, lower: -0.5, upper: 2.1, levels: 1 << bits, signed: signed)
                }
                withUnsafeMutablePointers(y2, x) { y2, x in
                    intervalQuantizeForwardNaive(y: y2, x: x, count: n, lower: -0.5, upper: 2.1, levels: 1 << bits, signed: signed)
                }
                #expect(y1.array == y2.array)
                let d1 = Tensor(shape: [n]), d2 = Tensor(shape: [n])
                let s1 = withUnsafeMutablePointers(d1, dy, x) { d1, dy, x in
                    intervalQuantizeBackward(dx: d1, dy: dy, x: x, count: n, lower: -0.5, upper: 2.1,
                                             levels: 1 << bits, gain: signed ? 2 : 1, delta: delta)
                }
                let s2 = withUnsafeMutablePointers(d2, dy, x) { d2, dy, x in
                    intervalQuantizeBackwardNaive(dx: d2, dy: dy, x: x, count: n, lower: -0.5, upper: 2.1,
                                                  levels: 1 << bits, gain: signed ? 2 : 1, delta: delta)
                }
                #expect(d1.array == d2.array)
                #expect(abs(s1.dx - s2.dx) < 1e-3 && abs(s1.dxTimesN - s2.dxTimesN) < 1e-3)
            }
            let o1 = Tensor(shape: [n]), o2 = Tensor(shape: [n])
            let t1 = withUnsafeMutablePointers(o1, dy, x) { o1, dy, x in scaleBackward(dx: o1, dy: dy, y0: x, s: 1.7, count: n) }
            let t2 = withUnsafeMutablePointers(o2, dy, x) { o2, dy, x in scaleBackwardNaive(dx: o2, dy: dy, y0: x, s: 1.7, count: n) }
            #expect(o1.array == o2.array && abs(t1 - t2) < 1e-3)
        }
        Threads.set(1)
    }

    /// Sums are bit-identical across thread counts (fixed chunks combined in order).
    @Test func backwardIsDeterministicAcrossThreads() {
        let n = 70_001
        let x = randomTensor([n], seed: 5, -1, 2), dy = randomTensor([n], seed: 6)
        var results: [IntervalGradientSums] = []
        for threads in [1, 2, 1] {
            Threads.set(threads)
            let d = Tensor(shape: [n])
            results.append(withUnsafeMutablePointers(d, dy, x) { d, dy, x in
                intervalQuantizeBackward(dx: d, dy: dy, x: x, count: n, lower: 0, upper: 1.5, levels: 4, gain: 1, delta: 0)
            })
        }
        Threads.set(1)
        #expect(results[0] == results[1] && results[1] == results[2])
    }

    /// Finite differences on the continuous part: at 16 bits the staircase step (u − l)/65535 is far below
    /// h, so Q ≈ clamp(n) and the STE gradients of x, l and u match central differences. Inputs stay 0.05
    /// away (in n) from the clip points so that no probe straddles them.
    @Test func intervalGradientsMatchFiniteDifferences() {
        for role in QuantizerRole.allCases {
            let q = ewgs(role, bits: 16, l: -0.8, u: 1.3)
            var rng = RNG(seed: 11)
            let x = Tensor(shape: [64])
            for i in 0..<64 {
                let n: Float = i % 8 == 0 ? (i % 16 == 0 ? rng.uniform(-0.6, -0.1) : rng.uniform(1.1, 1.5)) : rng.uniform(0.05, 0.95)
                x[i] = -0.8 + n * 2.1
            }
            let failures = GradientCheck(h: 1e-2, atol: 5e-3, rtol: 2e-2, probes: 64).check(q, input: x)
            #expect(failures.isEmpty, "\(role): \(failures.prefix(5))")
        }
    }
}
