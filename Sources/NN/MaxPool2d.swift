import Kernels
import Tensors

/// Max pooling over k×k windows (`torch.nn.MaxPool2d(kernel_size, stride, padding, ceil_mode)`), any
/// layout; the output keeps the input's layout.
///
/// x: [N, C, H, W] → y: [N, C, Ho, Wo], Ho = ⌊(H + 2p − k)/s⌋ + 1 (⌈·⌉ with `ceilMode`, dropping a last
/// window that would start in the right padding, as PyTorch). Padding never wins (it acts as −∞).
/// Backward routes dy to the saved argmax of each window (first maximum on ties, as PyTorch).
public final class MaxPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let ceilMode: Bool

    private var savedInputShape: [Int] = []
    private var savedLayout: Layout = .plain
    private var savedArgmax: [Int32] = []

    /// `stride` defaults to `kernelSize`, as in PyTorch.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false) {
        precondition(kernelSize > 0 && (stride ?? kernelSize) > 0 && padding >= 0 && padding <= kernelSize / 2,
                     "MaxPool2d: invalid kernel \(kernelSize), stride \(String(describing: stride)), padding \(padding)")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
    }

    /// Output length of one spatial axis of length `n`.
    func outputLength(_ n: Int) -> Int {
        let span = n + 2 * padding - kernelSize
        var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        if ceilMode && (out - 1) * stride >= n + padding { out -= 1 }
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[2] + 2 * padding >= kernelSize && x.shape[3] + 2 * padding >= kernelSize,
                     "MaxPool2d(k \(kernelSize), p \(padding)) needs [N, C, H, W] with H, W ≥ \(kernelSize - 2 * padding), got \(x.shape)")
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let Ho = outputLength(H), Wo = outputLength(W)
        let y = Tensor(shape: [N, C, Ho, Wo], layout: x.layout, zeroed: false)
        var argmax = [Int32](repeating: 0, count: y.count)
        let b = x.layout.block
        withUnsafeMutablePointers(y, x) { y, x in argmax.withUnsafeMutableBufferPointer { a in
            maxPool2dForward(y: y, argmax: a.baseAddress!, x: x, N: N, C: C, H: H, W: W, b: b,
                             Ho: Ho, Wo: Wo, kH: kernelSize, kW: kernelSize, sH: stride, sW: stride,
                             pH: padding, pW: padding)
        } }
        savedInputShape = x.shape
        savedLayout = x.layout
        savedArgmax = argmax
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        precondition(savedInputShape.count == 4, "MaxPool2d backward called before forward")
        let (N, C, H, W) = (savedInputShape[0], savedInputShape[1], savedInputShape[2], savedInputShape[3])
        let Ho = outputLength(H), Wo = outputLength(W)
        precondition(dyAny.shape == [N, C, Ho, Wo], "MaxPool2d backward: dy \(dyAny.shape), expected \([N, C, Ho, Wo])")
        let dy = dyAny.toLayout(savedLayout)
        let dx = Tensor(shape: savedInputShape, layout: savedLayout, zeroed: false)
        withUnsafeMutablePointers(dx, dy) { dx, dy in
            maxPool2dBackward(dx: dx, dy: dy, argmax: savedArgmax, N: N, C: C, H: H, W: W, b: savedLayout.block,
                              Ho: Ho, Wo: Wo)
        }
        return dx
    }
}
