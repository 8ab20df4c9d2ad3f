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

/// Which training samples a batch holds: their indices into the training set (`Batch.indices`) and the
/// epoch. Objectives with per-sample state read them (CRD's memory banks and its negatives, drawn per
/// (epoch, sample) so that they do not depend on the batch, the thread count or an interruption).
public struct BatchSamples: Sendable, Equatable {
    /// [B], in 0..<training-set size, distinct.
    public var indices: [Int]
    public var epoch: Int

    public init(indices: [Int], epoch: Int) {
        self.indices = indices
        self.epoch = epoch
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
    /// Student tap paths it reads; empty for logit-only objectives.
    var featurePaths: [String] { get }
    /// Teacher tap paths it reads (default: `featurePaths`; they differ when the teacher is another
    /// architecture).
    var teacherFeaturePaths: [String] { get }
    /// The objective's own trainable modules (FitNet's regressor, VID's regressors, CC's embeddings), as one
    /// module tree whose state names are the authors' (`module_list.1.conv.weight`; see each objective), or
    /// nil. The authors append their parameters to the model optimizer's list (`utils_distill.py:44-113`),
    /// so they train with the model's learning rate, schedule and weight decay; the training step feeds
    /// them gradients (`evaluate` accumulates into their `grad`) and the optimizer steps them. Their state
    /// is part of a run's training state (resume), not of its model checkpoints (the authors save
    /// `model.state_dict()` only, `train_quant.py:493-513`).
    var module: Layer? { get }
    /// The part of `module` the model optimizer trains (default: all of it). FT's Paraphraser is in `module`
    /// (saved and restored with the run) but frozen after the initialisation stage, so not in here.
    var trainableModule: Layer? { get }
    /// `teacher` is non-nil exactly when `usesTeacher`; `labels` has one entry per row of the batch.
    /// Gradients for `module`'s parameters accumulate into their `grad`.
    func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue
    /// Whether `evaluate(…, samples:)` needs the batch's sample indices (CRD, CKTF).
    var usesSamples: Bool { get }
    /// `evaluate` for objectives that read which samples the batch holds; the others ignore `samples`
    /// (default). The training step calls this one.
    func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32], samples: BatchSamples?) -> ObjectiveValue
}

extension Objective {
    public var featurePaths: [String] { [] }
    public var teacherFeaturePaths: [String] { featurePaths }
    public var module: Layer? { nil }
    public var trainableModule: Layer? { module }

    public var usesSamples: Bool { false }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32], samples: BatchSamples?) -> ObjectiveValue {
        evaluate(student: student, teacher: teacher, labels: labels)
    }
}
