import Tensors

/// Whether a forward pass trains (batch statistics, dropout, saving what backward needs) or evaluates.
public enum Mode: Sendable { case train, eval }

/// A trainable tensor with its gradient. Gradients accumulate (`+=`) across backward calls until the
/// optimizer's `zeroGrad()`. Values are always stored plain (PyTorch order: OIHW for conv weights).
public final class Parameter {
    public var value: Tensor
    public var grad: Tensor

    public init(_ value: Tensor) {
        precondition(value.layout == .plain, "parameters are stored plain")
        self.value = value
        self.grad = Tensor.zeros(like: value)
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
    public func zeroGrad() { grad.fill(0) }
}

/// A non-trainable tensor that belongs in the state dict (BatchNorm running statistics).
/// `isInteger` marks PyTorch int64 buffers (`num_batches_tracked`), stored as integral floats here.
public final class Buffer {
    public var value: Tensor
    public let isInteger: Bool

    public init(_ value: Tensor, isInteger: Bool = false) {
        self.value = value
        self.isInteger = isInteger
    }
}

/// A differentiable module with a hand-written backward, and a node of the module tree.
///
/// - `forward(x, mode:)` in `.train` mode saves what `backward` needs (in `saved…` properties).
/// - `backward(dy)` consumes the saved state of the last training forward, *accumulates* the gradients of
///   the layer's parameters and returns dL/dx.
/// - `children` names the direct sub-layers with their PyTorch attribute names (`conv1`, `0`), in
///   state-dict order. A composite declares its children there once; everything else is derived:
///   `parameters()` / `buffers()` (prefixed with the child's name: `layer1.0.conv1.weight`), the state dict
///   (`namedTensors`, `stateDict`, `load(stateDict:)`), `parameterCount`, `modules()`, the replace walk
///   (`replaceLayers`, `replaceLayer(at:with:)`), taps and a model's MAC count.
/// - A leaf (Conv2d, BatchNorm2d, a quantizer) has no children and lists its own tensors in
///   `parameters()` / `buffers()`, named relative to itself (`weight`, `bias`, `running_mean`, ...).
///   A layer with both children and tensors of its own (QConv2d's `output_scale`) returns
///   `childParameters()` followed by its own.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, mode: Mode) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    /// Direct sub-layers, in state-dict order. Default: none.
    var children: [Child] { get }
    /// Every parameter of the layer and its descendants, with names relative to the layer.
    /// Default: `childParameters()`.
    func parameters() -> [(name: String, parameter: Parameter)]
    /// Every buffer of the layer and its descendants, with names relative to the layer.
    /// Default: `childBuffers()`.
    func buffers() -> [(name: String, buffer: Buffer)]
}

/// A named slot of a composite layer holding one child.
///
/// `name` is the PyTorch attribute name; the empty name merges the child's state into its parent's
/// namespace and gives it the parent's path (a QConv's wrapped conv, whose `weight` is the QConv's
/// `weight`; an EWGS quantizer's `uW` beside it; a `Tap`'s wrapped layer). A replaceable slot stores a
/// new layer through `replace`; forward then uses the new layer, because it reads the same stored property.
public struct Child {
    public let name: String
    public let layer: Layer
    let replace: ((Layer) -> Void)?

    /// A slot whose layer cannot be replaced.
    public init(_ name: String, _ layer: Layer) {
        self.name = name
        self.layer = layer
        self.replace = nil
    }

    /// A slot whose layer `replace` swaps (it stores the new layer where forward reads it).
    public init(_ name: String, _ layer: Layer, replace: @escaping (Layer) -> Void) {
        self.name = name
        self.layer = layer
        self.replace = replace
    }

    public var isReplaceable: Bool { replace != nil }
}

/// Why a walk over the module tree could not replace a layer.
public enum LayerTreeError: Error, Equatable, CustomStringConvertible {
    /// No layer at the path.
    case noLayer(path: String)
    /// The path is the root, or a slot that does not allow replacement.
    case notReplaceable(path: String)

    public var description: String {
        switch self {
        case .noLayer(let p): return "no layer at path '\(p)'"
        case .notReplaceable(let p): return p.isEmpty ? "the root layer cannot be replaced" : "the layer at '\(p)' cannot be replaced"
        }
    }
}

extension Layer {
    public var children: [Child] { [] }

