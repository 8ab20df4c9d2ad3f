import Distillation
import Models
import NN
import Tensors

extension TrainConfig {
    /// The objective a run optimises, the authors' mix γ·CE + α·KL_T + β·L_kd (`train_quant.py:415-422`) with
    /// `lossWeights`: `none` is γ = 1 alone (cross-entropy with `label_smoothing`); `sqakd` is α·T²·KL at
    /// `temperature`, no label; `kd` adds γ·CE; the feature methods add β times their own term on the
    /// features the authors pick from `forward(is_feat=True)` (reference §6, `utils_distill.py:153-213`),
    /// with feat = `Model.featurePaths` of each network:
    ///
    ///     at, nst, vid   feat[1:-1]        sp, ft   feat[-2]        rkd, cc, crd   feat[-1]        fitnet   feat[2]
    ///     cktf           β·CRD(feat[-1]) + θ·[CRD(pool(f0)) + Σ_{feat[1:-1]} CRD(pool(normalize_batch(f)))]
    ///
    /// fsp's main stage is γ·CE + α·KL_T alone (its FSP term lives in the initialisation stage,
    /// `initStageObjective`); ft's Paraphraser is trained by that stage (`InitStage`).
    ///
    /// Student and teacher features are paired by position (zip, as the authors). Objectives with
    /// trainable modules (fitnet, cc, vid) size them from the features' shapes on an input of
    /// `inputHeight`×`inputWidth` (the authors probe with a 2×3×32×32 batch, `utils_distill.py:26-30`; here
    /// an eval forward of the teacher, which must be ready to run) and
    /// draw their initial values from `RNG(seed: seed).derived(auxiliarySeedLabel)`. crd and cktf size their
    /// memory banks and draw negatives from `trainingLabels` (the whole training set's, in dataset order),
    /// their negatives from `RNG(seed: seed).derived(contrastSeedLabel)` (`ContrastSampler`).
    public func objective(student: any Model, teacher: (any Model)?, inputHeight: Int = 32, inputWidth: Int = 32,
                          trainingLabels: [Int32] = []) throws -> LossMix {
        let ce = CrossEntropyObjective(labelSmoothing: labelSmoothing)
        let kl = SoftTargetObjective(temperature: temperature)
        let w = lossWeights
        switch distill {
        case .none: return .authors(gamma: 1, crossEntropy: ce, alpha: 0, softTarget: kl)
        case .sqakd, .kd, .fsp: return .authors(gamma: w.gamma, crossEntropy: ce, alpha: w.alpha, softTarget: kl)
        default: break
        }
        guard let teacher else { throw ConfigError("distill \(distill.rawValue) needs a teacher") }
        let fs = student.featurePaths, ft = teacher.featurePaths
        guard fs.count >= 4, ft.count >= 4 else {
            throw ConfigError("distill \(distill.rawValue): \(student.architecture) or \(teacher.architecture) has too few features")
        }
        func middle(_ f: [String]) -> [String] { Array(f[1..<(f.count - 1)]) }
        func pairs(_ s: [String], _ t: [String]) -> [FeaturePair] { zip(s, t).map { FeaturePair(student: $0, teacher: $1) } }
        var rng = RNG(seed: seed).derived(Self.auxiliarySeedLabel)
        // Student shapes from the teacher when the architectures agree (no extra forward), else from a
        // fresh FP copy of the student's architecture.
        func studentShapes(_ paths: [String]) throws -> [String: [Int]] {
            student.architecture == teacher.architecture && student.inputChannels == teacher.inputChannels
                ? try featureShapes(teacher, paths, inputHeight, inputWidth)
                : try featureShapes(student, paths, inputHeight, inputWidth, probeItself: false)
        }
        let other: any Objective
        switch distill {
        case .at, .nst:
            let ps = pairs(middle(fs), middle(ft))
            try requireSameMaps(ps, studentShapes, teacher, inputHeight, inputWidth)
            other = distill == .at ? AttentionObjective(pairs: ps) : NSTObjective(pairs: ps)
        case .sp: other = SimilarityObjective(pairs: [FeaturePair(student: fs[fs.count - 2], teacher: ft[ft.count - 2])])
        case .rkd: other = RKDObjective(pair: FeaturePair(student: fs.last!, teacher: ft.last!))
        case .fitnet:
            let p = FeaturePair(student: fs[2], teacher: ft[2])
            let ss = try studentShapes([p.student])[p.student]!
            let ts = try featureShapes(teacher, [p.teacher], inputHeight, inputWidth)[p.teacher]!
            do { other = try HintObjective(pair: p, studentShape: ss, teacherShape: ts, rng: &rng) } catch {
                throw ConfigError("distill fitnet: \(error)")
            }
        case .cc:
            let p = FeaturePair(student: fs.last!, teacher: ft.last!)
            let ss = try studentShapes([p.student])[p.student]!
            let ts = try featureShapes(teacher, [p.teacher], inputHeight, inputWidth)[p.teacher]!
            other = CorrelationObjective(pair: p, studentDimension: ss.reduce(1, *), teacherDimension: ts.reduce(1, *), rng: &rng)
        case .vid:
            let ps = pairs(middle(fs), middle(ft))
            let (ss, ts) = try requireSameMaps(ps, studentShapes, teacher, inputHeight, inputWidth)
            other = VIDObjective(pairs: ps, channels: ps.map { (ss[$0.student]![0], ts[$0.teacher]![0]) }, rng: &rng)
        case .ft:
            let p = FeaturePair(student: fs[fs.count - 2], teacher: ft[ft.count - 2])
            let (ss, ts) = try requireSameMaps([p], studentShapes, teacher, inputHeight, inputWidth)
            guard ss[p.student]!.count == 3, ts[p.teacher]![0] >= 2 else {
                throw ConfigError("distill ft: feat[-2] must be a [C, H, W] map with C ≥ 2, got \(ss[p.student]!) and \(ts[p.teacher]!)")
            }
            other = FactorTransferObjective(pair: p, studentChannels: ss[p.student]![0], teacherChannels: ts[p.teacher]![0], rng: &rng)
        case .crd:
            let p = FeaturePair(student: fs.last!, teacher: ft.last!)
            let sampler = try contrastSampler(trainingLabels)
            let ss = try studentShapes([p.student])[p.student]!
            let ts = try featureShapes(teacher, [p.teacher], inputHeight, inputWidth)[p.teacher]!
            let c = CRDCriterion(studentDimension: ss.reduce(1, *), teacherDimension: ts.reduce(1, *), dataCount: trainingLabels.count,
                                 negatives: resolvedNegatives, rng: &rng)
            other = ContrastiveObjective(name: "crd", heads: [.init(pair: p, feature: .flat, criterion: c)], names: [""], sampler: sampler)
        case .cktf:
            let (last, intermediate) = try cktfObjectives(student: student, teacher: teacher, height: inputHeight, width: inputWidth,
                                                          trainingLabels: trainingLabels, studentShapes: studentShapes, rng: &rng)
            return LossMix([(w.gamma, ce), (w.alpha, kl), (w.beta, last), (resolvedTheta, intermediate)])
        case .none, .sqakd, .kd, .fsp: preconditionFailure("handled above")
        }
        return LossMix([(w.gamma, ce), (w.alpha, kl), (w.beta, other)])
    }

