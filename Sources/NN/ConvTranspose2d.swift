import Tensors

/// Transposed 2-D convolution with stride 1 (`torch.nn.ConvTranspose2d(C_in, C_out, k, 1, p)`, p ≤ k − 1;
/// the authors' Paraphraser decoder uses k = 3, p = 1, `CIFAR/models/util.py:24-34`).
///
/// Shapes: x [N, C_in, H, W] → y [N, C_out, H + k − 1 − 2p, W + k − 1 − 2p]; weight [C_in, C_out, k, k]
/// (PyTorch's order), bias [C_out].
/// With stride 1 it is the convolution with the kernel transposed in channels and flipped in space, and
/// padding k − 1 − p:  y = b + conv2d(x, W'),  W'[o, i, u, v] = W[i, o, k−1−u, k−1−v].
/// Forward and backward run that `Conv2d`; its gradients are mapped back to W's order (dW[i, o, u, v] +=
/// dW'[o, i, k−1−u, k−1−v], db += db').
///
/// Parameters start at zero: `resetParameters(rng:)` gives PyTorch's default, U(±1/√fan_in) for weight and
/// bias with fan_in = weight.size(1)·k² = C_out·k² (torch's fan of a [C_in, C_out, k, k] tensor).
public final class ConvTranspose2d: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let padding: Int
    /// [C_in, C_out, k, k].
    public let weight: Parameter
    /// [C_out].
    public let bias: Parameter
    private let conv: Conv2d

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, padding: Int = 0) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && (0..<kernelSize).contains(padding),
                     "invalid ConvTranspose2d(\(inputChannels)→\(outputChannels), kernel \(kernelSize), padding \(padding))")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.padding = padding
        weight = Parameter(Tensor(shape: [inputChannels, outputChannels, kernelSize, kernelSize]))
        bias = Parameter(Tensor(shape: [outputChannels]))
        conv = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
                      padding: kernelSize - 1 - padding)
    }

    /// Weight in storage order, then bias, each U(±1/√(C_out·k²)).
    public func resetParameters(rng: inout RNG) {
        let bound = 1 / Float(outputChannels * kernelSize * kernelSize).squareRoot()
        weight.value.withUnsafeMutablePointer { w in for i in 0..<weight.count { w[i] = rng.uniform(-bound, bound) } }
        bias.value.withUnsafeMutablePointer { b in for i in 0..<bias.count { b[i] = rng.uniform(-bound, bound) } }
    }

    /// Calls body(index into W, index into W') for every kernel element.
    private func forEachPair(_ body: (Int, Int) -> Void) {
        let ci = inputChannels, co = outputChannels, k = kernelSize
        for i in 0..<ci {
            for o in 0..<co {
                for u in 0..<k {
                    for v in 0..<k { body(((i * co + o) * k + u) * k + v, ((o * ci + i) * k + (k - 1 - u)) * k + (k - 1 - v)) }
                }
            }
        }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        withUnsafeMutablePointers(conv.weight.value, weight.value) { w2, w in forEachPair { w2[$1] = w[$0] } }
        withUnsafeMutablePointers(conv.bias!.value, bias.value) { [n = outputChannels] b2, b in for i in 0..<n { b2[i] = b[i] } }
        return conv.forward(x, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        conv.weight.zeroGrad()
        conv.bias!.zeroGrad()
        let dx = conv.backward(dy)
        withUnsafeMutablePointers(weight.grad, conv.weight.grad) { g, g2 in forEachPair { g[$0] += g2[$1] } }
        withUnsafeMutablePointers(bias.grad, conv.bias!.grad) { [n = outputChannels] g, g2 in for i in 0..<n { g[i] += g2[i] } }
        return dx
    }

    public func parameters() -> [(name: String, parameter: Parameter)] { [("weight", weight), ("bias", bias)] }
}
