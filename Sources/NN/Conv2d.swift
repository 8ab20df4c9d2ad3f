import Kernels
import Tensors

/// 2-D convolution (`torch.nn.Conv2d` with square kernel, stride and symmetric padding, dilation 1).
///
/// Shapes: x [N, C, H, W] (plain or nChw{8,16}c) → y [N, K, P, Q] with P = ⌊(H + 2·pad − k)/stride⌋ + 1
/// (same for Q); weight [K, C/groups, k, k] (plain, PyTorch order), bias [K].
/// Forward:  y[n, o] = b[o] + Σ_{i ∈ group(o)} x[n, i] ⋆ w[o, i]  (cross-correlation, stride, zero padding).
/// Backward: dw += Σ_n dy ⋆ x, db += Σ_{n,p,q} dy, dx = conv_transposed(dy, w) in x's layout.
/// y comes out in the channel block oneDNN's fastest implementation writes (usually nChw16c, plain when
/// K is not a multiple of 8), so the next convolution reads it without a reorder.
///
/// Parameters start at zero: call `resetParameters(rng:)` (PyTorch's default) or a model's own init.
public final class Conv2d: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let groups: Int

    /// [K, C/groups, k, k].
    public let weight: Parameter
    /// [K], or nil without bias.
    public let bias: Parameter?

    /// False for a first layer whose input needs no gradient (the stem on images): `backward` then skips
    /// the backward-data convolution and returns an empty `Tensor(shape: [0])`.
    public var propagatesInputGradient = true

    /// The input of the last training forward (nil after `.eval` forwards and after `backward`).
    private var savedInput: Tensor?

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias: Bool = true) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0
                     && groups > 0 && inputChannels % groups == 0 && outputChannels % groups == 0,
                     "invalid Conv2d(\(inputChannels)→\(outputChannels), kernel \(kernelSize), stride \(stride), " +
                     "padding \(padding), groups \(groups))")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.groups = groups
        weight = Parameter(Tensor(shape: [outputChannels, inputChannels / groups, kernelSize, kernelSize]))
        self.bias = bias ? Parameter(Tensor(shape: [outputChannels])) : nil
    }

    /// PyTorch's default init: kaiming_uniform(a = √5) for the weight, i.e. U(±1/√fan_in), and
    /// U(±1/√fan_in) for the bias, with fan_in = (C/groups)·k·k. Draws the weight in storage order, then the bias.
    public func resetParameters(rng: inout RNG) {
        let bound = 1 / Float((inputChannels / groups) * kernelSize * kernelSize).squareRoot()
        weight.value.withUnsafeMutablePointer { w in for i in 0..<weight.count { w[i] = rng.uniform(-bound, bound) } }
        if let bias { bias.value.withUnsafeMutablePointer { b in for i in 0..<bias.count { b[i] = rng.uniform(-bound, bound) } } }
    }

    /// Multiply-accumulates of one forward pass for one image of the given size.
    public func macs(inputHeight: Int, inputWidth: Int) -> Int {
        geometry(batch: 1, inputHeight: inputHeight, inputWidth: inputWidth).macs
    }

    public func geometry(batch: Int, inputHeight: Int, inputWidth: Int) -> ConvGeometry {
        ConvGeometry(batch: batch, inputChannels: inputChannels, inputHeight: inputHeight, inputWidth: inputWidth,
                     outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                     groups: groups)
    }

    private func geometry(of x: Tensor) -> ConvGeometry {
        precondition(x.shape.count == 4 && x.shape[1] == inputChannels,
                     "Conv2d(\(inputChannels)→\(outputChannels)) expects [N, \(inputChannels), H, W], got \(x.shape)")
        let g = geometry(batch: x.shape[0], inputHeight: x.shape[2], inputWidth: x.shape[3])
        precondition(g.problem == nil, "Conv2d: \(g.problem ?? "")")
        return g
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let g = geometry(of: x)
        let yBlock = convOutputBlock(g, bias: bias != nil)
        let y = Tensor(shape: g.outputShape, layout: yBlock == 1 ? .plain : .blocked(yBlock), zeroed: false)
        let xBlock = x.layout.block
        withOptionalUnsafeMutablePointer(bias?.value) { b in
            withUnsafeMutablePointers(y, x, weight.value) { y, x, w in convForward(y, yBlock: yBlock, x, xBlock: xBlock, w, b, g) }
        }
        savedInput = mode == .train ? x : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("Conv2d backward without a training forward") }
        let g = geometry(of: x)
        precondition(dy.shape == g.outputShape, "Conv2d backward: dy \(dy.shape), expected \(g.outputShape)")
        let xBlock = x.layout.block, dyBlock = dy.layout.block
        withOptionalUnsafeMutablePointer(bias?.grad) { db in
            withUnsafeMutablePointers(weight.grad, x, dy) { dw, x, dy in
                convBackwardWeights(dw, db, x, xBlock: xBlock, dy, dyBlock: dyBlock, g)
            }
        }
        savedInput = nil
        if !propagatesInputGradient { return Tensor(shape: [0]) }
        let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(dx, dy, weight.value) { dx, dy, w in
            convBackwardData(dx, dxBlock: xBlock, dy, dyBlock: dyBlock, w, g)
        }
        return dx
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        var list = [(name: "weight", parameter: weight)]
        if let bias { list.append((name: "bias", parameter: bias)) }
        return list
    }
}
