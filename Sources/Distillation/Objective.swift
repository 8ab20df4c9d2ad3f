import NN
import Tensors

/// What one forward pass of a network gives an objective: the logits of a batch and the activations tapped
/// on the way, by module path (`layer1`, `layer3.2`, ...; see the model's feature paths).
public struct NetworkOutputs {
    /// [B, classes], plain.
    public var logits: Tensor
    /// Tap path → activation (shapes as the tapped layer produces them).
    public var features: [String: Tensor]

    public init(logits: Tensor, features: [String: Tensor] = [:]) {
        self.logits = logits
        self.features = features
    }
}

/// An objective's value on one batch and the gradients to feed back into the student.
public struct ObjectiveValue {
    public var loss: Double
    /// dL/dlogits [B, classes]; nil when the objective does not read the logits.
    public var dLogits: Tensor?
    /// dL/dfeature per tap path of the student.
    public var dFeatures: [String: Tensor]

    public init(loss: Double, dLogits: Tensor?, dFeatures: [String: Tensor] = [:]) {
        self.loss = loss
        self.dLogits = dLogits
        self.dFeatures = dFeatures
    }
}

/// A training objective (RepDistiller's `distiller_zoo`: one file per loss): given the student's outputs
/// (and the frozen teacher's, and the labels) for a batch, the loss and its gradients with respect to what
/// the student produced. The training step sums objectives with weights (`LossMix`) and knows nothing of
/// any one method.
public protocol Objective {
    /// Short name for logs and records (`ce`, `kl`, ...).
    var name: String { get }
    /// Whether it reads the labels (false for every distillation term: SQAKD is label-free).
    var usesLabels: Bool { get }
    /// Whether it needs the teacher's outputs.
    var usesTeacher: Bool { get }
    /// Student (and teacher) tap paths it reads; empty for logit-only objectives.
    var featurePaths: [String] { get }
    /// `teacher` is non-nil exactly when `usesTeacher`; `labels` has one entry per row of the batch.
    func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue
}

extension Objective {
    public var featurePaths: [String] { [] }
}