    public func parameters() -> [(name: String, parameter: Parameter)] { childParameters() }
    public func buffers() -> [(name: String, buffer: Buffer)] { childBuffers() }

    /// The children's parameters in `children` order, prefixed with each child's name.
    public func childParameters() -> [(name: String, parameter: Parameter)] {
        children.flatMap { c in c.layer.parameters().map { (name: joined(c.name, $0.name), parameter: $0.parameter) } }
    }

    /// The children's buffers in `children` order, prefixed with each child's name.
    public func childBuffers() -> [(name: String, buffer: Buffer)] {
        children.flatMap { c in c.layer.buffers().map { (name: joined(c.name, $0.name), buffer: $0.buffer) } }
    }

    public func zeroGrad() { for p in parameters() { p.parameter.zeroGrad() } }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.parameter.count } }

    /// Visits the layer and its descendants in pre-order (a layer before its children, children in
    /// `children` order) with their paths (the root's is ""; a merged child shares its parent's path).
    /// `visit` returns whether to descend into the visited layer's children.
    public func walk(_ visit: (_ path: String, _ layer: Layer) throws -> Bool) rethrows {
        func go(_ path: String, _ layer: Layer) throws {
            guard try visit(path, layer) else { return }
            for c in layer.children { try go(joined(path, c.name), c.layer) }
        }
        try go("", self)
    }

    /// Every layer of the tree with its path, in `walk` order (PyTorch's `named_modules()`, except that a
    /// merged child is listed too, after its parent, under the same path).
    public func modules() -> [(path: String, layer: Layer)] {
        var list: [(path: String, layer: Layer)] = []
        walk { path, layer in list.append((path, layer)); return true }
        return list
    }

    /// The outermost layer at `path` ("" is the layer itself), or nil.
    public func layer(at path: String) -> Layer? {
        var found: Layer?
        walk { p, l in
            if found != nil { return false }
            if p == path { found = l; return false }
            return path.hasPrefix(p) && (p.isEmpty || path.dropFirst(p.count).first == ".")
        }
        return found
    }

    /// Visits every layer below the root in `walk` order; where `transform` returns a layer, that layer
    /// takes the visited one's slot (forward then uses it) and the walk does not descend into it; nil keeps
    /// the visited layer and descends. Throws `LayerTreeError.notReplaceable` for a fixed slot.
    public func replaceLayers(_ transform: (_ path: String, _ layer: Layer) throws -> Layer?) throws {
        func go(_ path: String, _ layer: Layer) throws {
            for c in layer.children {
                let p = joined(path, c.name)
                if let new = try transform(p, c.layer) {
                    guard let replace = c.replace else { throw LayerTreeError.notReplaceable(path: p) }
                    replace(new)
                } else {
                    try go(p, c.layer)
                }
            }
        }
        try go("", self)
    }

    /// Puts `new` in the slot of the outermost layer at `path` and returns the layer it replaced.
    @discardableResult
    public func replaceLayer(at path: String, with new: Layer) throws -> Layer {
        if path.isEmpty { throw LayerTreeError.notReplaceable(path: path) }
        var old: Layer?
        try replaceLayers { p, l in
            guard old == nil, p == path else { return nil }
            old = l
            return new
        }
        guard let old else { throw LayerTreeError.noLayer(path: path) }
        return old
    }
}

extension Layer {
    /// A replaceable slot for the child stored at `keyPath` (`child("conv1", \.conv1)`).
    public func child(_ name: String, _ keyPath: ReferenceWritableKeyPath<Self, Layer>) -> Child {
        Child(name, self[keyPath: keyPath]) { self[keyPath: keyPath] = $0 }
    }
}

/// `prefix.name`, or `name` alone when the prefix is empty (a merged child or the root).
func joined(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : name.isEmpty ? prefix : prefix + "." + name
}

/// Prefixes a child's state names with `prefix.` (PyTorch module paths); an empty prefix leaves them.
public func prefixed(_ prefix: String, _ list: [(name: String, parameter: Parameter)]) -> [(name: String, parameter: Parameter)] {
    list.map { (joined(prefix, $0.name), $0.parameter) }
}

public func prefixed(_ prefix: String, _ list: [(name: String, buffer: Buffer)]) -> [(name: String, buffer: Buffer)] {
    list.map { (joined(prefix, $0.name), $0.buffer) }
}
