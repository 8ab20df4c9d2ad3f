import Kernels
import Tensors

// Residual additions for blocks. The backward of y = a + b hands dy to both branches unchanged; a block
// merges its branches' input gradients with `add` / `addInPlace`.

/// y = a + b, in a's layout (b is converted when its layout differs). Shapes must match.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    let bb = b.toLayout(a.layout)
    let y = Tensor(shape: a.shape, layout: a.layout, zeroed: false)
    withExtendedLifetime(bb) { addForward(y: y.data, a: a.data, b: bb.data, count: a.count) }
    return y
}

/// a += b in place (b is converted to a's layout when its layout differs). Shapes must match.
public func addInPlace(_ a: Tensor, _ b: Tensor) {
    precondition(a.shape == b.shape, "addInPlace: shapes \(a.shape) and \(b.shape) differ")
    let bb = b.toLayout(a.layout)
    withExtendedLifetime(bb) { accumulate(y: a.data, x: bb.data, count: a.count) }
}
