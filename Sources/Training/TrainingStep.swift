import Distillation
import NN
import Tensors

/// One optimisation step of a run, the same for `sqakd train` and `sqakd bench` (which times exactly this):
///
///     zero every optimizer's gradients
///     z_s = student(x) (train mode)          z_t = teacher(x) (eval mode, only when an objective reads it)
///     L, dL/dz_s = objective(z_s, z_t, y)    (the authors' γ·CE + α·KL_T + β·L_kd, `TrainingSetup.objective`)
///     student.backward(dL/dz_s); every optimizer steps
///
/// Objectives that read intermediate features name module paths (`LossMix.featurePaths`,
/// `teacherFeaturePaths`): the step taps the student and the teacher there (`Tap`), hands the tapped
/// activations to the objective and feeds its dL/dfeature back into the student's backward at the same
/// places. The objective's own parameters (`LossMix.module`) get their gradients inside `evaluate` and are
/// stepped by the model optimizer (`TrainingSetup`).
/// A non-finite loss or teacher output stops the step before backward, so a diverged batch leaves the
/// weights as they were.
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
        /// Why it did not step, when the loss alone does not say it (a non-finite teacher output).
        var cause: String? = nil
    }

    /// Student and teacher taps at the objective's feature paths (module paths), in `featurePaths` order.
    private let studentTaps: [(path: String, tap: Tap)]
    private let teacherTaps: [(path: String, tap: Tap)]

    init(setup: TrainingSetup, objective: LossMix) throws {
        guard !objective.usesTeacher || setup.teacher != nil else {
            throw ConfigError("the objective needs a teacher; set teacher")
        }
        self.setup = setup
        self.objective = objective
        let paths = objective.featurePaths, teacherPaths = objective.teacherFeaturePaths
        do {
            studentTaps = try Array(zip(paths, setup.student.tap(paths)))
            teacherTaps = try objective.usesTeacher ? Array(zip(teacherPaths, setup.teacher!.tap(teacherPaths))) : []
        } catch {
            throw ConfigError("the objective reads features the model does not have: \(error)")
        }
    }

    /// `samples`: the batch's training-set indices and epoch, for objectives that read them (crd, cktf).
    func callAsFunction(_ images: Tensor, labels: [Int32], samples: BatchSamples? = nil) -> Result {
        setup.zeroGrad()
        let logits = setup.student.forward(images, mode: .train)
        let student = NetworkOutputs(logits: logits, features: features(studentTaps))
        var teacher: NetworkOutputs?
        if objective.usesTeacher, let t = setup.teacher {
            teacher = NetworkOutputs(logits: t.forward(images, mode: .eval), features: features(teacherTaps))
        }
        let value = objective.evaluate(student: student, teacher: teacher, labels: labels, samples: samples)
        let correct = objective.usesLabels || teacher == nil
            ? topKCorrect(logits, labels: labels, k: 1) : agreement(logits, teacher!.logits)
        if let t = teacher?.logits, t.withUnsafeBufferPointer({ $0.contains { !$0.isFinite } }) {
            return Result(loss: value.loss, correct: correct, stepped: false, cause: "the teacher's logits are not finite")
        }
        guard value.loss.isFinite else { return Result(loss: value.loss, correct: correct, stepped: false) }
        for (path, tap) in studentTaps { tap.injectedGradient = value.dFeatures[path] }
        _ = setup.student.backward(value.dLogits ?? Tensor.zeros(like: logits))
        setup.step()
        return Result(loss: value.loss, correct: correct, stepped: true)
    }

    private func features(_ taps: [(path: String, tap: Tap)]) -> [String: Tensor] {
        var f: [String: Tensor] = [:]
        for (path, tap) in taps { f[path] = tap.output }
        return f
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
