import Tensors

/// A layer whose multiply-accumulates a model's MAC count includes: convolutions and linear layers,
/// plain or quantized. Batch-norm, activations, pooling, residual additions and parameter-free shortcuts
/// are not counted.
public protocol MACCounting: Layer {
    /// Multiply-accumulates of one forward on an input of shape `inputShape`, and the output's shape.
    func macs(inputShape: [Int]) -> (macs: Int, outputShape: [Int])
}

/// Stands in for a `MACCounting` layer during `Layer.macs(inputShape:)`: records the MACs of its input
/// and returns zeros of the output's shape without running the layer (so nothing calibrates or allocates
/// the layer's saved state).
final class MACProbe: Layer {
    let counted: MACCounting
    var total = 0

    init(_ counted: MACCounting) { self.counted = counted }

    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let (macs, shape) = counted.macs(inputShape: x.shape)
        total += macs
        return Tensor(shape: shape)
    }

    func backward(_ dy: Tensor) -> Tensor { preconditionFailure("MACProbe has no backward") }
}

extension Layer {
    /// Multiply-accumulates of one forward pass on an input of shape `inputShape`, traced from the tree:
    /// every `MACCounting` layer is swapped for a probe, an `.eval` forward of zeros runs through the
    /// layer (the other layers compute on zeros; no running statistics change), and the layers are put back.
    /// Counted: convolutions (K²·C_in/groups·C_out·H_out·W_out per image) and linear layers (in·out).
    public func macs(inputShape: [Int]) -> Int {
        if let counted = self as? MACCounting { return counted.macs(inputShape: inputShape).macs }
        var probes: [MACProbe] = []
        // Probes only ever sit in slots that accepted them, so putting the layers back cannot throw.
        defer { try? replaceLayers { _, layer in (layer as? MACProbe)?.counted } }
        do {
            try replaceLayers { _, layer in
                guard let counted = layer as? MACCounting else { return nil }
                probes.append(MACProbe(counted))
                return probes.last
            }
        } catch {
            preconditionFailure("macs(inputShape:): \(error) (every conv and linear must sit in a replaceable slot)")
        }
        _ = forward(Tensor(shape: inputShape), mode: .eval)
        return probes.reduce(0) { $0 + $1.total }
    }
}

extension Conv2d: MACCounting {
    /// x [N, C, H, W] → K²·C/groups·K_out·P·Q per image, y [N, K_out, P, Q].
    public func macs(inputShape: [Int]) -> (macs: Int, outputShape: [Int]) {
        precondition(inputShape.count == 4 && inputShape[1] == inputChannels,
                     "Conv2d(\(inputChannels)→\(outputChannels)) expects [N, \(inputChannels), H, W], got \(inputShape)")
        let g = geometry(batch: inputShape[0], inputHeight: inputShape[2], inputWidth: inputShape[3])
        precondition(g.problem == nil, "Conv2d: \(g.problem ?? "")")
        return (g.macs, g.outputShape)
    }
}

extension Linear: MACCounting {
    /// x [N, in] → in·out per row, y [N, out].
    public func macs(inputShape: [Int]) -> (macs: Int, outputShape: [Int]) {
        precondition(inputShape.count == 2 && inputShape[1] == inputFeatures,
                     "Linear(\(inputFeatures)→\(outputFeatures)) expects [N, \(inputFeatures)], got \(inputShape)")
        return (inputShape[0] * inputFeatures * outputFeatures, [inputShape[0], outputFeatures])
    }
}
