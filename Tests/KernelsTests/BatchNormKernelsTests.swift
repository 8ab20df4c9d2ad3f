import TestSupport
import Testing
import Tensors
@testable import Kernels

/// Fast batch-norm kernels against their naive twins on plain, nChw8c and nChw16c inputs.
struct BatchNormKernelsTests {
    typealias S = LayerKernelsSupport

    /// (N, C, H, W): a tail-heavy shape (HW = 35), a 1×1 map and the CIFAR stem shape, scaled down.
    static let shapes: [[Int]] = [[4, 16, 5, 7], [8, 32, 1, 1], [3, 16, 8, 8]]

    @Test(arguments: shapes)
    func statistics(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        // An offset mean stresses the variance's cancellation.
        let x = S.random(shape, seed: 1, 2.5, 4.5)
        var m0 = [Double](repeating: 0, count: C), v0 = m0
        x.withUnsafeMutablePointer { x in batchNormStatisticsNaive(mean: &m0, variance: &v0, x: x, N: N, C: C, HW: HW) }
        for layout in S.layouts {
            let xb = x.toLayout(layout)
            var m = [Double](repeating: 0, count: C), v = m
            xb.withUnsafeMutablePointer { xb in
                batchNormStatistics(mean: &m, variance: &v, x: xb, N: N, C: C, HW: HW, b: layout.block)
            }
            expectClose(m, m0, atol: 1e-6, rtol: 1e-6, "mean, \(layout)")
            expectClose(v, v0, atol: 1e-6, rtol: 1e-6, "variance, \(layout)")
        }
    }

    @Test(arguments: shapes)
    func apply(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        let x = S.random(shape, seed: 2)
        let scale = S.random([C], seed: 3).array, shift = S.random([C], seed: 4).array
        let y0 = Tensor(shape: shape)
        withUnsafeMutablePointers(y0, x) { y0, x in
            batchNormApplyNaive(y: y0, x: x, scale: scale, shift: shift, N: N, C: C, HW: HW)
        }
        for layout in S.layouts {
            let xb = x.toLayout(layout)
            let y = Tensor(shape: shape, layout: layout)
            withUnsafeMutablePointers(y, xb) { y, xb in
                batchNormApply(y: y, x: xb, scale: scale, shift: shift, N: N, C: C, HW: HW, b: layout.block)
            }
            expectClose(y, y0, atol: 0, rtol: 0, "\(layout)")
        }
    }

    @Test(arguments: shapes)
    func backwardReduce(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        let x = S.random(shape, seed: 5), dy = S.random(shape, seed: 6)
        let mean = S.random([C], seed: 7, -0.1, 0.1).array
        var s0 = [Double](repeating: 0, count: C), s1 = s0
        withUnsafeMutablePointers(dy, x) { dy, x in
            batchNormBackwardReduceNaive(sumDy: &s0, sumDyXmu: &s1, dy: dy, x: x, mean: mean, N: N, C: C, HW: HW)
        }
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            var a0 = [Double](repeating: 0, count: C), a1 = a0
            withUnsafeMutablePointers(dyb, xb) { dyb, xb in
                batchNormBackwardReduce(sumDy: &a0, sumDyXmu: &a1, dy: dyb, x: xb,
                                        mean: mean, N: N, C: C, HW: HW, b: layout.block)
            }
            expectClose(a0, s0, atol: 1e-5, rtol: 1e-5, "Σdy, \(layout)")
            expectClose(a1, s1, atol: 1e-5, rtol: 1e-5, "Σdy(x−μ), \(layout)")
        }
    }

    @Test(arguments: shapes)
    func backwardInput(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        let x = S.random(shape, seed: 8), dy = S.random(shape, seed: 9)
        let a = S.random([C], seed: 10).array, k = S.random([C], seed: 11).array, s = S.random([C], seed: 12).array
        let dx0 = Tensor(shape: shape)
        withUnsafeMutablePointers(dx0, dy, x) { dx0, dy, x in
            batchNormBackwardInputNaive(dx: dx0, dy: dy, x: x, dyScale: a, xScale: k, shift: s, N: N, C: C, HW: HW)
        }
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            let dx = Tensor(shape: shape, layout: layout)
            withUnsafeMutablePointers(dx, dyb, xb) { dx, dyb, xb in
                batchNormBackwardInput(dx: dx, dy: dyb, x: xb,
                                       dyScale: a, xScale: k, shift: s, N: N, C: C, HW: HW, b: layout.block)
            }
            expectClose(dx, dx0, atol: 1e-6, rtol: 0, "\(layout)")
        }
    }

    @Test func statisticsAreDeterministic() {
        let x = S.random([16, 16, 8, 8], seed: 13).toLayout(.blocked(16))
        var m1 = [Double](repeating: 0, count: 16), v1 = m1, m2 = m1, v2 = m1
        x.withUnsafeMutablePointer { x in batchNormStatistics(mean: &m1, variance: &v1, x: x, N: 16, C: 16, HW: 64, b: 16) }
        x.withUnsafeMutablePointer { x in batchNormStatistics(mean: &m2, variance: &v2, x: x, N: 16, C: 16, HW: 64, b: 16) }
        #expect(m1 == m2 && v1 == v2)
    }
}
