import TestSupport
import Foundation
import Kernels
import Testing
import Tensors
@testable import NN

struct BatchNorm2dTests {
    typealias K = LayerTestKit

    /// y = γ·(x − μ)/√(σ² + ε) + β per channel, in double, from a plain input.
    static func reference(_ x: Tensor, mean: [Double]? = nil, variance: [Double]? = nil, gamma: [Float], beta: [Float],
                          eps: Double = 1e-5) -> Tensor {
        let (N, C, HW) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let y = Tensor(shape: x.shape)
        for c in 0..<C {
            var s = 0.0
            for n in 0..<N { for p in 0..<HW { s += Double(x[(n * C + c) * HW + p]) } }
            let mu = mean?[c] ?? s / Double(N * HW)
            var v = 0.0
            for n in 0..<N { for p in 0..<HW { let d = Double(x[(n * C + c) * HW + p]) - mu; v += d * d } }
            let sigma2 = variance?[c] ?? v / Double(N * HW)
            for n in 0..<N {
                for p in 0..<HW {
                    let i = (n * C + c) * HW + p
                    y[i] = Float(Double(gamma[c]) * (Double(x[i]) - mu) / (sigma2 + eps).squareRoot() + Double(beta[c]))
                }
            }
        }
        return y
    }

    @Test(arguments: LayerTestKit.layouts)
    func trainForwardMatchesDefinition(layout: Layout) {
        let x = randomTensor([4, 16, 5, 6], seed: 1, 1, 3)
        let bn = BatchNorm2d(features: 16)
        K.randomizeParameters(bn, seed: 2)
        let y = bn.forward(x.toLayout(layout), mode: .train)
        #expect(y.layout == layout)
        let expected = Self.reference(x, gamma: bn.weight.value.array, beta: bn.bias.value.array)
        expectClose(y, expected, atol: 2e-5, rtol: 0)
    }

    /// Running statistics after two steps, by hand: channel 0 holds {1, 2, 3, 6} (mean 3, biased variance
    /// 3.5, unbiased 14/3), channel 1 holds {0, 0, 4, 4} (mean 2, biased 4, unbiased 16/3).
    @Test func runningStatisticsByHand() {
        let x = Tensor(shape: [2, 2, 1, 2], values: [1, 2, 0, 0, 3, 6, 4, 4])
        let bn = BatchNorm2d(features: 2)
        let y = bn.forward(x, mode: .train)
        #expect(abs(bn.runningMean.value[0] - 0.3) < 1e-7 && abs(bn.runningMean.value[1] - 0.2) < 1e-7)
        #expect(abs(bn.runningVar.value[0] - Float(0.9 + 0.1 * 14.0 / 3)) < 1e-6)
        #expect(abs(bn.runningVar.value[1] - Float(0.9 + 0.1 * 16.0 / 3)) < 1e-6)
        #expect(bn.numBatchesTracked.value[0] == 1)
        #expect(abs(y[0] - Float(-2 / (3.5 + 1e-5).squareRoot())) < 1e-6)
        _ = bn.forward(x, mode: .train)
        #expect(abs(bn.runningMean.value[0] - 0.57) < 1e-6 && abs(bn.runningMean.value[1] - 0.38) < 1e-6)
        #expect(abs(bn.runningVar.value[0] - Float(0.9 * (0.9 + 0.1 * 14.0 / 3) + 0.1 * 14.0 / 3)) < 1e-6)
        #expect(abs(bn.runningVar.value[1] - Float(0.9 * (0.9 + 0.1 * 16.0 / 3) + 0.1 * 16.0 / 3)) < 1e-6)
        #expect(bn.numBatchesTracked.value[0] == 2)
        _ = bn.forward(x, mode: .eval)
        #expect(bn.numBatchesTracked.value[0] == 2)
    }

    @Test func stateNames() {
        let bn = BatchNorm2d(features: 3)
        #expect(bn.parameters().map(\.name) == ["weight", "bias"])
        #expect(bn.buffers().map(\.name) == ["running_mean", "running_var", "num_batches_tracked"])
        #expect(bn.buffers().map(\.buffer.isInteger) == [false, false, true])
        #expect(bn.weight.value.array == [1, 1, 1] && bn.bias.value.array == [0, 0, 0])
        #expect(bn.runningMean.value.array == [0, 0, 0] && bn.runningVar.value.array == [1, 1, 1])
    }

