import Kernels
import Tensors

/// The CIFAR ResNet's option-A shortcut (He et al. 2016; `LambdaLayer` in the reference): no parameters.
///
/// x: [N, Cin, H, W] → y: [N, Cout, ⌈H/s⌉, ⌈W/s⌉], y = x[:, :, ::s, ::s] zero-padded with
/// (Cout − Cin)/2 channels on each side (16→32 pads 8 + 8). Backward: dx[:, c, ::s, ::s] = dy[:, c + pad],
/// dx = 0 elsewhere. The output keeps the input's layout, or is plain when Cout is not a multiple of the
/// input's block; dx has the input's layout.
public final class OptionAShortcut: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int

    private var savedInputShape: [Int] = []
    private var savedInputLayout: Layout = .plain
    private var savedOutputLayout: Layout = .plain

    public init(inputChannels: Int, outputChannels: Int, stride: Int) {
        precondition(inputChannels > 0 && outputChannels >= inputChannels && (outputChannels - inputChannels) % 2 == 0
                     && stride > 0,
                     "OptionAShortcut: invalid channels \(inputChannels)→\(outputChannels) or stride \(stride)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.stride = stride
    }

    var pad: Int { (outputChannels - inputChannels) / 2 }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[1] == inputChannels,
                     "OptionAShortcut expects [N, \(inputChannels), H, W], got \(x.shape)")
        let (N, H, W) = (x.shape[0], x.shape[2], x.shape[3])
        let b = x.layout.block
        let outLayout: Layout = outputChannels % b == 0 ? x.layout : .plain
        let Ho = (H + stride - 1) / stride, Wo = (W + stride - 1) / stride
        let y = Tensor(shape: [N, outputChannels, Ho, Wo], layout: outLayout, zeroed: false)
        withUnsafeMutablePointers(y, x) { y, x in
            optionAShortcutForward(y: y, x: x, N: N, Cin: inputChannels, H: H, W: W, bi: b,
                                   Cout: outputChannels, bo: outLayout.block, stride: stride, pad: pad)
        }
        savedInputShape = x.shape
        savedInputLayout = x.layout
        savedOutputLayout = outLayout
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        precondition(savedInputShape.count == 4, "OptionAShortcut backward called before forward")
        let (N, H, W) = (savedInputShape[0], savedInputShape[2], savedInputShape[3])
        let Ho = (H + stride - 1) / stride, Wo = (W + stride - 1) / stride
        precondition(dyAny.shape == [N, outputChannels, Ho, Wo],
                     "OptionAShortcut backward: dy \(dyAny.shape), expected \([N, outputChannels, Ho, Wo])")
        let dy = dyAny.toLayout(savedOutputLayout)
        let dx = Tensor(shape: savedInputShape, layout: savedInputLayout, zeroed: false)
        withUnsafeMutablePointers(dx, dy) { dx, dy in
            optionAShortcutBackward(dx: dx, dy: dy, N: N, Cin: inputChannels, H: H, W: W,
                                    bi: savedInputLayout.block, Cout: outputChannels, bo: savedOutputLayout.block,
                                    stride: stride, pad: pad)
        }
        return dx
    }
}
