import Kernels
import Tensors

/// y = max(x, 0) elementwise, any shape and layout (`torch.nn.ReLU`).
/// Backward: dx = dy where y > 0, else 0 (the saved output doubles as the mask).
public final class ReLU: Layer {
    private var savedOutput: Tensor?

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        reluForward(y: y.data, x: x.data, count: x.count)
        savedOutput = y
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        guard let y = savedOutput else { preconditionFailure("ReLU backward called before forward") }
        precondition(dyAny.shape == y.shape, "ReLU backward: dy \(dyAny.shape) vs y \(y.shape)")
        let dy = dyAny.toLayout(y.layout)
        let dx = Tensor(shape: y.shape, layout: y.layout, zeroed: false)
        withExtendedLifetime(dy) { reluBackward(dx: dx.data, dy: dy.data, y: y.data, count: y.count) }
        return dx
    }
}
