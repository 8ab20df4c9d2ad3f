import Distillation
import NN
import Tensors
import TestSupport
import Testing

/// Central-difference check of a scalar loss against analytic gradients, for objectives (TestSupport's
/// `GradientCheck` is for layers). `probes` random coordinates of each tensor move by ±h and by ±h/2; the
/// loss is re-evaluated in double over the float32 objective. Where the two differences disagree (beyond
/// the tolerance) a kink (ReLU, |·|, a clamp) lies within h of the probe and it is skipped; more than a
/// quarter skipped is a failure of its own. Otherwise the h/2 difference must match the analytic value:
/// |a − n| ≤ atol + rtol·max(|a|, |n|).
func finiteDifferenceFailures(_ loss: () -> Double, _ tensors: [(name: String, value: Tensor, analytic: Tensor)],
                              h: Float = 4e-3, probes: Int = 12, atol: Double = 1e-4, rtol: Double = 1e-2, seed: UInt64 = 3) -> [String] {
    var rng = RNG(seed: seed)
    var failures: [String] = []
    var probed = 0, skipped = 0
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= atol + rtol * max(abs(a), abs(b)) }
    for (name, value, analytic) in tensors {
        precondition(value.layout == .plain && analytic.shape == value.shape, "\(name): \(value) vs \(analytic)")
        let a = analytic.array
        for _ in 0..<min(probes, value.count) {
            let i = rng.below(value.count)
            let v = value[i]
            func difference(_ step: Float) -> Double {
                value.withUnsafeMutablePointer { $0[i] = v + step }
                let lp = loss()
                value.withUnsafeMutablePointer { $0[i] = v - step }
                let lm = loss()
                value.withUnsafeMutablePointer { $0[i] = v }
                return (lp - lm) / Double((v + step) - (v - step))
            }
            let coarse = difference(h), fine = difference(h / 2)
            probed += 1
            if !close(coarse, fine) { skipped += 1; continue }
            if !close(fine, Double(a[i])) { failures.append("\(name)[\(i)]: analytic \(a[i]), numeric \(fine)") }
        }
    }
    if Double(skipped) > 0.25 * Double(probed) { failures.append("\(skipped) of \(probed) probes on kinks") }
    return failures
}

func randomFeature(_ shape: [Int], seed: UInt64, relu: Bool = true) -> Tensor {
    var rng = RNG(seed: seed)
    let t = Tensor(shape: shape)
    t.withUnsafeMutablePointer { p in for i in 0..<t.count { let v = rng.normal(); p[i] = relu ? max(v, 0) : v } }
    return t
}

@Suite struct ObjectiveGradientTests {
    @Test func attention() {
        let fs = randomFeature([3, 4, 5, 5], seed: 1), ft = randomFeature([3, 6, 5, 5], seed: 2)
        let d = AttentionObjective.layerLoss(student: fs, teacher: ft).dStudent
        #expect(finiteDifferenceFailures({ AttentionObjective.layerLoss(student: fs, teacher: ft).loss }, [("f_s", fs, d)]) == [])
    }

    @Test func nst() {
        let fs = randomFeature([2, 4, 3, 3], seed: 1), ft = randomFeature([2, 5, 3, 3], seed: 2)
        let d = NSTObjective.layerLoss(student: fs, teacher: ft).dStudent
        #expect(finiteDifferenceFailures({ NSTObjective.layerLoss(student: fs, teacher: ft).loss }, [("f_s", fs, d)]) == [])
    }

    @Test func similarity() {
        let fs = randomFeature([5, 3, 2, 2], seed: 1), ft = randomFeature([5, 4, 2, 2], seed: 2)
        let d = SimilarityObjective.layerLoss(student: fs, teacher: ft).dStudent
        #expect(finiteDifferenceFailures({ SimilarityObjective.layerLoss(student: fs, teacher: ft).loss }, [("f_s", fs, d)]) == [])
    }

    @Test func rkd() {
        let fs = randomFeature([6, 4], seed: 1), ft = randomFeature([6, 5], seed: 2)
        let rkd = RKDObjective(pair: FeaturePair("flatten"))
        let d = rkd.loss(student: fs, teacher: ft).dStudent
        #expect(finiteDifferenceFailures({ rkd.loss(student: fs, teacher: ft).loss }, [("f_s", fs, d)]) == [])
    }

