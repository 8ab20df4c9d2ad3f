import Tensors

/// Layers applied in order; backward runs them in reverse. Children are named "0", "1", ... as in
/// `torch.nn.Sequential`, unless names are given. Every slot is replaceable.
public final class Sequential: Layer {
    public private(set) var layers: [Layer]
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

    public var children: [Child] {
        layers.indices.map { i in Child(names[i], layers[i]) { self.layers[i] = $0 } }
    }
}
