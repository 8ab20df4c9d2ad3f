import Foundation
import Kernels
import Tensors

/// Adam with coupled L2 weight decay, `torch.optim.Adam` 1.13 (`_single_tensor_adam`, amsgrad off):
///
///     t   += 1                                   (per parameter)
///     g    = grad + wd·p                         (coupled L2, not AdamW)
///     m    = β1·m + (1 − β1)·g                   (m.mul_(β1).add_(g, alpha: 1 − β1))
///     v    = β2·v + (1 − β2)·g·g                 (v.mul_(β2).addcmul_(g, g, value: 1 − β2))
///     bc1  = 1 − β1^t,  bc2 = 1 − β2^t           (Double)
///     denom = sqrt(v) / sqrt(bc2) + eps
///     p    = p − (lr / bc1) · m / denom          (p.addcdiv_(m, denom, value: −lr/bc1))
///
/// m and v start at zero. Double scalars (lr/bc1, sqrt(bc2), eps, β, 1 − β, wd) are computed as torch
/// computes them in Python and rounded to float32 at the kernel (`Kernels.adamStep`), in torch's
/// operation order. torch's vectorised `add(alpha:)` is a fused multiply-add, which the kernel is not
/// (see `SGD`), so results agree with torch to about an ulp per operation.
///
/// Uses: CIFAR QAT (reference §4.2): one Adam over the model weights (lr_m, weight decay) and one over the
/// quantizer parameters (lr_q, no weight decay), each with per-epoch cosine annealing.
public final class Adam: Optimizer {
    public var groups: [ParameterGroup]
    public let beta1: Double
    public let beta2: Double
    public let eps: Double

    private struct Slot {
        var step: Int
        let expAvg: Tensor
        let expAvgSq: Tensor
    }
    /// Per group and parameter; nil until the parameter's first step.
    private var slots: [[Slot?]]

    public init(groups: [ParameterGroup], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam betas must lie in [0, 1), got (\(beta1), \(beta2))")
        precondition(eps >= 0, "Adam eps must be non-negative, got \(eps)")
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.slots = groups.map { [Slot?](repeating: nil, count: $0.parameters.count) }
    }

    public func step() {
        precondition(slots.count == groups.count && zip(slots, groups).allSatisfy { $0.count == $1.parameters.count },
                     "Adam parameter groups changed after construction")
        let b1 = Float(beta1), b2 = Float(beta2)
        let oneMinusB1 = Float(1 - beta1), oneMinusB2 = Float(1 - beta2), epsF = Float(eps)
        for g in groups.indices {
            let group = groups[g]
            let wd = Float(group.weightDecay)
            for i in group.parameters.indices {
                let param = group.parameters[i].parameter
                if slots[g][i] == nil {
                    slots[g][i] = Slot(step: 0, expAvg: Tensor(shape: param.shape), expAvgSq: Tensor(shape: param.shape))
                }
                slots[g][i]!.step += 1
                let slot = slots[g][i]!
                let t = Double(slot.step)
                let bc1 = 1 - pow(beta1, t)
                let bc2 = 1 - pow(beta2, t)
                let negStepSize = Float(-(group.lr / bc1))
                let bc2Sqrt = Float(bc2.squareRoot())
                withUnsafeMutablePointers(param.value, slot.expAvg, slot.expAvgSq, param.grad) { p, m, v, g in
                    adamStep(p: p, m: m, v: v, grad: g,
                             count: param.count, negStepSize: negStepSize, bias2Sqrt: bc2Sqrt, eps: epsF,
                             beta1: b1, oneMinusBeta1: oneMinusB1, beta2: b2, oneMinusBeta2: oneMinusB2, weightDecay: wd)
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        var state = OptimizerState()
        for (g, group) in groups.enumerated() {
            state.scalars["group\(g).lr"] = "\(group.lr)"
            state.scalars["group\(g).weight_decay"] = "\(group.weightDecay)"
            for (i, slot) in slots[g].enumerated() {
                guard let slot else { continue }
                state.scalars["group\(g).param\(i).step"] = "\(slot.step)"
                state.tensors["group\(g).param\(i).exp_avg"] = slot.expAvg.copy()
                state.tensors["group\(g).param\(i).exp_avg_sq"] = slot.expAvgSq.copy()
            }
        }
        return state
    }

    public func importState(_ state: OptimizerState) throws {
        var reader = OptimizerStateReader(state)
        var newSlots: [[Slot?]] = []
        var hyper: [(lr: Double, wd: Double)] = []
        for (g, group) in groups.enumerated() {
            hyper.append((try reader.double("group\(g).lr"), try reader.double("group\(g).weight_decay")))
            var row: [Slot?] = []
            for (i, p) in group.parameters.enumerated() {
                let key = "group\(g).param\(i)"
                if let step = try reader.optionalInt(key + ".step") {
                    row.append(Slot(step: step,
                                    expAvg: try reader.tensor(key + ".exp_avg", shape: p.parameter.shape),
                                    expAvgSq: try reader.tensor(key + ".exp_avg_sq", shape: p.parameter.shape)))
                } else {
                    row.append(nil)
                }
            }
            newSlots.append(row)
        }
        try reader.rejectUnused()
        for g in groups.indices {
            groups[g].lr = hyper[g].lr
            groups[g].weightDecay = hyper[g].wd
        }
        slots = newSlots
    }
}
