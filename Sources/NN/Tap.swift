import Tensors

/// An identity wrapper that exposes the output of the layer it wraps (a distillation feature) and lets
/// a caller feed an extra gradient into it.
///
/// Forward:  y = wrapped.forward(x, mode); `output` keeps y (after `.train` and `.eval` forwards alike; in
///           the wrapped layer's layout, possibly nChw{b}c: read it with `toLayout(.plain)`).
/// Backward: dx = wrapped.backward(dy + g) with g = `injectedGradient` (dL/dy of an extra loss on the
///           feature, y's shape, any layout), which the call consumes (sets to nil); with nothing injected
///           dy is passed on untouched, so a tapped model computes bit-identical numbers.
/// The wrapped layer is a merged child: state names and module paths are those of the untapped model.
/// Insert and remove taps with `Layer.tap(_:)` / `Layer.removeTaps()`.
public final class Tap: Layer {
    public private(set) var wrapped: Layer
    /// The output of the last forward; nil before the first.
    public private(set) var output: Tensor?
    /// Added to dy by the next backward, then cleared.
    public var injectedGradient: Tensor?

    public init(_ wrapped: Layer) { self.wrapped = wrapped }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = wrapped.forward(x, mode: mode)
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let g = injectedGradient else { return wrapped.backward(dy) }
        precondition(g.shape == dy.shape, "Tap: injected gradient \(g.shape) vs dy \(dy.shape)")
        injectedGradient = nil
        return wrapped.backward(add(dy, g))
    }

    public var children: [Child] { [Child("", wrapped) { self.wrapped = $0 }] }
}

extension Layer {
    /// Wraps the layer at each of `paths` in a `Tap` and returns the taps in `paths` order. A path whose
    /// outermost layer is already a tap keeps that tap. Throws `LayerTreeError` for an unknown path.
    @discardableResult
    public func tap(_ paths: [String]) throws -> [Tap] {
        try paths.map { path in
            guard let current = layer(at: path) else { throw LayerTreeError.noLayer(path: path) }
            if let tap = current as? Tap { return tap }
            let tap = Tap(current)
            try replaceLayer(at: path, with: tap)
            return tap
        }
    }

    /// The taps in the tree with their paths, in `walk` order.
    public func taps() -> [(path: String, tap: Tap)] {
        modules().compactMap { m in (m.layer as? Tap).map { (m.path, $0) } }
    }

    /// Puts every tapped layer back in its slot (taps nested inside tapped layers too).
    public func removeTaps() throws {
        try replaceLayers { _, layer in
            guard var inner = (layer as? Tap)?.wrapped else { return nil }
            while let t = inner as? Tap { inner = t.wrapped }
            try inner.removeTaps()
            return inner
        }
    }
}
