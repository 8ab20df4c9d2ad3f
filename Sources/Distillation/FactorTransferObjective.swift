import NN
import Tensors

/// Factor transfer (Kim et al.; `CIFAR/distiller_zoo/FT.py:14-31`, wired by `utils_distill.py:114-129,210-213`)
/// on feat[-2] (ResNet `layer3` 64×8×8, VGG `layer4`). The teacher's factor comes from a Paraphraser trained
/// beforehand to reconstruct f_t and then frozen; the student's from a Translator that trains with the student:
///
///     factor(x)[b, :] = normalize( mean_c x[b, c, :]² )        (p1 = 2; a row of H·W values, ε = 1e-12)
///     L = mean_{b, hw} |factor(Translator(f_s)) − factor(Paraphraser.encoder(f_t))|        (p2 = 1)
///
/// Backward: dfactor_s = sign(·)/(B·HW) (0 at 0, torch's `abs`), through the row normalisation, then
/// dx = dq·2x/C into the Translator's backward (train mode, batch statistics: the authors' `module_list`
/// is in train mode, `train_quant.py:342-343`), which accumulates its parameter gradients and returns dL/df_s.
/// The Paraphraser runs in eval mode (`train_quant.py:350-351`; it has no BN, so modes agree) and gets no
/// gradient: its parameters are not in any optimizer (`utils_distill.py:126-129`).
///
/// `module`: `module_list.1` = Translator, `module_list.2` = Paraphraser, the authors' indices
/// (`utils_distill.py:126-127`); `trainableModule`: the Translator alone. The Paraphraser is trained by the
/// run's initialisation stage (`paraphraserLoss`, `TrainConfig.initEpochs`) and then saved with the run's
/// training state like every objective module.
public struct FactorTransferObjective: Objective {
    public let pair: FeaturePair
    public let translator: Translator
    public let paraphraser: Paraphraser
    public let module: Layer?
    public let trainableModule: Layer?

    /// `studentChannels` C_s, `teacherChannels` C_t of feat[-2]; the factor has ⌊C_t/2⌋ channels (k = 0.5).
    public init(pair: FeaturePair, studentChannels: Int, teacherChannels: Int, rng: inout RNG) {
        self.pair = pair
        // Construction order as the authors' (`utils_distill.py:117-118`): Paraphraser, then Translator.
        paraphraser = Paraphraser(channels: teacherChannels, rng: &rng)
        translator = Translator(inputChannels: studentChannels, factorChannels: teacherChannels / 2, rng: &rng)
        module = ModuleList([(name: "module_list", layer: ModuleList([(name: "1", layer: translator), (name: "2", layer: paraphraser)]))])
        trainableModule = ModuleList([(name: "module_list", layer: ModuleList([(name: "1", layer: translator)]))])
    }

    public var name: String { "ft" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { [pair.student] }
    public var teacherFeaturePaths: [String] { [pair.teacher] }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher, let fs = student.features[pair.student] else {
            preconditionFailure("ft needs the student's '\(pair.student)' and the teacher's '\(pair.teacher)'")
        }
        let (l, d) = loss(student: fs, teacher: teacher.plainFeature(pair.teacher, name))
        return ObjectiveValue(loss: l, dLogits: nil, dFeatures: [pair.student: d])
    }

    /// f_s [B, C_s, H, W] (any layout), f_t [B, C_t, H, W] plain → L and dL/df_s (f_s's layout); accumulates
    /// the Translator's gradients.
    public func loss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let xs = translator.forward(fs, mode: .train)
        let xt = paraphraser.encoder.forward(ft, mode: .eval)
        requireSameMaps(xs, xt, "ft")
        let b = xs.shape[0], hw = xs.count / (b * xs.shape[1])
        let aS = AttentionObjective.attention(xs), aT = AttentionObjective.attention(xt)
        var loss = 0.0
        let scale = 1 / Double(b * hw)
        var da = [Float](repeating: 0, count: b * hw)
        for i in 0..<(b * hw) {
            let z = Double(aS.map[i]) - Double(aT.map[i])
            loss += abs(z)
            da[i] = z > 0 ? Float(scale) : z < 0 ? Float(-scale) : 0
        }
        loss *= scale
        aS.map.withUnsafeBufferPointer { u in
            da.withUnsafeMutableBufferPointer { normalizeRowsBackward($0.baseAddress!, normalized: u.baseAddress!, norms: aS.norms, n: hw) }
        }
        let dx = AttentionObjective.attentionBackward(da, xs)
        return (loss, translator.backward(dx))
    }

    /// The initialisation stage's loss (`utils_distill.py:320-323`, `criterion_init = nn.MSELoss()`):
    /// f_t [B, C_t, H, W] plain → L = mean (decoder(encoder(f_t)) − f_t)², train mode; accumulates the
    /// Paraphraser's gradients.
    public func paraphraserLoss(teacher ft: Tensor) -> Double {
        let rec = paraphraser.forward(ft, mode: .train).toLayout(.plain)
        precondition(rec.shape == ft.shape, "ft: reconstruction \(rec.shape) vs teacher feature \(ft.shape)")
        let n = rec.count
        let dy = Tensor(shape: rec.shape)
        var s = 0.0
        withUnsafeMutablePointers(dy, rec, ft) { dy, y, t in
            let k = 2 / Double(n)
            for i in 0..<n {
                let z = Double(y[i]) - Double(t[i])
                s += z * z
                dy[i] = Float(k * z)
            }
        }
        _ = paraphraser.backward(dy)
        return s / Double(n)
    }
}

