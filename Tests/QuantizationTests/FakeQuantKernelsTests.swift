import Testing
import Kernels
import Tensors

// Hand-derived cases for the shared integer fake-quant op (reference §2.3.3):
//   q = nearbyint(x·(1/s)) + z,  y = (clamp(q, qmin, qmax) − z)·s,  mask = qmin ≤ q ≤ qmax.
// Scales are powers of two (1, 0.5, 0.25) so that 1/s and every product is exact and the derivations below
// are plain arithmetic.

private func forward(_ x: [Float], scale: Float, zeroPoint: Int = 0, _ qmin: Int, _ qmax: Int) -> [Float] {
    var y = [Float](repeating: .nan, count: x.count), yn = y
    x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { fakeQuantizeForward(y: $0.baseAddress!, x: xp.baseAddress!, count: x.count,
                                                               scale: scale, zeroPoint: zeroPoint, quantMin: qmin, quantMax: qmax) }
        yn.withUnsafeMutableBufferPointer { fakeQuantizeForwardNaive(y: $0.baseAddress!, x: xp.baseAddress!, count: x.count,
                                                                     scale: scale, zeroPoint: zeroPoint, quantMin: qmin, quantMax: qmax) }
    }
    #expect(y.map(\.bitPattern) == yn.map(\.bitPattern), "fast and naive forward differ: \(y) vs \(yn)")
    return y
}

/// The masked-STE gradient for dy = 1 (fast and naive must agree).
private func mask(_ x: [Float], scale: Float, zeroPoint: Int = 0, _ qmin: Int, _ qmax: Int) -> [Float] {
    let dy = [Float](repeating: 1, count: x.count)
    var dx = [Float](repeating: .nan, count: x.count), dxn = dx
    x.withUnsafeBufferPointer { xp in
        dy.withUnsafeBufferPointer { gp in
            dx.withUnsafeMutableBufferPointer { fakeQuantizeBackward(dx: $0.baseAddress!, dy: gp.baseAddress!, x: xp.baseAddress!, count: x.count,
                                                                     scale: scale, zeroPoint: zeroPoint, quantMin: qmin, quantMax: qmax) }
            dxn.withUnsafeMutableBufferPointer { fakeQuantizeBackwardNaive(dx: $0.baseAddress!, dy: gp.baseAddress!, x: xp.baseAddress!, count: x.count,
                                                                           scale: scale, zeroPoint: zeroPoint, quantMin: qmin, quantMax: qmax) }
        }
    }
    #expect(dx == dxn, "fast and naive backward differ: \(dx) vs \(dxn)")
    return dx
}

/// LSQ's backward for single elements: (dx, ds, dz) per element.
private func learnable(_ x: [Float], dy: [Float]? = nil, scale: Float, _ qmin: Int, _ qmax: Int, gradFactor: Float)
    -> (dx: [Float], ds: Double, dz: Double) {
    let g = dy ?? [Float](repeating: 1, count: x.count)
    var dx = [Float](repeating: .nan, count: x.count), dxn = dx
    var r = (dScale: 0.0, dZeroPoint: 0.0), rn = r
    x.withUnsafeBufferPointer { xp in
        g.withUnsafeBufferPointer { gp in
            r = dx.withUnsafeMutableBufferPointer {
                learnableFakeQuantizeBackward(dx: $0.baseAddress!, dy: gp.baseAddress!, x: xp.baseAddress!, count: x.count,
                                              scale: scale, quantMin: qmin, quantMax: qmax, gradFactor: gradFactor)
            }
            rn = dxn.withUnsafeMutableBufferPointer {
                learnableFakeQuantizeBackwardNaive(dx: $0.baseAddress!, dy: gp.baseAddress!, x: xp.baseAddress!, count: x.count,
                                                   scale: scale, quantMin: qmin, quantMax: qmax, gradFactor: gradFactor)
            }
        }
    }
    #expect(dx == dxn)
    // Same per-element float terms; the fast kernel adds them in float blocks of 8 before double.
    #expect(abs(r.dScale - rn.dScale) <= 1e-6 * max(1, abs(rn.dScale)))
    #expect(abs(r.dZeroPoint - rn.dZeroPoint) <= 1e-6 * max(1, abs(rn.dZeroPoint)))
    return (dx, r.dScale, r.dZeroPoint)
}

