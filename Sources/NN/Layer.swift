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

/// A differentiable module with a hand-written backward.
///
/// - `forward(x, mode:)` in `.train` mode saves what `backward` needs (in `saved…` properties).
/// - `backward(dy)` consumes the saved state of the last training forward, *accumulates* the gradients of
///   the layer's parameters and returns dL/dx.
/// - `parameters()` / `buffers()` list the layer's state with PyTorch state-dict names relative to the
///   layer (`weight`, `bias`, `running_mean`, ...; composites prefix their children: `layer1.0.conv1.weight`).
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, mode: Mode) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    func parameters() -> [(name: String, parameter: Parameter)]
    func buffers() -> [(name: String, buffer: Buffer)]
}

extension Layer {
    public func parameters() -> [(name: String, parameter: Parameter)] { [] }
    public func buffers() -> [(name: String, buffer: Buffer)] { [] }

    public func zeroGrad() { for p in parameters() { p.parameter.zeroGrad() } }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.parameter.count } }
}

/// Prefixes a child's state names with `prefix.` (PyTorch module paths).
public func prefixed(_ prefix: String, _ list: [(name: String, parameter: Parameter)]) -> [(name: String, parameter: Parameter)] {
    list.map { (prefix + "." + $0.name, $0.parameter) }
}

public func prefixed(_ prefix: String, _ list: [(name: String, buffer: Buffer)]) -> [(name: String, buffer: Buffer)] {
    list.map { (prefix + "." + $0.name, $0.buffer) }
}
