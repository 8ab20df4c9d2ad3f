import Tensors

/// Flattens all dimensions after the first (`torch.nn.Flatten()`): x [N, d1, d2, ...] in any layout →
/// plain y [N, d1·d2·...] in logical (NCHW) order. Backward reshapes dy back and restores the input's layout.
public final class Flatten: Layer {
    private var savedInputShape: [Int] = []
    private var savedLayout: Layout = .plain

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count >= 2, "Flatten needs at least [N, F], got \(x.shape)")
        savedInputShape = x.shape
        savedLayout = x.layout
        let flat = [x.shape[0], x.count / max(1, x.shape[0])]
        if x.layout == .plain || x.shape.count == 4 && x.shape[2] * x.shape[3] == 1 {
            // With H·W = 1, nChw{b}c storage is already in NCHW order.
            let y = Tensor(shape: flat, layout: .plain, zeroed: false)
            y.copyElements(from: x)
            return y
        }
        return x.toLayout(.plain).reshaped(flat)
    }

    public func backward(_ dyAny: Tensor) -> Tensor {
        precondition(savedInputShape.count >= 2, "Flatten backward called before forward")
        let count = savedInputShape.reduce(1, *)
        precondition(dyAny.count == count && dyAny.layout == .plain,
                     "Flatten backward: dy \(dyAny.shape) \(dyAny.layout), expected \(count) plain values")
        let dx = Tensor(shape: savedInputShape, layout: savedLayout == .plain || savedInputShape.count == 4
                        && savedInputShape[2] * savedInputShape[3] == 1 ? savedLayout : .plain, zeroed: false)
        dx.copyElements(from: dyAny)
        return dx.toLayout(savedLayout)
    }
}