@Suite("Fake-quant kernels (hand-derived)")
struct FakeQuantKernelsTests {
    @Test("round half to even: x·(1/s) = 2.5 → 2, 3.5 → 4, −2.5 → −2, ±0.5 → 0, 1.5 → 2")
    func ties() {
        // s = 1, 4 bits [−8, 7]: all inside, y = q.
        #expect(forward([2.5, 3.5, -2.5, 0.5, -0.5, 1.5, -1.5, 4.5], scale: 1, -8, 7) == [2, 4, -2, 0, 0, 2, -2, 4])
        // s = 0.5 (1/s = 2): x = 1.25 → 2.5 → 2 → y = 1.0; x = 1.75 → 3.5 → 4 → 2.0; x = −1.25 → −2 → −1.0.
        #expect(forward([1.25, 1.75, -1.25], scale: 0.5, -8, 7) == [1.0, 2.0, -1.0])
        // Every tie is inside the grid: the mask passes.
        #expect(mask([2.5, 3.5, -2.5], scale: 1, -8, 7) == [1, 1, 1])
    }

    @Test("a zero output is +0 (PyTorch goes through an int64), also for negative inputs")
    func positiveZero() {
        let y = forward([-0.3, -0.5, 0.4], scale: 1, -8, 7)
        #expect(y.map(\.bitPattern) == [0, 0, 0])
    }

    @Test("4-bit clip boundaries: q = qmax / qmin inside, q = qmax+1 / qmin−1 outside, ties at the ends")
    func clipBoundaries4() {
        // s = 1, [−8, 7].
        //  x     q    y   mask
        //  7     7    7    1     (q = qmax exactly)
        //  7.49  7    7    1
        //  7.5   8    7    0     (tie → even 8 = qmax+1: out)
        //  8.4   8    7    0
        // −8    −8   −8    1     (q = qmin exactly)
        // −8.5  −8   −8    1     (tie → even −8: in)
        // −8.51 −9   −8    0
        // −9.5 −10   −8    0     (tie → even −10)
        let x: [Float] = [7, 7.49, 7.5, 8.4, -8, -8.5, -8.51, -9.5]
        #expect(forward(x, scale: 1, -8, 7) == [7, 7, 7, 7, -8, -8, -8, -8])
        #expect(mask(x, scale: 1, -8, 7) == [1, 1, 0, 0, 1, 1, 0, 0])
        // Same grid with s = 0.25 (1/s = 4): x = 1.875 → 7.5 → 8 out (y = 1.75); x = −2.125 → −8.5 → −8 in.
        #expect(forward([1.875, -2.125, 1.75], scale: 0.25, -8, 7) == [1.75, -2, 1.75])
        #expect(mask([1.875, -2.125, 1.75], scale: 0.25, -8, 7) == [0, 1, 1])
    }

    @Test("2- and 3-bit grids")
    func lowBits() {
        // 2 bits [−2, 1], s = 0.5 (1/s = 2):
        //  x = 0.5 → 1 in (y 0.5); 0.75 → 1.5 → 2 out (y 0.5, mask 0); 0.7 → 1.4 → 1 in;
        //  −1 → −2 in; −1.25 → −2.5 → −2 in (tie to even); −1.3 → −2.6 → −3 out (y −1).
        let x2: [Float] = [0.5, 0.75, 0.7, -1, -1.25, -1.3]
        #expect(forward(x2, scale: 0.5, -2, 1) == [0.5, 0.5, 0.5, -1, -1, -1])
        #expect(mask(x2, scale: 0.5, -2, 1) == [1, 0, 1, 1, 1, 0])
        // 3 bits [−4, 3], s = 0.25 (1/s = 4):
        //  x = 0.75 → 3 in; 0.875 → 3.5 → 4 out (y 0.75); 0.625 → 2.5 → 2 (y 0.5); −1.125 → −4.5 → −4 in (y −1);
        //  −1.2 → −4.8 → −5 out (y −1).
        let x3: [Float] = [0.75, 0.875, 0.625, -1.125, -1.2]
        #expect(forward(x3, scale: 0.25, -4, 3) == [0.75, 0.75, 0.5, -1, -1])
        #expect(mask(x3, scale: 0.25, -4, 3) == [1, 0, 1, 1, 0])
    }

