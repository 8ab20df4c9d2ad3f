import NN
import Tensors

/// The supervised term: mean cross-entropy of the student's logits against the labels, with optional label
/// smoothing (`CrossEntropyLoss`; reference §4.1–§4.3: ε = 0 on CIFAR, 0.1 on Tiny-ImageNet baselines).
public struct CrossEntropyObjective: Objective {
    public let loss: CrossEntropyLoss

    public init(labelSmoothing: Double = 0) { loss = CrossEntropyLoss(labelSmoothing: labelSmoothing) }

    public var name: String { "ce" }
    public var usesLabels: Bool { true }
    public var usesTeacher: Bool { false }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        let (l, d) = loss(student.logits, labels: labels)
        return ObjectiveValue(loss: l, dLogits: d)
    }
}