    /// fsp's initialisation-stage objective: FSP on feat[:-1] of both networks, paired by position
    /// (`utils_distill.py:132-134,325`). Throws when the lists differ in length, a pair differs in channels
    /// (`FSP.py:13-17`), or consecutive maps are not whole multiples of each other in size.
    public func initStageObjective(student: any Model, teacher: any Model, inputHeight: Int = 32, inputWidth: Int = 32) throws -> FSPObjective {
        let fs = Array(student.featurePaths.dropLast()), ft = Array(teacher.featurePaths.dropLast())
        guard fs.count == ft.count, fs.count >= 2 else {
            throw ConfigError("distill fsp: \(student.architecture) and \(teacher.architecture) need equally many features (≥ 3)")
        }
        let tShapes = try featureShapes(teacher, ft, inputHeight, inputWidth)
        let sShapes = student.architecture == teacher.architecture && student.inputChannels == teacher.inputChannels
            ? Dictionary(uniqueKeysWithValues: zip(fs, ft.map { tShapes[$0]! }))
            : try featureShapes(student, fs, inputHeight, inputWidth, probeItself: false)
        for (s, t) in zip(fs, ft) where sShapes[s]!.count != 3 || sShapes[s]![0] != tShapes[t]![0] {
            throw ConfigError("distill fsp: student feature \(s) \(sShapes[s]!) and teacher feature \(t) \(tShapes[t]!) " +
                              "must be maps with equal channels (FSP.py:13-17)")
        }
        for shapes in [fs.map { sShapes[$0]! }, ft.map { tShapes[$0]! }] {
            for (a, b) in zip(shapes, shapes.dropFirst()) {
                let (big, small) = a[1] >= b[1] ? (a, b) : (b, a)
                guard small[1] > 0, small[2] > 0, big[1] % small[1] == 0, big[1] / small[1] == big[2] / small[2], big[2] % small[2] == 0 else {
                    throw ConfigError("distill fsp: consecutive features \(a) and \(b) are not whole multiples in size (pooling supports r×r blocks)")
                }
            }
        }
        return FSPObjective(pairs: zip(fs, ft).map { FeaturePair(student: $0, teacher: $1) })
    }

