import NN
import Tensors

/// Hinton's soft-target term, the whole of SQAKD up to α: KL_T(teacher ‖ student) on the logits at
/// temperature T, times T² (`KLDivergenceLoss`; the reference's `DistillKL`, `CIFAR/distiller_zoo/KD.py:13-17`,
/// reference §4.2). Reads no label.
public struct SoftTargetObjective: Objective {
    public let loss: KLDivergenceLoss

    public init(temperature: Double) { loss = KLDivergenceLoss(temperature: temperature) }

    public var name: String { "kl" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("the soft-target objective needs the teacher's logits") }
        let (l, d) = loss(student: student.logits, teacher: teacher.logits)
        return ObjectiveValue(loss: l, dLogits: d)
    }
}
