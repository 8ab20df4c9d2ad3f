import Distillation
import NN
import Tensors
import Testing

/// An objective with fixed outputs that counts its calls (to prove which terms a mix evaluates).
final class FixedObjective: Objective {
    let name: String
    let usesLabels: Bool
    let usesTeacher: Bool
    let featurePaths: [String]
    let loss: Double
    let dLogits: [Float]?
    let dFeature: [Float]?
    private(set) var calls = 0

    init(name: String, labels: Bool = false, teacher: Bool = false, loss: Double, dLogits: [Float]?, feature: [Float]? = nil) {
        self.name = name
        usesLabels = labels
        usesTeacher = teacher
        featurePaths = feature == nil ? [] : ["layer1"]
        self.loss = loss
        self.dLogits = dLogits
        dFeature = feature
    }

    func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        calls += 1
        #expect((teacher != nil) == usesTeacher, "\(name) gets the teacher exactly when it asks for it")
        return ObjectiveValue(loss: loss, dLogits: dLogits.map { Tensor(shape: [1, $0.count], values: $0) },
                              dFeatures: dFeature.map { ["layer1": Tensor(shape: [$0.count], values: $0)] } ?? [:])
    }
}

private let logits = Tensor(shape: [2, 3], values: [0.5, -1, 2, 0.25, 0, -0.75])
private let teacherLogits = Tensor(shape: [2, 3], values: [1, -0.5, 0.5, -1, 2, 0.125])

@Suite struct LossMixTests {
    /// A one-term mix of weight 1 is the term itself, bit for bit (the baseline's cross-entropy).
    @Test func weightOneIsTheTermItself() {
        let ce = CrossEntropyObjective(labelSmoothing: 0.1)
        let alone = ce.evaluate(student: NetworkOutputs(logits: logits), teacher: nil, labels: [2, 0])
        let mixed = LossMix([(1, ce)]).evaluate(student: NetworkOutputs(logits: logits), teacher: nil, labels: [2, 0])
        #expect(mixed.loss == alone.loss)
        #expect(mixed.dLogits?.array == alone.dLogits?.array)
    }

    /// SQAKD (γ = 0, α = 3): the loss is α·KL and the gradient α·dKL, each rounded as the trainer always did
    /// (loss in Double, gradient scaled in Float).
    @Test func sqakdScalesTheSoftTargetTerm() {
        let kl = SoftTargetObjective(temperature: 4)
        let mix = LossMix.authors(gamma: 0, crossEntropy: CrossEntropyObjective(), alpha: 3, softTarget: kl)
        let s = NetworkOutputs(logits: logits), t = NetworkOutputs(logits: teacherLogits)
        let v = mix.evaluate(student: s, teacher: t, labels: [0, 0])
        let ref = kl.evaluate(student: s, teacher: t, labels: [])
        #expect(v.loss == 3 * ref.loss)
        #expect(v.dLogits?.array == ref.dLogits!.array.map { $0 * Float(3) })
        #expect(!mix.usesLabels && mix.usesTeacher)
    }

    /// Terms of weight zero are never evaluated: SQAKD reads no label.
    @Test func zeroWeightTermsAreNotEvaluated() {
        let ce = FixedObjective(name: "ce", labels: true, loss: 5, dLogits: [1, 1, 1])
        let kd = FixedObjective(name: "kd", teacher: true, loss: 2, dLogits: [0.5, -0.5, 0])
        let mix = LossMix([(0, ce), (2, kd)])
        let v = mix.evaluate(student: NetworkOutputs(logits: logits), teacher: NetworkOutputs(logits: teacherLogits), labels: [])
        #expect(ce.calls == 0 && kd.calls == 1)
        #expect(v.loss == 4)
        #expect(v.dLogits?.array == [1, -1, 0])
        #expect(mix.terms.count == 1 && !mix.usesLabels)
    }

    /// γ·CE + α·KL + β·L_kd: losses and gradients (logits and per-feature) add up with their weights.
    @Test func termsAddUpWithTheirWeights() {
        let a = FixedObjective(name: "a", labels: true, loss: 1.5, dLogits: [1, 2, 3])
        let b = FixedObjective(name: "b", teacher: true, loss: 0.25, dLogits: [-1, 0, 1], feature: [4, 8])
        let c = FixedObjective(name: "c", teacher: true, loss: 10, dLogits: nil, feature: [1, -1])
        let mix = LossMix([(0.5, a), (4, b), (0.1, c)])
        let v = mix.evaluate(student: NetworkOutputs(logits: logits), teacher: NetworkOutputs(logits: teacherLogits), labels: [1, 2])
        #expect(abs(v.loss - (0.75 + 1 + 1)) < 1e-12)
        #expect(v.dLogits?.array == [0.5 - 4, 1, 1.5 + 4])
        let df = v.dFeatures["layer1"]?.array ?? []
        #expect(df.count == 2 && abs(df[0] - 16.1) < 1e-5 && abs(df[1] - 31.9) < 1e-5)
        #expect(mix.featurePaths == ["layer1"] && mix.usesLabels && mix.usesTeacher)
    }
}
