import Kernels
import Tensors

/// Average pooling over k×k windows without padding (`torch.nn.AvgPool2d(kernel_size, stride)`; with no
/// padding count_include_pad makes no difference), any layout; the output keeps the input's layout.
///
/// x: [N, C, H, W] → y: [N, C, Ho, Wo], Ho = ⌊(H − k)/s⌋ + 1, y = Σ_window x / k².
/// Backward: dx[window] += dy / k² for every output window.
public final class AvgPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int

    private var savedInputShape: [Int] = []
    private var savedLayout: Layout = .plain

    /// `stride` defaults to `kernelSize`, as in PyTorch.
    public init(kernelSize: Int, stride: Int? = nil) {
        precondition(kernelSize > 0 && (stride ?? kernelSize) > 0,
                     "AvgPool2d: invalid kernel \(kernelSize), stride \(String(describing: stride))")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[2] >= kernelSize && x.shape[3] >= kernelSize,
                     "AvgPool2d(\(kernelSize)) needs [N, C, H, W] with H, W ≥ \(kernelSize), got \(x.shape)")
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let Ho = (H - kernelSize) / stride + 1, Wo = (W - kernelSize) / stride + 1
        let y = Tensor(shape: [N, C, Ho, Wo], layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { [b = x.layout.block] y, x in
            avgPool2dForward(y: y, x: x, N: N, C: C, H: H, W: W, b: b, kH: kernelSize, kW: kernelSize, sH: stride, sW: stride)
        }
        savedInputShape = x.shape
        savedLayout = x.layout
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        precondition(savedInputShape.count == 4, "AvgPool2d backward called before forward")
        let (N, C, H, W) = (savedInputShape[0], savedInputShape[1], savedInputShape[2], savedInputShape[3])
        let Ho = (H - kernelSize) / stride + 1, Wo = (W - kernelSize) / stride + 1
        precondition(dyAny.shape == [N, C, Ho, Wo], "AvgPool2d backward: dy \(dyAny.shape), expected \([N, C, Ho, Wo])")
        let dy = dyAny.toLayout(savedLayout)
        let dx = Tensor(shape: savedInputShape, layout: savedLayout, zeroed: false)
        withUnsafeMutablePointers(dx, dy) { dx, dy in
            avgPool2dBackward(dx: dx, dy: dy, N: N, C: C, H: H, W: W, b: savedLayout.block,
                              kH: kernelSize, kW: kernelSize, sH: stride, sW: stride)
        }
        return dx
    }
}
