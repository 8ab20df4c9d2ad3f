import TestSupport
import Testing
import Tensors
@testable import Kernels

/// Pooling kernels against their naive twins on plain, nChw8c and nChw16c inputs.
struct PoolingKernelsTests {
    typealias S = LayerKernelsSupport

    struct MaxCase: CustomTestStringConvertible, Sendable {
        var shape: [Int], k: Int, s: Int, p: Int, Ho: Int, Wo: Int
        var testDescription: String { "\(shape) k\(k) s\(s) p\(p) → \(Ho)×\(Wo)" }
    }

    static let maxCases: [MaxCase] = [
        MaxCase(shape: [2, 16, 8, 8], k: 2, s: 2, p: 0, Ho: 4, Wo: 4),
        MaxCase(shape: [2, 16, 9, 9], k: 3, s: 2, p: 1, Ho: 5, Wo: 5),
        // ceil mode: the last window hangs over the edge.
        MaxCase(shape: [2, 32, 14, 14], k: 3, s: 2, p: 0, Ho: 7, Wo: 7),
    ]

    @Test(arguments: maxCases)
    func maxPool(_ t: MaxCase) {
        let (N, C, H, W) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        // Quarter steps make ties, which must resolve to the first position.
        let x = S.random(t.shape, seed: 1)
        for i in 0..<x.count { x[i] = (x[i] * 4).rounded() / 4 }
        let outShape = [N, C, t.Ho, t.Wo]
        let y0 = Tensor(shape: outShape)
        var a0 = [Int32](repeating: 0, count: y0.count)
        withUnsafeMutablePointers(y0, x) { y0, x in
            maxPool2dForwardNaive(y: y0, argmax: &a0, x: x, N: N, C: C, H: H, W: W, Ho: t.Ho, Wo: t.Wo,
                                  kH: t.k, kW: t.k, sH: t.s, sW: t.s, pH: t.p, pW: t.p)
        }
        let dy = S.random(outShape, seed: 2)
        let dx0 = Tensor(shape: t.shape)
        withUnsafeMutablePointers(dx0, dy) { dx0, dy in
            maxPool2dBackwardNaive(dx: dx0, dy: dy, argmax: a0, N: N, C: C, H: H, W: W, Ho: t.Ho, Wo: t.Wo)
        }
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            let b = layout.block
            let y = Tensor(shape: outShape, layout: layout)
            var a = [Int32](repeating: 0, count: y.count)
            withUnsafeMutablePointers(y, xb) { y, xb in
                maxPool2dForward(y: y, argmax: &a, x: xb, N: N, C: C, H: H, W: W, b: b,
                                 Ho: t.Ho, Wo: t.Wo, kH: t.k, kW: t.k, sH: t.s, sW: t.s, pH: t.p, pW: t.p)
            }
            expectClose(y, y0, atol: 0, rtol: 0, "y, \(layout)")
            var sameArgmax = true
            for n in 0..<N {
                for c in 0..<C {
                    for p in 0..<(t.Ho * t.Wo) {
                        let o = S.offset(n: n, c: c, p: p, C: C, HW: t.Ho * t.Wo, b: b)
                        if a[o] != a0[(n * C + c) * t.Ho * t.Wo + p] { sameArgmax = false }
                    }
                }
            }
            #expect(sameArgmax, "argmax, \(layout)")
            let dx = Tensor(shape: t.shape, layout: layout)
            withUnsafeMutablePointers(dx, dyb) { dx, dyb in
                maxPool2dBackward(dx: dx, dy: dyb, argmax: a, N: N, C: C, H: H, W: W, b: b,
                                  Ho: t.Ho, Wo: t.Wo)
            }
            expectClose(dx, dx0, atol: 0, rtol: 0, "dx, \(layout)")
        }
    }

    @Test func maxPoolTiesPickFirstAndNaNWins() {
        let x = Tensor(shape: [1, 1, 2, 2], values: [1, 1, 1, 1])
        let y = Tensor(shape: [1, 1, 1, 1])
        var a: [Int32] = [9]
        withUnsafeMutablePointers(y, x) { y, x in
            maxPool2dForward(y: y, argmax: &a, x: x, N: 1, C: 1, H: 2, W: 2, b: 1, Ho: 1, Wo: 1,
                             kH: 2, kW: 2, sH: 2, sW: 2, pH: 0, pW: 0)
        }
        #expect(y[0] == 1 && a[0] == 0)
        x[2] = .nan
        withUnsafeMutablePointers(y, x) { y, x in
            maxPool2dForward(y: y, argmax: &a, x: x, N: 1, C: 1, H: 2, W: 2, b: 1, Ho: 1, Wo: 1,
                             kH: 2, kW: 2, sH: 2, sW: 2, pH: 0, pW: 0)
        }
        #expect(y[0].isNaN && a[0] == 2)
    }

    @Test(arguments: [([2, 16, 8, 8], 2, 2), ([2, 16, 9, 9], 3, 2), ([2, 32, 8, 8], 8, 8)])
    func avgPool(shape: [Int], k: Int, s: Int) {
        let (N, C, H, W) = (shape[0], shape[1], shape[2], shape[3])
        let Ho = (H - k) / s + 1, Wo = (W - k) / s + 1
        let x = S.random(shape, seed: 3), dy = S.random([N, C, Ho, Wo], seed: 4)
        let y0 = Tensor(shape: [N, C, Ho, Wo]), dx0 = Tensor(shape: shape)
        withUnsafeMutablePointers(y0, x) { y0, x in
            avgPool2dForwardNaive(y: y0, x: x, N: N, C: C, H: H, W: W, kH: k, kW: k, sH: s, sW: s)
        }
        withUnsafeMutablePointers(dx0, dy) { dx0, dy in
            avgPool2dBackwardNaive(dx: dx0, dy: dy, N: N, C: C, H: H, W: W, kH: k, kW: k, sH: s, sW: s)
        }
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            let b = layout.block
            let y = Tensor(shape: [N, C, Ho, Wo], layout: layout), dx = Tensor(shape: shape, layout: layout)
            withUnsafeMutablePointers(y, xb) { y, xb in
                avgPool2dForward(y: y, x: xb, N: N, C: C, H: H, W: W, b: b, kH: k, kW: k, sH: s, sW: s)
            }
            withUnsafeMutablePointers(dx, dyb) { dx, dyb in
                avgPool2dBackward(dx: dx, dy: dyb, N: N, C: C, H: H, W: W, b: b,
                                  kH: k, kW: k, sH: s, sW: s)
            }
            expectClose(y, y0, atol: 0, rtol: 0, "y, \(layout)")
            expectClose(dx, dx0, atol: 0, rtol: 0, "dx, \(layout)")
        }
    }

    /// (shape, Ho, Wo): global average (vectorized path), overlapping windows 10 → 3, a rectangle.
    @Test(arguments: [([4, 64, 8, 8], 1, 1), ([2, 16, 10, 10], 3, 3), ([2, 16, 7, 5], 4, 3), ([2, 16, 5, 7], 1, 1)])
    func adaptiveAvgPool(shape: [Int], Ho: Int, Wo: Int) {
        let (N, C, H, W) = (shape[0], shape[1], shape[2], shape[3])
        let x = S.random(shape, seed: 5), dy = S.random([N, C, Ho, Wo], seed: 6)
        let y0 = Tensor(shape: [N, C, Ho, Wo]), dx0 = Tensor(shape: shape)
        withUnsafeMutablePointers(y0, x) { y0, x in
            adaptiveAvgPool2dForwardNaive(y: y0, x: x, N: N, C: C, H: H, W: W, Ho: Ho, Wo: Wo)
        }
        withUnsafeMutablePointers(dx0, dy) { dx0, dy in
            adaptiveAvgPool2dBackwardNaive(dx: dx0, dy: dy, N: N, C: C, H: H, W: W, Ho: Ho, Wo: Wo)
        }
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            let b = layout.block
            let y = Tensor(shape: [N, C, Ho, Wo], layout: layout), dx = Tensor(shape: shape, layout: layout)
            withUnsafeMutablePointers(y, xb) { y, xb in
                adaptiveAvgPool2dForward(y: y, x: xb, N: N, C: C, H: H, W: W, b: b, Ho: Ho, Wo: Wo)
            }
            withUnsafeMutablePointers(dx, dyb) { dx, dyb in
                adaptiveAvgPool2dBackward(dx: dx, dy: dyb, N: N, C: C, H: H, W: W, b: b, Ho: Ho, Wo: Wo)
            }
            expectClose(y, y0, atol: 1e-6, rtol: 0, "y, \(layout)")
            expectClose(dx, dx0, atol: 0, rtol: 0, "dx, \(layout)")
        }
    }

    @Test func adaptiveWindowsFollowPyTorch() {
        let w = Windows.adaptive(input: 10, out: 3)
        #expect(w.start == [0, 3, 6] && w.end == [4, 7, 10])
        let v = Windows.adaptive(input: 5, out: 3)
        #expect(v.start == [0, 1, 3] && v.end == [2, 4, 5])
    }
}
