import Foundation
import Kernels
import NN
import Tensors

/// Timings of the non-convolution layers at ResNet-20's CIFAR shapes (batch 128) with `threads` engine
/// threads: BatchNorm2d (train forward + backward, eval forward) and ReLU on [128, 16, 32, 32] in nChw16c
/// and plain layouts, the option-A shortcut 16→32 stride 2, `add`, and the AdaptiveAvgPool2d(1) + Flatten
/// head. Fastest of `repeats` calls after one warm-up, in milliseconds; one line per group.
public func layerBenchmarkResNet20(threads: Int, repeats: Int = 21) -> [String] {
    Threads.set(threads)
    var lines = ["threads \(threads), fastest of \(repeats) calls, ms"]
    for layout in [Layout.blocked(16), .plain] {
        let x = randomTensor([128, 16, 32, 32], seed: 1).toLayout(layout)
        let dy = randomTensor([128, 16, 32, 32], seed: 2).toLayout(layout)
        let bn = BatchNorm2d(features: 16), relu = ReLU()
        let bnMs = fastest(repeats: repeats) { _ = bn.forward(x, mode: .train); _ = bn.backward(dy) }
        let bnEvalMs = fastest(repeats: repeats) { _ = bn.forward(x, mode: .eval) }
        let reluMs = fastest(repeats: repeats) { _ = relu.forward(x, mode: .train); _ = relu.backward(dy) }
        lines.append(String(format: "[128,16,32,32] %@: BatchNorm2d train fwd+bwd %.2f, eval fwd %.2f; ReLU fwd+bwd %.2f",
                            layout.description, bnMs, bnEvalMs, reluMs))
    }
    let x = randomTensor([128, 16, 32, 32], seed: 3).toLayout(.blocked(16))
    let shortcut = OptionAShortcut(inputChannels: 16, outputChannels: 32, stride: 2)
    let sdy = randomTensor([128, 32, 16, 16], seed: 4).toLayout(.blocked(16))
    let shortcutMs = fastest(repeats: repeats) { _ = shortcut.forward(x, mode: .train); _ = shortcut.backward(sdy) }
    let a = randomTensor([128, 16, 32, 32], seed: 5).toLayout(.blocked(16))
    let addMs = fastest(repeats: repeats) { _ = add(a, x) }
    let h = randomTensor([128, 64, 8, 8], seed: 6).toLayout(.blocked(16))
    let pool = AdaptiveAvgPool2d(outputSize: 1), flatten = Flatten()
    let g = randomTensor([128, 64], seed: 7)
    let headMs = fastest(repeats: repeats) {
        _ = flatten.forward(pool.forward(h, mode: .train), mode: .train)
        _ = pool.backward(flatten.backward(g))
    }
    lines.append(String(format: "OptionAShortcut 16→32 s2 fwd+bwd %.2f; add [128,16,32,32] %.2f; AdaptiveAvgPool2d(1)+Flatten [128,64,8,8] fwd+bwd %.3f",
                        shortcutMs, addMs, headMs))
    return lines
}
