import Distillation
import NN
import Tensors

/// One optimisation step of a run, the same for `sqakd train` and `sqakd bench` (which times exactly this):
///
///     zero every optimizer's gradients
///     z_s = student(x) (train mode)          z_t = teacher(x) (eval mode, only when an objective reads it)
///     L, dL/dz_s = objective(z_s, z_t, y)    (the authors' γ·CE + α·KL_T + β·L_kd, `TrainConfig.objective`)
///     student.backward(dL/dz_s); every optimizer steps
///
/// A non-finite loss stops the step before backward, so a diverged batch leaves the weights as they were.
final class TrainingStep {
    let setup: TrainingSetup
    let objective: LossMix

    struct Result {
        var loss: Double
        /// Rows whose student arg-max is right: against the labels when the objective reads them, else
        /// against the teacher's arg-max (a label-free run keeps labels out of its record too).
        var correct: Int
        /// False when the loss was not finite and nothing was updated.
        var stepped: Bool
    }

    init(setup: TrainingSetup, objective: LossMix) throws {
        guard objective.featurePaths.isEmpty else {
            throw ConfigError("objectives reading intermediate features are not wired into the training step yet")
        }
        guard !objective.usesTeacher || setup.teacher != nil else {
            throw ConfigError("the objective needs a teacher; set teacher")
        }
        self.setup = setup
        self.objective = objective
    }

    func callAsFunction(_ images: Tensor, labels: [Int32]) -> Result {
        setup.zeroGrad()
        let logits = setup.student.forward(images, mode: .train)
        let teacher = objective.usesTeacher ? setup.teacher.map { NetworkOutputs(logits: $0.forward(images, mode: .eval)) } : nil
        let value = objective.evaluate(student: NetworkOutputs(logits: logits), teacher: teacher, labels: labels)
        let correct = objective.usesLabels || teacher == nil
            ? topKCorrect(logits, labels: labels, k: 1) : agreement(logits, teacher!.logits)
        guard value.loss.isFinite else { return Result(loss: value.loss, correct: correct, stepped: false) }
        _ = setup.student.backward(value.dLogits ?? Tensor.zeros(like: logits))
        setup.step()
        return Result(loss: value.loss, correct: correct, stepped: true)
    }
}

extension TrainConfig {
    /// The objective a run optimises, as the authors' mix `γ·CE + α·KL_T + β·L_kd` (train_quant.py:415-422):
    /// `distill: none` is the QAT/FP baseline, γ = 1 (cross-entropy with `label_smoothing`), α = β = 0;
    /// `distill: sqakd` is γ = 0, α = `alpha`, β = 0: α·T²·KL(teacher ‖ student) at `temperature`, no label.
    public var objective: LossMix {
        let ce = CrossEntropyObjective(labelSmoothing: labelSmoothing)
        let kl = SoftTargetObjective(temperature: temperature)
        switch distill {
        case .none: return .authors(gamma: 1, crossEntropy: ce, alpha: 0, softTarget: kl)
        case .sqakd: return .authors(gamma: 0, crossEntropy: ce, alpha: alpha, softTarget: kl)
        }
    }
}

/// Rows where the student's arg-max equals the teacher's (ties to the lowest index).
func agreement(_ student: Tensor, _ teacher: Tensor) -> Int {
    let n = student.shape[0], c = student.shape[1]
    var agree = 0
    withUnsafeMutablePointers(student, teacher) { zs, zt in
        for r in 0..<n {
            var bs = 0, bt = 0
            for j in 1..<c {
                if zs[r * c + j] > zs[r * c + bs] { bs = j }
                if zt[r * c + j] > zt[r * c + bt] { bt = j }
            }
            if bs == bt { agree += 1 }
        }
    }
    return agree
}
