import Kernels
import Tensors

/// Batch normalisation over the channels of [N, C, H, W] (`torch.nn.BatchNorm2d`), any layout; the
/// output (and dx) keep the input's layout.
///
/// Train: y = γ·(x − μ_B)/√(σ²_B + ε) + β with the batch mean μ_B and *biased* batch variance σ²_B over
/// (N, H, W); then running_mean ← (1 − m)·running_mean + m·μ_B, running_var ← (1 − m)·running_var +
/// m·σ²_B·M/(M − 1) (M = N·H·W), num_batches_tracked += 1. Eval: the running statistics replace the batch
/// ones. Backward after a training forward: dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)); after an eval
/// forward: dx = (γ/σ_running)·dy. Both accumulate dγ += Σ dy·x̂ and dβ += Σ dy.
/// Statistics are computed in double, as PyTorch's CPU kernels do.
public final class BatchNorm2d: Layer {
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

    /// x: [N, C, H, W] in any layout → y: same shape and layout.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[1] == features,
                     "BatchNorm2d(\(features)) expects [N, \(features), H, W], got \(x.shape)")
        return core.forward(x, N: x.shape[0], HW: x.shape[2] * x.shape[3], b: x.layout.block, mode: mode)
    }

    /// dy: [N, C, H, W] (any layout) → dx in the forward input's layout.
    public func backward(_ dy: Tensor) -> Tensor { core.backward(dy) }

    public func parameters() -> [(name: String, parameter: Parameter)] { core.parameters() }
    public func buffers() -> [(name: String, buffer: Buffer)] { core.buffers() }
}

/// The state and maths shared by BatchNorm1d and BatchNorm2d. The input is viewed as [N, C/b, HW, b].
final class BatchNormCore {
    let features: Int
    let momentum: Double
    let eps: Double
    let weight: Parameter
    let bias: Parameter
    let runningMean: Buffer
    let runningVar: Buffer
    let numBatchesTracked: Buffer

    private var savedInput: Tensor?
    private var savedN = 0, savedHW = 0, savedBlock = 1
    /// μ used by the forward (batch or running), per channel.
    private var savedMean: [Float] = []
    /// 1/√(σ² + ε) used by the forward, per channel.
    private var savedInvStd: [Double] = []
    private var savedTrain = false

    init(features: Int, momentum: Double, eps: Double) {
        precondition(features > 0, "BatchNorm needs at least one feature, got \(features)")
        self.features = features
        self.momentum = momentum
        self.eps = eps
        weight = Parameter(Tensor(shape: [features], values: Array(repeating: 1, count: features)))
        bias = Parameter(Tensor(shape: [features]))
        runningMean = Buffer(Tensor(shape: [features]))
        runningVar = Buffer(Tensor(shape: [features], values: Array(repeating: 1, count: features)))
        numBatchesTracked = Buffer(Tensor(shape: []), isInteger: true)  // 0-d, as PyTorch stores it
    }

    func parameters() -> [(name: String, parameter: Parameter)] { [("weight", weight), ("bias", bias)] }

    func buffers() -> [(name: String, buffer: Buffer)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", numBatchesTracked)]
    }

    func forward(_ x: Tensor, N: Int, HW: Int, b: Int, mode: Mode) -> Tensor {
        let C = features
        var mean = [Double](repeating: 0, count: C)
        var invStd = [Double](repeating: 0, count: C)
        withUnsafeMutablePointers(runningMean.value, runningVar.value) { rm, rv in
            switch mode {
            case .train:
                var variance = [Double](repeating: 0, count: C)
                mean.withUnsafeMutableBufferPointer { m in
                    variance.withUnsafeMutableBufferPointer { v in
                        x.withUnsafeMutablePointer { x in
                            batchNormStatistics(mean: m.baseAddress!, variance: v.baseAddress!, x: x, N: N, C: C, HW: HW, b: b)
                        }
                    }
                }
                let M = Double(N * HW)
                // PyTorch raises for M = 1; here the running variance then takes the biased estimate (0).
                let unbiased = M > 1 ? M / (M - 1) : 1
                for c in 0..<C {
                    invStd[c] = 1 / (variance[c] + eps).squareRoot()
                    rm[c] = Float(momentum * mean[c] + (1 - momentum) * Double(rm[c]))
                    rv[c] = Float(momentum * variance[c] * unbiased + (1 - momentum) * Double(rv[c]))
                }
                numBatchesTracked.value[0] += 1
            case .eval:
                for c in 0..<C {
                    mean[c] = Double(rm[c])
                    invStd[c] = 1 / (Double(rv[c]) + eps).squareRoot()
                }
            }
        }
        var scale = [Float](repeating: 0, count: C), shift = [Float](repeating: 0, count: C)
        withUnsafeMutablePointers(weight.value, bias.value) { gamma, beta in
            for c in 0..<C {
                let alpha = Double(gamma[c]) * invStd[c]
                scale[c] = Float(alpha)
                shift[c] = Float(Double(beta[c]) - mean[c] * alpha)
            }
        }
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { y, x in
            batchNormApply(y: y, x: x, scale: scale, shift: shift, N: N, C: C, HW: HW, b: b)
        }
        savedInput = x
        savedN = N; savedHW = HW; savedBlock = b
        savedMean = mean.map { Float($0) }
        savedInvStd = invStd
        savedTrain = mode == .train
        return y
    }

    func backward(_ dyAny: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("BatchNorm backward called before forward") }
        precondition(dyAny.shape == x.shape, "BatchNorm backward: dy \(dyAny.shape) vs x \(x.shape)")
        let dy = dyAny.toLayout(x.layout)
        let C = features, N = savedN, HW = savedHW, b = savedBlock
        var sumDy = [Double](repeating: 0, count: C), sumDyXmu = [Double](repeating: 0, count: C)
        sumDy.withUnsafeMutableBufferPointer { s0 in
            sumDyXmu.withUnsafeMutableBufferPointer { s1 in
                withUnsafeMutablePointers(dy, x) { dy, x in
                    batchNormBackwardReduce(sumDy: s0.baseAddress!, sumDyXmu: s1.baseAddress!, dy: dy, x: x,
                                            mean: savedMean, N: N, C: C, HW: HW, b: b)
                }
            }
        }
        let M = Double(N * HW)
        var dyScale = [Float](repeating: 0, count: C)
        var xScale = [Float](repeating: 0, count: C)
        var shift = [Float](repeating: 0, count: C)
        withUnsafeMutablePointers(weight.value, weight.grad, bias.grad) { gamma, dgamma, dbeta in
            for c in 0..<C {
                let s = savedInvStd[c]
                dgamma[c] += Float(sumDyXmu[c] * s)
                dbeta[c] += Float(sumDy[c])
                let a = Double(gamma[c]) * s
                dyScale[c] = Float(a)
                if savedTrain {
                    let k = -a * s * s * sumDyXmu[c] / M
                    xScale[c] = Float(k)
                    shift[c] = Float(-a * sumDy[c] / M - k * Double(savedMean[c]))
                }
            }
        }
        let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(dx, dy, x) { dx, dy, x in
            if savedTrain {
                batchNormBackwardInput(dx: dx, dy: dy, x: x, dyScale: dyScale, xScale: xScale, shift: shift,
                                       N: N, C: C, HW: HW, b: b)
            } else {
                batchNormApply(y: dx, x: dy, scale: dyScale, shift: shift, N: N, C: C, HW: HW, b: b)
            }
        }
        return dx
    }
}
