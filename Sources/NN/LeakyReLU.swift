import Tensors

/// y = x for x > 0, s·x else, elementwise, any shape and layout (`torch.nn.LeakyReLU(s)`; the authors'
/// Paraphraser and Translator use s = 0.1, `CIFAR/models/util.py:16,55`).
/// Backward: dx = dy where x > 0, else s·dy (torch's rule; with s > 0 the saved output has x's sign).
public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    private var savedOutput: Tensor?

    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let s = negativeSlope
        withUnsafeMutablePointers(y, x) { [n = x.count] y, x in
            for i in 0..<n { y[i] = x[i] > 0 ? x[i] : s * x[i] }
        }
        savedOutput = y
        return y
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        guard let y = savedOutput else { preconditionFailure("LeakyReLU backward called before forward") }
        precondition(dyAny.shape == y.shape, "LeakyReLU backward: dy \(dyAny.shape) vs y \(y.shape)")
        let dy = dyAny.toLayout(y.layout)
        let dx = Tensor(shape: y.shape, layout: y.layout, zeroed: false)
        let s = negativeSlope
        withUnsafeMutablePointers(dx, dy, y) { [n = y.count] dx, dy, y in
            for i in 0..<n { dx[i] = y[i] > 0 ? dy[i] : s * dy[i] }
        }
        return dx
    }
}
