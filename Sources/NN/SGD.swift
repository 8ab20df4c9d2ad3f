import Kernels
import Tensors

/// Stochastic gradient descent with momentum, `torch.optim.SGD` semantics (dampening 0):
///
///     g   = grad + wd·p                       (coupled weight decay)
///     buf = g                 on the first step
///     buf = momentum·buf + g  afterwards
///     g   = g + momentum·buf  (Nesterov)   or   g = buf
///     p   = p − lr·g
///
/// momentum 0 skips the buffer (plain SGD). Scalars lr, wd and momentum are rounded to float32 as torch
/// does when it passes them to its kernels. The update is `Kernels.sgdStep`; torch's vectorised
/// `add(alpha:)` fuses a + α·b into one FMA and the kernel does not, so values agree with torch to about
/// one float32 ulp per operation rather than bit for bit (≤ 2 ulp over 5 steps in OptimizerTests).
///
/// Uses: CIFAR FP teachers (lr 0.1, momentum 0.9, wd 1e-4, reference §4.1); Tiny-ImageNet (Nesterov,
/// momentum 0.9, all parameters including quantizer scales, §4.3).
public final class SGD: Optimizer {
    public var groups: [ParameterGroup]
    public let momentum: Double
    public let nesterov: Bool
    /// Momentum buffers, per group and parameter; nil until the parameter's first step.
    private var buffers: [[Tensor?]]

    public init(groups: [ParameterGroup], momentum: Double = 0, nesterov: Bool = false) {
        precondition(momentum >= 0, "momentum must be non-negative, got \(momentum)")
        precondition(!nesterov || momentum > 0, "Nesterov momentum requires momentum > 0")
        self.groups = groups
        self.momentum = momentum
        self.nesterov = nesterov
        self.buffers = groups.map { [Tensor?](repeating: nil, count: $0.parameters.count) }
    }

    public func step() {
        precondition(buffers.count == groups.count && zip(buffers, groups).allSatisfy { $0.count == $1.parameters.count },
                     "SGD parameter groups changed after construction")
        for g in groups.indices {
            let group = groups[g]
            for i in group.parameters.indices {
                let param = group.parameters[i].parameter
                var mode = SGDMomentumMode.none
                if momentum != 0 {
                    mode = buffers[g][i] == nil ? .initialize : .update
                    if buffers[g][i] == nil { buffers[g][i] = Tensor(shape: param.shape, zeroed: false) }
                }
                let buf = buffers[g][i]
                withOptionalUnsafeMutablePointer(buf) { b in
                    withUnsafeMutablePointers(param.value, param.grad) { p, g in
                        sgdStep(p: p, buf: b, grad: g, count: param.count,
                                lr: Float(group.lr), weightDecay: Float(group.weightDecay), momentum: Float(momentum),
                                nesterov: nesterov, mode: mode)
                    }
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        var state = OptimizerState()
        for (g, group) in groups.enumerated() {
            state.scalars["group\(g).lr"] = "\(group.lr)"
            state.scalars["group\(g).weight_decay"] = "\(group.weightDecay)"
            for (i, buf) in buffers[g].enumerated() {
                if let buf { state.tensors["group\(g).param\(i).momentum_buffer"] = buf.copy() }
            }
        }
        return state
    }

    public func importState(_ state: OptimizerState) throws {
        var reader = OptimizerStateReader(state)
        var newBuffers: [[Tensor?]] = []
        var hyper: [(lr: Double, wd: Double)] = []
        for (g, group) in groups.enumerated() {
            hyper.append((try reader.double("group\(g).lr"), try reader.double("group\(g).weight_decay")))
            var row: [Tensor?] = []
            for (i, p) in group.parameters.enumerated() {
                row.append(try reader.optionalTensor("group\(g).param\(i).momentum_buffer", shape: p.parameter.shape))
            }
            newBuffers.append(row)
        }
        try reader.rejectUnused()
        for g in groups.indices {
            groups[g].lr = hyper[g].lr
            groups[g].weightDecay = hyper[g].wd
        }
        buffers = newBuffers
    }
}
