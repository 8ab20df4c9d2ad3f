import Kernels
import Tensors

/// Batch normalisation over the features of [N, C] or [N, C, L] plain input (`torch.nn.BatchNorm1d`).
/// Same formulas, buffers and state-dict names as `BatchNorm2d` (statistics over N, and L when present);
/// it shares BatchNorm2d's kernels by viewing the input as plain [N, C, L, 1].
public final class BatchNorm1d: Layer {
    let core: BatchNormCore

    public var features: Int { core.features }
    public var momentum: Double { core.momentum }
    public var eps: Double { core.eps }
    public var weight: Parameter { core.weight }
    public var bias: Parameter { core.bias }
    public var runningMean: Buffer { core.runningMean }
    public var runningVar: Buffer { core.runningVar }
    public var numBatchesTracked: Buffer { core.numBatchesTracked }

    public init(features: Int, momentum: Double = 0.1, eps: Double = 1e-5) {
        core = BatchNormCore(features: features, momentum: momentum, eps: eps)
    }

    /// x: [N, C] or [N, C, L], plain → y: same shape.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition((x.shape.count == 2 || x.shape.count == 3) && x.shape[1] == features && x.layout == .plain,
                     "BatchNorm1d(\(features)) expects plain [N, \(features)] or [N, \(features), L], got \(x.shape) \(x.layout)")
        let L = x.shape.count == 3 ? x.shape[2] : 1
        return core.forward(x, N: x.shape[0], HW: L, b: 1, mode: mode)
    }

    /// dy: the output's shape → dx: the input's shape.
    public func backward(_ dy: Tensor) -> Tensor { core.backward(dy) }

    public func parameters() -> [(name: String, parameter: Parameter)] { core.parameters() }
    public func buffers() -> [(name: String, buffer: Buffer)] { core.buffers() }
}
