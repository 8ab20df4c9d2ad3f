import Kernels
import Tensors

/// Dropout (`torch.nn.Dropout(p)`), any shape and layout.
///
/// Train: y = x ⊙ m with m = Bernoulli(1 − p)/(1 − p) per element (p = 1 gives zeros); eval: y = x.
/// Backward: dx = dy ⊙ m (dx = dy after an eval forward). The mask is drawn from `rng` in logical (NCHW)
/// order, one uniform per element, so it does not depend on the layout; `rng` is part of the training
/// state (checkpoints save it).
public final class Dropout: Layer {
    public let probability: Float
    public var rng: RNG

    private var savedMask: Tensor?
    private var savedTrain = false

    public init(probability: Float, seed: UInt64) {
        precondition(probability >= 0 && probability <= 1, "Dropout probability \(probability) outside [0, 1]")
        self.probability = probability
        self.rng = RNG(seed: seed)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        savedTrain = mode == .train && probability > 0
        guard savedTrain else { savedMask = nil; return x }
        let keep = 1 - probability
        let scale: Float = keep > 0 ? 1 / keep : 0
        let mask = Tensor(shape: x.shape, layout: .plain, zeroed: false)
        mask.withUnsafeMutablePointer { p in for i in 0..<mask.count { p[i] = rng.uniform() < keep ? scale : 0 } }
        let m = x.shape.count == 4 ? mask.toLayout(x.layout) : mask
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x, m) { [n = x.count] y, x, m in multiplyForward(y: y, a: x, b: m, count: n) }
        savedMask = m
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard savedTrain, let m = savedMask else { return dy }
        precondition(dy.shape == m.shape, "Dropout backward: dy \(dy.shape) vs mask \(m.shape)")
        let g = dy.toLayout(m.layout)
        let dx = Tensor(shape: m.shape, layout: m.layout, zeroed: false)
        withUnsafeMutablePointers(dx, g, m) { [n = m.count] dx, g, m in multiplyForward(y: dx, a: g, b: m, count: n) }
        return dx
    }
}