/// The authors' `Paraphraser(t_shape, k=0.5, use_bn=False)` (`CIFAR/models/util.py:7-41`), C = C_t, C' = ⌊C/2⌋:
///
///     encoder  conv3×3 C→C, LReLU, conv3×3 C→C', LReLU, conv3×3 C'→C', LReLU            (children 0, 2, 3, 5, 6, 8)
///     decoder  convT3×3 C'→C', LReLU, convT3×3 C'→C, LReLU, convT3×3 C→C, LReLU          (children 0, 2, 3, 5, 6, 8)
///
/// LReLU slope 0.1, padding 1, biases; no BN (the empty `nn.Sequential()` slots 1, 4, 7 hold nothing).
/// `forward` is encoder then decoder (the reconstruction); `backward` runs both back.
/// Init: PyTorch's default per conv, encoder first.
public final class Paraphraser: Layer {
    public let encoder: Sequential
    public let decoder: Sequential

    public init(channels c: Int, rng: inout RNG) {
        let h = c / 2
        let e = [Conv2d(inputChannels: c, outputChannels: c, kernelSize: 3, padding: 1),
                 Conv2d(inputChannels: c, outputChannels: h, kernelSize: 3, padding: 1),
                 Conv2d(inputChannels: h, outputChannels: h, kernelSize: 3, padding: 1)]
        for conv in e { conv.resetParameters(rng: &rng) }
        let d = [ConvTranspose2d(inputChannels: h, outputChannels: h, kernelSize: 3, padding: 1),
                 ConvTranspose2d(inputChannels: h, outputChannels: c, kernelSize: 3, padding: 1),
                 ConvTranspose2d(inputChannels: c, outputChannels: c, kernelSize: 3, padding: 1)]
        for conv in d { conv.resetParameters(rng: &rng) }
        let names = ["0", "2", "3", "5", "6", "8"]
        encoder = Sequential([e[0], LeakyReLU(negativeSlope: 0.1), e[1], LeakyReLU(negativeSlope: 0.1), e[2],
                              LeakyReLU(negativeSlope: 0.1)], names: names)
        decoder = Sequential([d[0], LeakyReLU(negativeSlope: 0.1), d[1], LeakyReLU(negativeSlope: 0.1), d[2],
                              LeakyReLU(negativeSlope: 0.1)], names: names)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor { decoder.forward(encoder.forward(x, mode: mode), mode: mode) }
    public func backward(_ dy: Tensor) -> Tensor { encoder.backward(decoder.backward(dy)) }
    public var children: [Child] { [Child("encoder", encoder), Child("decoder", decoder)] }
}

/// The authors' `Translator(s_shape, t_shape, k=0.5, use_bn=True)` (`CIFAR/models/util.py:44-62`):
/// conv3×3 C_s→C_s, BN, LReLU(0.1), conv3×3 C_s→C', BN, LReLU, conv3×3 C'→C', BN, LReLU with C' = ⌊C_t/2⌋,
/// padding 1, biases; children `encoder.0` … `encoder.8`. Init: PyTorch's default per conv, BN 1/0.
public final class Translator: Layer {
    public let encoder: Sequential

    public init(inputChannels cs: Int, factorChannels h: Int, rng: inout RNG) {
        let convs = [Conv2d(inputChannels: cs, outputChannels: cs, kernelSize: 3, padding: 1),
                     Conv2d(inputChannels: cs, outputChannels: h, kernelSize: 3, padding: 1),
                     Conv2d(inputChannels: h, outputChannels: h, kernelSize: 3, padding: 1)]
        for conv in convs { conv.resetParameters(rng: &rng) }
        encoder = Sequential([convs[0], BatchNorm2d(features: cs), LeakyReLU(negativeSlope: 0.1),
                              convs[1], BatchNorm2d(features: h), LeakyReLU(negativeSlope: 0.1),
                              convs[2], BatchNorm2d(features: h), LeakyReLU(negativeSlope: 0.1)])
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor { encoder.forward(x, mode: mode) }
    public func backward(_ dy: Tensor) -> Tensor { encoder.backward(dy) }
    public var children: [Child] { [Child("encoder", encoder)] }
}
