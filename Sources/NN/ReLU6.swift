import Kernels
import Tensors

/// y = min(max(x, 0), 6) elementwise, any shape and layout (`torch.nn.ReLU6`, i.e. hardtanh(0, 6)).
/// Backward (hardtanh's): dx = dy where 0 < x < 6, else 0; read from the saved output (0 < y < 6).
public final class ReLU6: Layer {
    private var savedOutput: Tensor?

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { [n = x.count] y, x in relu6Forward(y: y, x: x, count: n) }
        savedOutput = y
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        guard let y = savedOutput else { preconditionFailure("ReLU6 backward called before forward") }
        precondition(dyAny.shape == y.shape, "ReLU6 backward: dy \(dyAny.shape) vs y \(y.shape)")
        let dy = dyAny.toLayout(y.layout)
        let dx = Tensor(shape: y.shape, layout: y.layout, zeroed: false)
        withUnsafeMutablePointers(dx, dy, y) { [n = y.count] dx, dy, y in relu6Backward(dx: dx, dy: dy, y: y, count: n) }
        return dx
    }
}
