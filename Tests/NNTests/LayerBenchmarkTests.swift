import TestSupport
import Foundation
import Kernels
import Testing
import Tensors
@testable import NN

/// Timings of the non-convolution layers at ResNet-20's CIFAR shapes (batch 128, 2 threads), and a check that
/// batch norm is bit-identical across thread counts. Opt-in (it changes the global thread count):
/// `SQAKD_BENCH=1 swift test -c release --filter LayerBenchmarkTests`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SQAKD_BENCH"] != nil), .serialized)
struct LayerBenchmarkTests {
    /// Fastest wall time of `body` in milliseconds over `repeats` runs, after one warm-up (the minimum is the
    /// figure least disturbed by other processes on a shared machine).
    func fastest(_ repeats: Int = 21, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return best
    }

    @Test func resnet20Shapes() {
        let previous = Threads.count
        defer { Threads.set(previous) }
        Threads.set(2)
        for layout in [Layout.blocked(16), .plain] {
            let x = randomTensor([128, 16, 32, 32], seed: 1).toLayout(layout)
            let dy = randomTensor([128, 16, 32, 32], seed: 2).toLayout(layout)
            let bn = BatchNorm2d(features: 16), relu = ReLU()
            let bnMs = fastest { _ = bn.forward(x, mode: .train); _ = bn.backward(dy) }
            let bnEvalMs = fastest { _ = bn.forward(x, mode: .eval) }
            let reluMs = fastest { _ = relu.forward(x, mode: .train); _ = relu.backward(dy) }
            print(String(format: "[128,16,32,32] %@: BatchNorm2d train fwd+bwd %.2f ms, eval fwd %.2f ms; ReLU fwd+bwd %.2f ms",
                         layout.description, bnMs, bnEvalMs, reluMs))
        }
        let x = randomTensor([128, 16, 32, 32], seed: 3).toLayout(.blocked(16))
        let shortcut = OptionAShortcut(inputChannels: 16, outputChannels: 32, stride: 2)
        let sdy = randomTensor([128, 32, 16, 16], seed: 4).toLayout(.blocked(16))
        let shortcutMs = fastest { _ = shortcut.forward(x, mode: .train); _ = shortcut.backward(sdy) }
        let a = randomTensor([128, 16, 32, 32], seed: 5).toLayout(.blocked(16))
        let addMs = fastest { _ = add(a, x) }
        let h = randomTensor([128, 64, 8, 8], seed: 6).toLayout(.blocked(16))
        let pool = AdaptiveAvgPool2d(outputSize: 1), flatten = Flatten()
        let g = randomTensor([128, 64], seed: 7)
        let headMs = fastest { _ = flatten.forward(pool.forward(h, mode: .train), mode: .train); _ = pool.backward(flatten.backward(g)) }
        print(String(format: "OptionAShortcut 16→32 s2 fwd+bwd %.2f ms; add [128,16,32,32] %.2f ms; AdaptiveAvgPool2d(1)+Flatten [128,64,8,8] fwd+bwd %.3f ms",
                     shortcutMs, addMs, headMs))
    }

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
