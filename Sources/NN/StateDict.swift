import Tensors

/// Why `load(stateDict:strict:)` refused a state dict. Nothing is copied when it throws.
public enum StateDictError: Error, Equatable, CustomStringConvertible {
    /// The model has a tensor the state dict lacks (strict loading only).
    case missingKey(String)
    /// The state dict has a tensor the model lacks (strict loading only).
    case unexpectedKey(String)
    /// Same name, different shape (checked whether strict or not, as in PyTorch). A 0-d tensor and a
    /// one-element 1-D tensor count as the same shape: PyTorch stores `num_batches_tracked` 0-d.
    case shapeMismatch(key: String, checkpoint: [Int], model: [Int])

    public var description: String {
        switch self {
        case .missingKey(let k): return "missing key \(k)"
        case .unexpectedKey(let k): return "unexpected key \(k)"
        case .shapeMismatch(let k, let c, let m): return "shape mismatch for \(k): checkpoint \(c) vs model \(m)"
        }
    }
}

extension Layer {
    /// The layer's state as PyTorch's `state_dict()` would name it: every parameter (in `parameters()`
    /// order), then every buffer (in `buffers()` order). Tensors are the live ones, not copies.
    /// `isInteger` marks int64 buffers on the PyTorch side (`num_batches_tracked`).
    public func namedTensors() -> [(name: String, tensor: Tensor, isInteger: Bool)] {
        parameters().map { (name: $0.name, tensor: $0.parameter.value, isInteger: false) }
            + buffers().map { (name: $0.name, tensor: $0.buffer.value, isInteger: $0.buffer.isInteger) }
    }

    /// A copy of the state, keyed by full name.
    public func stateDict() -> [String: Tensor] {
        var d = [String: Tensor]()
        for e in namedTensors() { d[e.name] = e.tensor.copy() }
        return d
    }

    /// Copies `stateDict` into the layer's parameters and buffers by name (values are copied into the
    /// existing tensors, converting layout where a 4-D checkpoint tensor is stored differently).
    ///
    /// Every key is validated before anything is copied, so a failed load leaves the layer untouched.
    /// Errors, first found wins, in model order: a shape mismatch or (if `strict`) a missing key; then
    /// (if `strict`) the alphabetically first unexpected key. Non-strict loading skips missing and
    /// unexpected keys but still rejects shape mismatches.
    public func load(stateDict: [String: Tensor], strict: Bool = true) throws {
        let entries = namedTensors()
        var names = Set<String>()
        for e in entries {
            let inserted = names.insert(e.name).inserted
            precondition(inserted, "layer lists the state name \(e.name) twice")
            guard let src = stateDict[e.name] else {
                if strict { throw StateDictError.missingKey(e.name) }
                continue
            }
            guard src.shape == e.tensor.shape || (isScalar(src.shape) && isScalar(e.tensor.shape)) else {
                throw StateDictError.shapeMismatch(key: e.name, checkpoint: src.shape, model: e.tensor.shape)
            }
        }
        if strict, let extra = stateDict.keys.filter({ !names.contains($0) }).sorted().first {
            throw StateDictError.unexpectedKey(extra)
        }
        for e in entries {
            guard let src = stateDict[e.name] else { continue }
            let s = src.layout == e.tensor.layout ? src : src.toLayout(e.tensor.layout)
            if s !== e.tensor { e.tensor.copyElements(from: s) }
        }
    }
}

/// [] or [1]: one value.
private func isScalar(_ shape: [Int]) -> Bool { shape.isEmpty || shape == [1] }
