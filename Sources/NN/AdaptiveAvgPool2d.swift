import Kernels
import Tensors

/// Adaptive average pooling to a fixed output size (`torch.nn.AdaptiveAvgPool2d`), any layout; the output
/// stays 4-D in the input's layout (for a 1×1 output, nChw{b}c and plain storage coincide).
///
/// x: [N, C, H, W] → y: [N, C, Ho, Wo]; output row i averages input rows [⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉) (columns
/// likewise). Backward: dx[window] += dy / |window|.
public final class AdaptiveAvgPool2d: Layer {
    public let outputHeight: Int
    public let outputWidth: Int

    private var savedInputShape: [Int] = []
    private var savedLayout: Layout = .plain

    public convenience init(outputSize: Int) {
        self.init(outputHeight: outputSize, outputWidth: outputSize)
    }

    public init(outputHeight: Int, outputWidth: Int) {
        precondition(outputHeight > 0 && outputWidth > 0, "AdaptiveAvgPool2d: invalid output \(outputHeight)×\(outputWidth)")
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[2] > 0 && x.shape[3] > 0,
                     "AdaptiveAvgPool2d needs a non-empty [N, C, H, W], got \(x.shape)")
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = Tensor(shape: [N, C, outputHeight, outputWidth], layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { [b = x.layout.block] y, x in
            adaptiveAvgPool2dForward(y: y, x: x, N: N, C: C, H: H, W: W, b: b, Ho: outputHeight, Wo: outputWidth)
        }
        savedInputShape = x.shape
        savedLayout = x.layout
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        precondition(savedInputShape.count == 4, "AdaptiveAvgPool2d backward called before forward")
        let (N, C, H, W) = (savedInputShape[0], savedInputShape[1], savedInputShape[2], savedInputShape[3])
        precondition(dyAny.shape == [N, C, outputHeight, outputWidth],
                     "AdaptiveAvgPool2d backward: dy \(dyAny.shape), expected \([N, C, outputHeight, outputWidth])")
        let dy = dyAny.toLayout(savedLayout)
        let dx = Tensor(shape: savedInputShape, layout: savedLayout, zeroed: false)
        withUnsafeMutablePointers(dx, dy) { dx, dy in
            adaptiveAvgPool2dBackward(dx: dx, dy: dy, N: N, C: C, H: H, W: W, b: savedLayout.block,
                                      Ho: outputHeight, Wo: outputWidth)
        }
        return dx
    }
}