    /// FitNet: the student feature and every ConvReg parameter (conv weight and bias, BN affine).
    @Test(arguments: [([3, 6, 6], [5, 6, 6]), ([3, 8, 8], [4, 4, 4])])
    func fitnet(shapes: ([Int], [Int])) throws {
        var rng = RNG(seed: 4)
        let hint = try HintObjective(pair: FeaturePair("layer2"), studentShape: shapes.0, teacherShape: shapes.1, rng: &rng)
        let fs = randomFeature([4] + shapes.0, seed: 5, relu: false), ft = randomFeature([4] + shapes.1, seed: 6)
        try expectModuleGradients(hint.module!, fs) { hint.loss(student: fs, teacher: ft) }
    }

    @Test func correlation() throws {
        var rng = RNG(seed: 4)
        let cc = CorrelationObjective(pair: FeaturePair("flatten"), studentDimension: 5, teacherDimension: 6, embedding: 4, rng: &rng)
        let fs = randomFeature([5, 5], seed: 5), ft = randomFeature([5, 6], seed: 6)
        try expectModuleGradients(cc.module!, fs) { cc.loss(student: fs, teacher: ft) }
    }

    /// VID: regressor weights and log_scale (moved off its constant start).
    @Test func vid() throws {
        var rng = RNG(seed: 4)
        let vid = VIDObjective(pairs: [FeaturePair("layer1")], channels: [(3, 4)], rng: &rng)
        let m = vid.regressors[0]
        m.logScale.value.withUnsafeMutablePointer { p in for i in 0..<4 { p[i] = Float(i) - 1.5 } }
        let fs = randomFeature([2, 3, 3, 3], seed: 5, relu: false), ft = randomFeature([2, 4, 3, 3], seed: 6)
        try expectModuleGradients(vid.module!, fs) { m.loss(student: fs, teacher: ft) }
    }

    /// FSP: every feature of the chain (a middle one takes two pairs' gradients), with pooled bottoms.
    @Test func fsp() {
        let shapes = [[2, 3, 4, 4], [2, 4, 4, 4], [2, 5, 2, 2]]
        let fs = shapes.enumerated().map { randomFeature($1, seed: UInt64(1 + $0), relu: false) }
        let ft = shapes.enumerated().map { randomFeature($1, seed: UInt64(11 + $0)) }
        let d = FSPObjective.loss(student: fs, teacher: ft).dStudent
        #expect(finiteDifferenceFailures({ FSPObjective.loss(student: fs, teacher: ft).loss },
                                         zip(fs, d).enumerated().map { ("f\($0.offset)", $0.element.0, $0.element.1) }) == [])
    }

    /// FT: the student feature and the Translator's parameters (the Paraphraser is frozen: no gradient).
    @Test func factorTransfer() throws {
        var rng = RNG(seed: 4)
        let obj = FactorTransferObjective(pair: FeaturePair("layer3"), studentChannels: 3, teacherChannels: 4, rng: &rng)
        let fs = randomFeature([3, 3, 3, 3], seed: 5, relu: false), ft = randomFeature([3, 4, 3, 3], seed: 6)
        try expectModuleGradients(obj.trainableModule!, fs) { obj.loss(student: fs, teacher: ft) }
    }

    /// The Paraphraser's reconstruction loss against central differences in all its parameters.
    @Test func paraphraserReconstruction() {
        var rng = RNG(seed: 4)
        let obj = FactorTransferObjective(pair: FeaturePair("layer3"), studentChannels: 3, teacherChannels: 4, rng: &rng)
        let ft = randomFeature([2, 4, 3, 3], seed: 6, relu: false)
        obj.paraphraser.zeroGrad()
        _ = obj.paraphraserLoss(teacher: ft)
        let tensors = obj.paraphraser.parameters().map { ($0.name, $0.parameter.value, $0.parameter.grad.copy()) }
        #expect(finiteDifferenceFailures({ obj.paraphraserLoss(teacher: ft) }, tensors) == [])
    }

    /// Analytic dL/df_s and dL/dθ of one call against central differences. (Module inputs are signed: an
    /// exact zero in every channel of a pixel puts a bias-free 1×1 conv's output on its ReLU's kink.)
    func expectModuleGradients(_ module: Layer, _ fs: Tensor, sourceLocation: SourceLocation = #_sourceLocation,
                               _ f: () -> (loss: Double, dStudent: Tensor)) throws {
        module.zeroGrad()
        let d = f().dStudent.toLayout(.plain)
        let tensors = [("f_s", fs, d)] + module.parameters().map { ($0.name, $0.parameter.value, $0.parameter.grad.copy()) }
        let failures = finiteDifferenceFailures({ f().loss }, tensors)
        #expect(failures == [], sourceLocation: sourceLocation)
    }
}