    /// CKTF (`crdst`; `utils_distill.py:53-71,220-239`, `distiller_zoo/ST.py`, reference §6): one CRD criterion
    /// per feature, built in the authors' order (criterion_kd.1 … .5): f0 pooled; each group's last block
    /// (feat[1:-1]: the groups' outputs) normalised over the batch, then pooled, against the teacher's last
    /// block of the same group (st_method Last); feat[-1] as it is. The pool is the architecture's
    /// (`ST.py:16-23`, `flatGroupOut`): ResNet AvgPool2d(8), VGG a global average. Returns the feat[-1]
    /// objective (weight β) and the intermediate one (weight θ), which share one draw of negatives per batch.
    func cktfObjectives(student: any Model, teacher: any Model, height: Int, width: Int, trainingLabels: [Int32],
                        studentShapes: ([String]) throws -> [String: [Int]], rng: inout RNG)
        throws -> (last: ContrastiveObjective, intermediate: ContrastiveObjective) {
        let window: Int?
        if student.architecture.hasPrefix("resnet") {
            window = 8
        } else if student.architecture.hasPrefix("vgg") {
            window = nil
        } else {
            throw ConfigError("distill cktf pools features as the authors' ResNet or VGG; \(student.architecture) is neither")
        }
        let sampler = try contrastSampler(trainingLabels)
        let fs = student.featurePaths, ft = teacher.featurePaths
        let pairs = zip(fs, ft).map { FeaturePair(student: $0, teacher: $1) }
        let ss = try studentShapes(fs)
        let ts = try featureShapes(teacher, ft, height, width)
        var heads: [ContrastiveObjective.Head] = []
        for (i, p) in pairs.enumerated() {
            let isLast = i == pairs.count - 1
            let feature: ContrastFeature = isLast ? .flat : i == 0 ? .pooled(window: window) : .batchNormalizedPooled(window: window)
            let s = ss[p.student]!, t = ts[p.teacher]!
            if !isLast {
                guard s == t else {
                    throw ConfigError("distill cktf: student feature \(p.student) \(s) and teacher feature \(p.teacher) \(t) differ " +
                                      "(the authors' zero-padding of channels is not supported)")
                }
                if let window, s.count != 3 || s[1] < window || s[2] < window {
                    throw ConfigError("distill cktf pools \(p.student) \(s) over \(window)×\(window) windows (AvgPool2d(\(window))); " +
                                      "its map is smaller (inputs of \(height)×\(width))")
                }
            }
            let c = CRDCriterion(studentDimension: feature.dimension(of: s), teacherDimension: feature.dimension(of: t),
                                 dataCount: trainingLabels.count, negatives: resolvedNegatives, rng: &rng)
            heads.append(.init(pair: p, feature: feature, criterion: c))
        }
        let n = heads.count
        let last = ContrastiveObjective(name: "cktf", heads: [heads[n - 1]], names: ["\(n)"], sampler: sampler)
        let intermediate = ContrastiveObjective(name: "cktf_st", heads: Array(heads[0..<(n - 1)]),
                                                names: (1..<n).map { "\($0)" }, sampler: sampler)
        return (last, intermediate)
    }

