import Tensors

/// Layers applied in order; backward runs them in reverse. Children are named "0", "1", ... as in
/// `torch.nn.Sequential`, unless names are given.
public final class Sequential: Layer {
    public let layers: [Layer]
    public let names: [String]

    public init(_ layers: [Layer], names: [String]? = nil) {
        precondition(names == nil || names!.count == layers.count, "one name per layer")
        self.layers = layers
        self.names = names ?? layers.indices.map(String.init)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = x
        for l in layers { h = l.forward(h, mode: mode) }
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        for l in layers.reversed() { g = l.backward(g) }
        return g
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        zip(names, layers).flatMap { prefixed($0, $1.parameters()) }
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        zip(names, layers).flatMap { prefixed($0, $1.buffers()) }
    }
}