    @Test(arguments: LayerTestKit.layouts)
    func evalUsesRunningStatistics(layout: Layout) {
        let x = randomTensor([3, 16, 4, 4], seed: 3)
        let bn = BatchNorm2d(features: 16)
        K.randomizeParameters(bn, seed: 4)
        let rm = randomTensor([16], seed: 5, -0.5, 0.5), rv = randomTensor([16], seed: 6, 0.5, 2)
        bn.runningMean.value = rm.copy()
        bn.runningVar.value = rv.copy()
        let y = bn.forward(x.toLayout(layout), mode: .eval)
        let expected = Self.reference(x, mean: rm.array.map(Double.init), variance: rv.array.map(Double.init),
                                      gamma: bn.weight.value.array, beta: bn.bias.value.array)
        #expect(y.layout == layout)
        expectClose(y, expected, atol: 1e-5, rtol: 0)
        #expect(bn.runningMean.value.array == rm.array && bn.runningVar.value.array == rv.array)
        // After an eval forward, dx = γ/σ_running·dy.
        let dy = randomTensor(x.shape, seed: 7)
        let dx = bn.backward(dy.toLayout(layout))
        #expect(dx.layout == layout)
        let dxp = dx.plainArray
        var worst: Float = 0
        for i in 0..<dy.count {
            let c = (i / 16) % 16
            let k = bn.weight.value[c] / (rv[c] + 1e-5).squareRoot()
            worst = max(worst, abs(dxp[i] - k * dy[i]))
        }
        #expect(worst < 1e-6)
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsTrainMode(layout: Layout) {
        let bn = BatchNorm2d(features: 16)
        K.randomizeParameters(bn, seed: 8)
        let failures = GradientCheck().check(bn, input: randomTensor([3, 16, 3, 4], seed: 9).toLayout(layout))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsEvalMode(layout: Layout) {
        let bn = BatchNorm2d(features: 16)
        K.randomizeParameters(bn, seed: 10)
        bn.runningMean.value = randomTensor([16], seed: 11, -0.5, 0.5)
        bn.runningVar.value = randomTensor([16], seed: 12, 0.5, 2)
        let failures = GradientCheck().check(bn, input: randomTensor([3, 16, 3, 4], seed: 13).toLayout(layout), mode: .eval)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// Forward and backward agree across layouts (only summation order differs).
    @Test func layoutsAgree() {
        let x = randomTensor([4, 16, 6, 6], seed: 14), dy = randomTensor([4, 16, 6, 6], seed: 15)
        var results: [(y: Tensor, dx: Tensor, dw: [Float], db: [Float])] = []
        for layout in K.layouts {
            let bn = BatchNorm2d(features: 16)
            K.randomizeParameters(bn, seed: 16)
            let y = bn.forward(x.toLayout(layout), mode: .train)
            let dx = bn.backward(dy.toLayout(layout))
            #expect(dx.layout == layout)
            results.append((y, dx, bn.weight.grad.array, bn.bias.grad.array))
        }
        for r in results.dropFirst() {
            expectClose(r.y, results[0].y, atol: 1e-5, rtol: 0)
            expectClose(r.dx, results[0].dx, atol: 1e-5, rtol: 0)
            #expect(zip(r.dw, results[0].dw).allSatisfy { abs($0 - $1) < 1e-4 })
            #expect(zip(r.db, results[0].db).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test func deterministic() {
        let x = randomTensor([8, 16, 8, 8], seed: 17).toLayout(.blocked(16))
        let dy = randomTensor([8, 16, 8, 8], seed: 18).toLayout(.blocked(16))
        func run() -> (Tensor, Tensor, [Float], [Float]) {
            let bn = BatchNorm2d(features: 16)
            K.randomizeParameters(bn, seed: 19)
            let y = bn.forward(x, mode: .train)
            let dx = bn.backward(dy)
            return (y, dx, bn.weight.grad.array, bn.runningVar.value.array)
        }
        let a = run(), b = run()
        #expect(K.identical(a.0, b.0) && K.identical(a.1, b.1))
        #expect(a.2.map(\.bitPattern) == b.2.map(\.bitPattern) && a.3.map(\.bitPattern) == b.3.map(\.bitPattern))
    }

    @Test func parameterGradientsAccumulate() {
        let bn = BatchNorm2d(features: 16)
        let x = randomTensor([2, 16, 3, 3], seed: 20), dy = randomTensor([2, 16, 3, 3], seed: 21)
        _ = bn.forward(x, mode: .train)
        _ = bn.backward(dy)
        let once = bn.weight.grad.array
        _ = bn.backward(dy)
        #expect(zip(bn.weight.grad.array, once).allSatisfy { abs($0 - 2 * $1) < 1e-5 })
    }

    /// Batch norm (statistics, apply, backward) is bit-identical across thread counts (fixed chunks).
    @Test func batchNormIdenticalAcrossThreadCounts() {
        let previous = Threads.count
        defer { Threads.set(previous) }
        let x = randomTensor([32, 16, 16, 16], seed: 8, 1, 3).toLayout(.blocked(16))
        let dy = randomTensor([32, 16, 16, 16], seed: 9).toLayout(.blocked(16))
        func run(_ threads: Int) -> [UInt32] {
            Threads.set(threads)
            let bn = BatchNorm2d(features: 16)
            let y = bn.forward(x, mode: .train), dx = bn.backward(dy)
            return (y.array + dx.array + bn.weight.grad.array + bn.bias.grad.array + bn.runningVar.value.array).map(\.bitPattern)
        }
        #expect(run(1) == run(2))
        #expect(run(1) == run(3))
    }
}