    /// The negatives' sampler of crd / cktf over the training set's labels.
    func contrastSampler(_ labels: [Int32]) throws -> ContrastSampler {
        guard !labels.isEmpty else { throw ConfigError("distill \(distill.rawValue) needs the training set's labels (its memory banks hold one row per sample)") }
        do {
            return try ContrastSampler(labels: labels, negatives: resolvedNegatives, rng: RNG(seed: seed).derived(Self.contrastSeedLabel))
        } catch {
            throw ConfigError("distill \(distill.rawValue): \(error)")
        }
    }

    /// The feature shapes of both sides; throws when a pair differs in spatial size (the authors' pooling of
    /// the larger map is not supported).
    @discardableResult
    func requireSameMaps(_ ps: [FeaturePair], _ studentShapes: ([String]) throws -> [String: [Int]], _ teacher: any Model,
                         _ height: Int, _ width: Int) throws -> (student: [String: [Int]], teacher: [String: [Int]]) {
        let ss = try studentShapes(ps.map(\.student))
        let ts = try featureShapes(teacher, ps.map(\.teacher), height, width)
        for p in ps where ss[p.student]!.dropFirst() != ts[p.teacher]!.dropFirst() {
            throw ConfigError("distill \(distill.rawValue): student feature \(p.student) \(ss[p.student]!) and teacher feature " +
                              "\(p.teacher) \(ts[p.teacher]!) differ in spatial size (pooling to match is not supported)")
        }
        return (ss, ts)
    }

    /// Label of the RNG stream the objectives' own modules draw from (independent of the model's).
    static let auxiliarySeedLabel: UInt64 = 0x6b64
    /// Label of the RNG stream of crd's and cktf's negatives.
    static let contrastSeedLabel: UInt64 = 0x637264
}

/// The shapes per image ([C, H, W] or [D]) of `model`'s outputs at `paths` on an input of height × width,
/// from an eval-mode forward of two zero images (shapes depend only on the architecture). `model` itself
/// runs when it is ready to (`probeItself`: the loaded teacher, whose taps the training step reuses);
/// otherwise a fresh FP model of the same architecture (an uncalibrated quantized student).
func featureShapes(_ model: any Model, _ paths: [String], _ height: Int, _ width: Int, probeItself: Bool = true) throws -> [String: [Int]] {
    let probe = probeItself ? model : try ModelZoo.make(model.architecture, classes: model.classes, inputChannels: model.inputChannels, seed: 0)
    let taps = try probe.tap(paths)
    _ = probe.forward(Tensor(shape: [2, model.inputChannels, height, width]), mode: .eval)
    var shapes: [String: [Int]] = [:]
    for (p, t) in zip(paths, taps) { shapes[p] = Array(t.output!.shape.dropFirst()) }
    return shapes
}