    @Test("8-bit extremes")
    func eightBit() {
        // s = 1, [−128, 127]: 127 in; 127.5 → 128 out; −128.5 → −128 in; −128.51 → −129 out; 126.5 → 126 in.
        let x: [Float] = [127, 127.5, -128.5, -128.51, 126.5]
        #expect(forward(x, scale: 1, -128, 127) == [127, 127, -128, -128, 126])
        #expect(mask(x, scale: 1, -128, 127) == [1, 0, 1, 0, 1])
    }

    @Test("32-bit grid: [−2^31, 2^31 − 1] with float32 integers")
    func thirtyTwoBit() {
        // s = 1, [−2^31, 2^31 − 1]. Floats near 2^31 are 128 apart (256 above it):
        //  2^31 − 128 → in (the largest float ≤ qmax); 2^31 → q = 2^31 > qmax → out, y = float(qmax) = 2^31;
        //  −2^31 → in (exactly qmin); −2^31 − 256 → out, y = −2^31; 2.5 → 2; 1e12 → out, y = 2^31.
        let qmin = -(1 << 31), qmax = (1 << 31) - 1
        let big: Float = 2_147_483_648
        let x: [Float] = [big - 128, big, -big, -big - 256, 2.5, 1e12]
        #expect(forward(x, scale: 1, qmin, qmax) == [big - 128, big, -big, -big, 2, big])
        #expect(mask(x, scale: 1, qmin, qmax) == [1, 0, 1, 0, 1, 0])
        // A tiny step (the eps floor): y = round(x/s)·s stays within s/2 of x.
        let s: Float = 1.1920929e-07
        let xs: [Float] = [0.3, -0.7, 1.0, 255.9]
        let ys = forward(xs, scale: s, qmin, qmax)
        for i in 0..<xs.count { #expect(abs(ys[i] - xs[i]) <= s) }
    }

    @Test("non-zero zero point: q = nearbyint(x/s) + z, y = (clamp(q) − z)·s")
    func zeroPoint() {
        // s = 1, z = 3, [0, 15]: x = −3 → q = 0 in, y = −3; x = −3.5 → −4 + 3 = −1 out, y = (0 − 3) = −3;
        // x = 12 → 15 in; x = 12.5 → 12 + 3 = 15 in (tie to even 12); x = 13 → 16 out, y = 12.
        let x: [Float] = [-3, -3.5, 12, 12.5, 13]
        #expect(forward(x, scale: 1, zeroPoint: 3, 0, 15) == [-3, -3, 12, 12, 12])
        #expect(mask(x, scale: 1, zeroPoint: 3, 0, 15) == [1, 0, 1, 1, 0])
    }

    @Test("LSQ ∂/∂s in range, below and above; ∂/∂z out of range")
    func learnableGradients() {
        // s = 1, [−8, 7], grad factor f = 0.5, dy = 1:
        //  x = 2.3:  q = 2 in,      ds = (x_fq − x)/s·f = (2 − 2.3)·0.5 = −0.15 (float: (2 − 2.3f)·1·0.5), dz = 0
        //  x = −8.5: q = −8 in,     ds = (−8 + 8.5)·0.5 = 0.25
        //  x = 9:    q = 9 > 7,     ds = qmax·f = 3.5,   dz = −s·f = −0.5, dx = 0
        //  x = 7.5:  q = 8 > 7,     ds = 3.5,  dz = −0.5
        //  x = −10:  q = −10 < −8,  ds = qmin·f = −4,  dz = −0.5
        let f: Float = 0.5
        let cases: [(Float, Float, Double, Double)] = [
            (2.3, 1, Double((2 - Float(2.3)) * 1 * 0.5), 0), (-8.5, 1, 0.25, 0),
            (9, 0, 3.5, -0.5), (7.5, 0, 3.5, -0.5), (-10, 0, -4, -0.5),
        ]
        for (x, dx, ds, dz) in cases {
            let r = learnable([x], scale: 1, -8, 7, gradFactor: f)
            #expect(r.dx == [dx], "x = \(x)")
            #expect(r.ds == ds, "x = \(x)")
            #expect(r.dz == dz, "x = \(x)")
        }
        // dy scales everything; the sums add up: dy = [2, −1] at x = [2.3, 9] → ds = 2·(−0.15) − 3.5, dz = 0.5.
        let r = learnable([2.3, 9], dy: [2, -1], scale: 1, -8, 7, gradFactor: f)
        #expect(r.dx == [2, 0])
        #expect(abs(r.ds - (2 * Double((2 - Float(2.3)) * 0.5) - 3.5)) < 1e-7)
        #expect(r.dz == 0.5)
    }

    @Test("fast and naive kernels agree bit for bit on random data (several chunks) and ties")
    func fastMatchesNaive() {
        var rng = RNG(seed: 11)
        let n = 3 * elementwiseChunk + 123
        for (bits, s) in [(2, Float(0.37)), (4, Float(0.1)), (8, Float(0.013)), (32, Float(1.1920929e-07))] {
            let qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1
            var x = (0..<n).map { _ in rng.normal() * s * Float(min(qmax, 100)) }
            // ties: x = (k + 0.5)·s for powers-of-two s would be exact; here just plant k + 0.5 products
            for k in 0..<64 { x[k] = (Float(k) - 31.5) / (1 / s) }
            _ = forward(x, scale: s, qmin, qmax)
            _ = mask(x, scale: s, qmin, qmax)
            let dy = (0..<n).map { _ in rng.normal() }
            _ = learnable(x, dy: dy, scale: s, qmin, qmax, gradFactor: 0.01)
        }
    }

    @Test("DoReFa backward: fast equals naive; min/max and |x| sums exact on small data")
    func doReFaAndReductions() {
        var rng = RNG(seed: 5)
        let n = 2 * elementwiseChunk + 17
        var x = (0..<n).map { _ in rng.normal() }
        x[3] = 20; x[9] = -20  // tied |tanh| = 1 maxima
        var t = [Float](repeating: 0, count: n)
        let m = x.withUnsafeBufferPointer { xp in
            t.withUnsafeMutableBufferPointer { tanhAbsMaxForward(t: $0.baseAddress!, x: xp.baseAddress!, count: n) }
        }
        #expect(m == 1)
        let d = m + 1e-5
        let s: Float = 1 / 7.5
        let dy = (0..<n).map { _ in rng.normal() }
        var dx = [Float](repeating: 0, count: n), dxn = dx
        t.withUnsafeBufferPointer { tp in
            dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { doReFaBackward(dx: $0.baseAddress!, dy: gp.baseAddress!, t: tp.baseAddress!, count: n,
                                                                   maxAbs: m, divisor: d, scale: s, quantMin: -8, quantMax: 7) }
                dxn.withUnsafeMutableBufferPointer { doReFaBackwardNaive(dx: $0.baseAddress!, dy: gp.baseAddress!, t: tp.baseAddress!, count: n,
                                                                         maxAbs: m, divisor: d, scale: s, quantMin: -8, quantMax: 7) }
            }
        }
        // The divisor's gradient is a double sum in a different order: allow its last-bit effect.
        for i in 0..<n { #expect(abs(dx[i] - dxn[i]) <= 1e-6 * max(1, abs(dxn[i])), "element \(i)") }
        let small: [Float] = [3, -1.5, 0.25, -7]
        small.withUnsafeBufferPointer { p in
            let mm = minMaxReduce(x: p.baseAddress!, count: 4)
            #expect(mm.min == -7 && mm.max == 3)
            #expect(absSumReduce(x: p.baseAddress!, count: 4) == 11.75)
        }
        x.withUnsafeBufferPointer { p in
            let fast = absSumReduce(x: p.baseAddress!, count: n), naive = absSumReduceNaive(x: p.baseAddress!, count: n)
            #expect(abs(fast - naive) <= 1e-6 * naive)
        }
    }
}
