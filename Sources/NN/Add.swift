import Kernels
import Tensors

// Residual additions for blocks. The backward of y = a + b hands dy to both branches unchanged; a block
// merges its branches' input gradients with `add` / `addInPlace`.

/// y = a + b, in a's layout (b is converted when its layout differs). Shapes must match.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    let bb = b.toLayout(a.layout)
    let y = Tensor(shape: a.shape, layout: a.layout, zeroed: false)
    withUnsafeMutablePointers(y, a, bb) { [n = a.count] y, a, b in addForward(y: y, a: a, b: b, count: n) }
    return y
}

/// a += b in place (b is converted to a's layout when its layout differs). Shapes must match.
public func addInPlace(_ a: Tensor, _ b: Tensor) {
    precondition(a.shape == b.shape, "addInPlace: shapes \(a.shape) and \(b.shape) differ")
    let bb = b.toLayout(a.layout)
    withUnsafeMutablePointers(a, bb) { [n = a.count] a, b in accumulate(y: a, x: b, count: n) }
}
