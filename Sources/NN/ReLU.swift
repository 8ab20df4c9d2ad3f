import Kernels
import Tensors

/// y = max(x, 0) elementwise, any shape and layout (`torch.nn.ReLU`).
/// Backward: dx = dy where y > 0, else 0 (the saved output doubles as the mask).
public final class ReLU: Layer {
    private var savedOutput: Tensor?

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { [n = x.count] y, x in reluForward(y: y, x: x, count: n) }
        savedOutput = y
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        guard let y = savedOutput else { preconditionFailure("ReLU backward called before forward") }
        precondition(dyAny.shape == y.shape, "ReLU backward: dy \(dyAny.shape) vs y \(y.shape)")
        let dy = dyAny.toLayout(y.layout)
        let dx = Tensor(shape: y.shape, layout: y.layout, zeroed: false)
        withUnsafeMutablePointers(dx, dy, y) { [n = y.count] dx, dy, y in reluBackward(dx: dx, dy: dy, y: y, count: n) }
        return dx
    }
}
