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
        batchNormStatisticsNaive(mean: &m0, variance: &v0, x: x.data, N: N, C: C, HW: HW)
        for layout in S.layouts {
            let xb = x.toLayout(layout)
            var m = [Double](repeating: 0, count: C), v = m
            batchNormStatistics(mean: &m, variance: &v, x: xb.data, N: N, C: C, HW: HW, b: layout.block)
            #expect(S.maxRelative(m, m0) < 1e-6, "mean, \(layout)")
            #expect(S.maxRelative(v, v0) < 1e-6, "variance, \(layout)")
            withExtendedLifetime((x, xb)) {}
        }
    }

    @Test(arguments: shapes)
    func apply(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        let x = S.random(shape, seed: 2)
        let scale = S.random([C], seed: 3).array, shift = S.random([C], seed: 4).array
        let y0 = Tensor(shape: shape)
        batchNormApplyNaive(y: y0.data, x: x.data, scale: scale, shift: shift, N: N, C: C, HW: HW)
        for layout in S.layouts {
            let xb = x.toLayout(layout)
            let y = Tensor(shape: shape, layout: layout)
            batchNormApply(y: y.data, x: xb.data, scale: scale, shift: shift, N: N, C: C, HW: HW, b: layout.block)
            #expect(S.maxDifference(y, y0) == 0, "\(layout)")
            withExtendedLifetime((x, xb)) {}
        }
    }

    @Test(arguments: shapes)
    func backwardReduce(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        let x = S.random(shape, seed: 5), dy = S.random(shape, seed: 6)
        let mean = S.random([C], seed: 7, -0.1, 0.1).array
        var s0 = [Double](repeating: 0, count: C), s1 = s0
        batchNormBackwardReduceNaive(sumDy: &s0, sumDyXmu: &s1, dy: dy.data, x: x.data, mean: mean, N: N, C: C, HW: HW)
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            var a0 = [Double](repeating: 0, count: C), a1 = a0
            batchNormBackwardReduce(sumDy: &a0, sumDyXmu: &a1, dy: dyb.data, x: xb.data,
                                    mean: mean, N: N, C: C, HW: HW, b: layout.block)
            #expect(S.maxRelative(a0, s0) < 1e-5, "Σdy, \(layout)")
            #expect(S.maxRelative(a1, s1) < 1e-5, "Σdy(x−μ), \(layout)")
            withExtendedLifetime((x, dy, xb, dyb)) {}
        }
    }

    @Test(arguments: shapes)
    func backwardInput(shape: [Int]) {
        let (N, C, HW) = (shape[0], shape[1], shape[2] * shape[3])
        let x = S.random(shape, seed: 8), dy = S.random(shape, seed: 9)
        let a = S.random([C], seed: 10).array, k = S.random([C], seed: 11).array, s = S.random([C], seed: 12).array
        let dx0 = Tensor(shape: shape)
        batchNormBackwardInputNaive(dx: dx0.data, dy: dy.data, x: x.data, dyScale: a, xScale: k, shift: s, N: N, C: C, HW: HW)
        for layout in S.layouts {
            let xb = x.toLayout(layout), dyb = dy.toLayout(layout)
            let dx = Tensor(shape: shape, layout: layout)
            batchNormBackwardInput(dx: dx.data, dy: dyb.data, x: xb.data,
                                   dyScale: a, xScale: k, shift: s, N: N, C: C, HW: HW, b: layout.block)
            #expect(S.maxDifference(dx, dx0) < 1e-6, "\(layout)")
            withExtendedLifetime((x, dy, xb, dyb)) {}
        }
    }

    @Test func statisticsAreDeterministic() {
        let x = S.random([16, 16, 8, 8], seed: 13).toLayout(.blocked(16))
        var m1 = [Double](repeating: 0, count: 16), v1 = m1, m2 = m1, v2 = m1
        batchNormStatistics(mean: &m1, variance: &v1, x: x.data, N: 16, C: 16, HW: 64, b: 16)
        batchNormStatistics(mean: &m2, variance: &v2, x: x.data, N: 16, C: 16, HW: 64, b: 16)
        withExtendedLifetime(x) {}
        #expect(m1 == m2 && v1 == v2)
    }
}
