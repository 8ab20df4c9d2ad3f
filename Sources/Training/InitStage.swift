import Distillation
import Models
import NN
import Tensors

/// The initialisation stage of the two-stage methods, the authors' `init` (`utils_distill.py:261-345`), run
/// after the quantizers' calibration (`train_quant.py:221`) and before the main stage's optimizers exist
/// (`train_quant.py:280,283-305`), for `config.initStageEpochs` epochs (the authors' `--init_epochs` 30,
/// `train_quant.py:114`) over the same shuffled, augmented training set:
///
/// - fsp (`utils_distill.py:131-138,324-326`): the student's feature modules (`get_feat_modules()`: every
///   module but the classifier, quantizer parameters included) minimise Σ FSP(feat_s[:-1], feat_t[:-1]),
///   unweighted, in train mode (`init_modules.train()` overrides `model_s.eval()` for exactly those modules,
///   so BN uses and updates batch statistics); the teacher in eval mode. The main stage is then γ·CE + α·KL_T.
/// - ft (`utils_distill.py:114-123,320-323`): the Paraphraser minimises MSE(decoder(encoder(f_t)), f_t) on the
///   teacher's feat[-2]; the student is untouched (the authors run its eval-mode forward and discard it:
///   skipped here). The Paraphraser is then frozen for the main stage.
///
/// Optimiser (`utils_distill.py:274-284`): a fresh SGD over those parameters, momentum `momentum` (0.9),
/// coupled weight decay `weight_decay`, constant learning rate: 0.01 for ft on the CIFAR ResNets
/// (`resnet8` … `resnet110`, `resnet8x4`, `resnet32x4`), else `lr` (lr_m). Its state is saved with each
/// init epoch (`RunDirectory.initState(epoch:)`), so an interrupted stage resumes and a finished one is
/// not redone.
final class InitStage {
    let epochs: Int
    let lr: Double
    let optimizer: SGD
    let method: DistillationMethod
    private let student: any Model
    private let teacher: any Model
    private let fsp: (objective: FSPObjective, student: [Tap], teacher: [Tap])?
    private let ft: (objective: FactorTransferObjective, teacher: Tap)?

    /// The CIFAR ResNets of the authors' list (`utils_distill.py:275-276`; `wrn_*` never matches, since the
    /// name is cut at the first underscore).
    static let resNetArchitectures: Set<String> = ["resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56",
                                                   "resnet110", "resnet8x4", "resnet32x4"]

    /// nil when the run has no initialisation stage (`initStageEpochs` 0).
    init?(setup: TrainingSetup, inputHeight: Int, inputWidth: Int) throws {
        let config = setup.config
        guard config.initStageEpochs > 0 else { return nil }
        guard let teacher = setup.teacher else { throw ConfigError("distill \(config.distill.rawValue) needs a teacher") }
        epochs = config.initStageEpochs
        method = config.distill
        student = setup.student
        self.teacher = teacher
        let parameters: [(name: String, parameter: Parameter)]
        switch config.distill {
        case .fsp:
            let objective = try config.initStageObjective(student: setup.student, teacher: teacher,
                                                          inputHeight: inputHeight, inputWidth: inputWidth)
            fsp = (objective, try setup.student.tap(objective.featurePaths), try teacher.tap(objective.teacherFeaturePaths))
            ft = nil
            let head = setup.student.classifierPath.map { $0 + "." }
            parameters = setup.student.parameters().filter { head == nil || !$0.name.hasPrefix(head!) }
            lr = config.lr
        case .ft:
            guard let objective = setup.objective.terms.lazy.compactMap({ $0.objective as? FactorTransferObjective }).first else {
                throw ConfigError("distill ft: the objective has no factor-transfer term (beta 0?)")
            }
            ft = (objective, try teacher.tap([objective.pair.teacher])[0])
            fsp = nil
            parameters = objective.module!.parameters().filter { $0.name.hasPrefix("module_list.2.") }
            lr = Self.resNetArchitectures.contains(config.model) ? 0.01 : config.lr
        default:
            throw ConfigError("distill \(config.distill.rawValue) has no initialisation stage")
        }
        optimizer = SGD(groups: [ParameterGroup(parameters: parameters, lr: lr, weightDecay: config.weightDecay)],
                        momentum: config.momentum)
    }

    /// One SGD step on a batch; returns the loss, or nil (nothing updated) when it is not finite.
    func step(_ images: Tensor) -> Double? {
        optimizer.zeroGrad()
        if let fsp {
            let logits = student.forward(images, mode: .train)
            _ = teacher.forward(images, mode: .eval)
            let (l, d) = FSPObjective.loss(student: fsp.student.map { $0.output!.toLayout(.plain) },
                                           teacher: fsp.teacher.map { $0.output!.toLayout(.plain) })
            guard l.isFinite else { return nil }
            for (tap, g) in zip(fsp.student, d) { tap.injectedGradient = g }
            _ = student.backward(Tensor.zeros(like: logits))
            optimizer.step()
            return l
        }
        let ft = ft!
        _ = teacher.forward(images, mode: .eval)
        let l = ft.objective.paraphraserLoss(teacher: ft.teacher.output!.toLayout(.plain))
        guard l.isFinite else { return nil }
        optimizer.step()
        return l
    }

    /// Name of the stage's optimizer in the training state.
    static let optimizerName = "optimizer_init"

    /// XORed into the run's seed for the stage's loader, so its batch orders and augmentations are not
    /// the main stage's epochs 1…K again (the authors' loader reshuffles from one global stream).
    static let loaderSeedLabel: UInt64 = 0x696e_6974
}

/// One epoch of the initialisation stage, as recorded (`RunRecord.initStage`).
public struct InitEpochMetrics: Codable, Equatable, Sendable {
    public var epoch: Int
    public var lr: Double
    /// Mean loss of the epoch's batches (FSP sum, or the Paraphraser's reconstruction MSE).
    public var loss: Double
    public var seconds: Double
    public var imagesPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case epoch, lr, loss, seconds
        case imagesPerSecond = "images_per_second"
    }
}
