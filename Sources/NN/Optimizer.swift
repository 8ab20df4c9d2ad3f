import Tensors

/// A set of parameters sharing a learning rate and a weight decay (PyTorch's `param_groups` entry).
/// Parameters carry their state-dict names for logs and parameter counts; optimizer state is keyed by
/// position (`group<g>.param<i>`), as in PyTorch's optimizer state dict.
public struct ParameterGroup {
    public var parameters: [(name: String, parameter: Parameter)]
    /// Learning rate, Double like PyTorch's Python float; the update kernels round it to float32.
    public var lr: Double
    /// Coupled L2 weight decay: grad += weightDecay · p before the update (torch SGD and Adam, not AdamW).
    public var weightDecay: Double

    public init(parameters: [(name: String, parameter: Parameter)], lr: Double, weightDecay: Double = 0) {
        self.parameters = parameters
        self.lr = lr
        self.weightDecay = weightDecay
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.parameter.count } }
}

/// Optimizer state as checkpointable data: float tensors (moment buffers) plus exact scalars as strings
/// (learning rates as Double round-trip text, step counts as integers), ready to be stored as the
/// tensors and `__metadata__` of a safetensors file.
///
/// Keys: `group<g>.lr`, `group<g>.weight_decay` (scalars); per parameter `group<g>.param<i>.<field>` with
/// PyTorch's field names (`momentum_buffer`; `step`, `exp_avg`, `exp_avg_sq`). A parameter that has not
/// been stepped yet has no per-parameter entries, as in PyTorch.
public struct OptimizerState: Equatable {
    public var tensors: [String: Tensor]
    public var scalars: [String: String]

    public init(tensors: [String: Tensor] = [:], scalars: [String: String] = [:]) {
        self.tensors = tensors
        self.scalars = scalars
    }

    /// Equal keys, shapes and bit-identical values.
    public static func == (a: OptimizerState, b: OptimizerState) -> Bool {
        guard a.scalars == b.scalars, a.tensors.keys.sorted() == b.tensors.keys.sorted() else { return false }
        for (k, x) in a.tensors {
            let y = b.tensors[k]!
            guard x.shape == y.shape, x.count == y.count else { return false }
            guard x.array.map(\.bitPattern) == y.array.map(\.bitPattern) else { return false }
        }
        return true
    }
}

/// A checkpoint's optimizer state does not fit this optimizer; the message names the offending key.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// A first-order optimizer over parameter groups, with PyTorch update semantics.
///
/// `step()` reads each parameter's accumulated `grad` and updates `value` in place; `zeroGrad()` clears
/// the gradients. `exportState()`/`importState(_:)` round-trip everything that affects later steps,
/// so a resumed run is bit-identical to an uninterrupted one.
public protocol Optimizer: AnyObject {
    var groups: [ParameterGroup] { get set }
    func step()
    func exportState() -> OptimizerState
    /// Replaces the state. Validates every key first (unknown keys, missing or mis-shaped buffers, bad
    /// scalars are errors) and changes nothing when it throws.
    func importState(_ state: OptimizerState) throws
}

extension Optimizer {
    public func zeroGrad() {
        for g in groups { for p in g.parameters { p.parameter.zeroGrad() } }
    }

    /// Sets every group's learning rate (the schedules drive all groups of one optimizer alike).
    public func setLearningRate(_ lr: Double) {
        for g in groups.indices { groups[g].lr = lr }
    }
}

// MARK: Helpers shared by the optimizers

/// Reads and validates the scalars and tensors of an `OptimizerState` for `importState`.
struct OptimizerStateReader {
    let state: OptimizerState
    private(set) var usedTensors = Set<String>()
    private(set) var usedScalars = Set<String>()

    init(_ state: OptimizerState) { self.state = state }

    mutating func double(_ key: String) throws -> Double {
        guard let text = state.scalars[key] else { throw OptimizerStateError(message: "optimizer state lacks \(key)") }
        guard let v = Double(text), v.isFinite else {
            throw OptimizerStateError(message: "optimizer state \(key) = '\(text)' is not a finite number")
        }
        usedScalars.insert(key)
        return v
    }

    mutating func optionalInt(_ key: String) throws -> Int? {
        guard let text = state.scalars[key] else { return nil }
        guard let v = Int(text), v >= 0 else {
            throw OptimizerStateError(message: "optimizer state \(key) = '\(text)' is not a non-negative integer")
        }
        usedScalars.insert(key)
        return v
    }

    mutating func optionalTensor(_ key: String, shape: [Int]) throws -> Tensor? {
        guard let t = state.tensors[key] else { return nil }
        guard t.shape == shape else {
            throw OptimizerStateError(message: "optimizer state \(key) has shape \(t.shape), parameter has \(shape)")
        }
        usedTensors.insert(key)
        return t.layout == .plain ? t.copy() : t.toLayout(.plain)
    }

    mutating func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        guard let t = try optionalTensor(key, shape: shape) else {
            throw OptimizerStateError(message: "optimizer state lacks \(key)")
        }
        return t
    }

    /// Throws on the alphabetically first key that no parameter claimed.
    func rejectUnused() throws {
        if let k = state.tensors.keys.filter({ !usedTensors.contains($0) }).sorted().first {
            throw OptimizerStateError(message: "optimizer state has unexpected tensor \(k)")
        }
        if let k = state.scalars.keys.filter({ !usedScalars.contains($0) }).sorted().first {
            throw OptimizerStateError(message: "optimizer state has unexpected scalar \(k)")
        }
    }
}
