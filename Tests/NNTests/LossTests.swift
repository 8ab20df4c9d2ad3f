import TestSupport
import Foundation
import Testing
import Tensors
@testable import NN

// Cross-entropy, label smoothing, top-k counting and the distillation KL on hand-computed cases and
// against central finite differences. (PyTorch goldens for the same losses are in GoldenTests.)

/// |a − b| ≤ atol + rtol·|b| for every element, else one issue naming the first offender.
private func expectAllClose(_ a: [Float], _ b: [Double], atol: Double, rtol: Double, _ what: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    guard a.count == b.count else {
        Issue.record("\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
        return
    }
    for i in a.indices where !(abs(Double(a[i]) - b[i]) <= atol + rtol * abs(b[i])) {
        Issue.record("\(what)[\(i)]: got \(a[i]), expected \(b[i])", sourceLocation: sourceLocation)
        return
    }
}

/// Central differences of a scalar loss over every element of `x` (float32 perturbation h, Double loss).
private func numericGradient(_ x: Tensor, h: Float = 1e-2, _ loss: () -> Double) -> [Double] {
    (0..<x.count).map { i in
        let old = x[i]
        x[i] = old + h
        let lp = loss()
        x[i] = old - h
        let lm = loss()
        x[i] = old
        return (lp - lm) / (Double(old + h) - Double(old - h))
    }
}

@Suite("Losses: cross-entropy, label smoothing, top-k, distillation KL")
struct LossTests {

    // Values from torch.nn.functional.cross_entropy in float64:
    //   z = [[1, 2, 3], [0, 0, 0]], y = [2, 1]; cross_entropy(z, y[, label_smoothing=0.1]) and its gradient.
    static let z: [Float] = [1, 2, 3, 0, 0, 0]
    static let y: [Int32] = [2, 1]

    @Test func crossEntropyHandCase() {
        let (loss, dz) = CrossEntropyLoss()(Tensor(shape: [2, 3], values: Self.z), labels: Self.y)
        #expect(abs(loss - 0.7531091265562451) < 1e-12)
        expectAllClose(dz.array, [0.04501528658519022, 0.12236423552739882, -0.1673795221125891,
                                  0.16666666666666666, -0.33333333333333337, 0.16666666666666666],
                       atol: 1e-8, rtol: 1e-6, "dLogits")
    }

    @Test func crossEntropyLabelSmoothingHandCase() {
        let (loss, dz) = CrossEntropyLoss(labelSmoothing: 0.1)(Tensor(shape: [2, 3], values: Self.z), labels: Self.y)
        #expect(abs(loss - 0.8031091265562451) < 1e-12)
        expectAllClose(dz.array, [0.02834861991852355, 0.10569756886073216, -0.13404618877925578,
                                  0.15, -0.30000000000000004, 0.15],
                       atol: 1e-8, rtol: 1e-6, "dLogits")
    }

    /// The reference's Tiny-ImageNet LabelSmoothCELoss(ε, C): target ε/C everywhere, 1 − ε + ε/C on the
    /// label, loss = −Σ target·log_softmax / N. Evaluated directly here; must equal label_smoothing = ε.
    @Test func labelSmoothCELossOfReferenceIsTheSameLoss() {
        let n = 6, c = 9, eps = 0.1
        let logits = randomTensor([n, c], seed: 41, -4, 4)
        let labels: [Int32] = [0, 8, 3, 3, 5, 1]
        var expected = 0.0
        for row in 0..<n {
            let zr = (0..<c).map { Double(logits[row * c + $0]) }
            let m = zr.max()!
            let lse = m + log(zr.map { exp($0 - m) }.reduce(0, +))
            for j in 0..<c {
                let target = eps / Double(c) + (j == Int(labels[row]) ? 1 - eps : 0)
                expected -= target * (zr[j] - lse)
            }
        }
        expected /= Double(n)
        let (loss, _) = CrossEntropyLoss(labelSmoothing: eps)(logits, labels: labels)
        #expect(abs(loss - expected) < 1e-12)
    }

    @Test(arguments: [0.0, 0.1])
    func crossEntropyFiniteDifferences(_ smoothing: Double) {
        let logits = randomTensor([4, 7], seed: 5, -3, 3)
        let labels: [Int32] = [6, 0, 2, 2]
        let ce = CrossEntropyLoss(labelSmoothing: smoothing)
        let (_, dz) = ce(logits, labels: labels)
        let numeric = numericGradient(logits) { ce(logits, labels: labels).loss }
        expectAllClose(dz.array, numeric, atol: 2e-5, rtol: 1e-3, "dLogits vs finite differences")
    }

    @Test func crossEntropyIsStableForHugeLogits() {
        let logits = Tensor(shape: [1, 3], values: [1e30, 0, -1e30])
        let (loss, dz) = CrossEntropyLoss()(logits, labels: [Int32(1)])
        #expect(loss == Double(Float(1e30)))
        #expect(dz.array == [1, -1, 0])
    }

    @Test func topKCounting() {
        // Row 0: label 2 has the 2nd largest logit. Row 1: all equal (lower index wins ties).
        // Row 2: NaN in another class ranks above the label. Row 3: the label's logit is NaN.
        let logits = Tensor(shape: [4, 4], values: [
            0.1, 0.9, 0.5, 0.2,
            1, 1, 1, 1,
            .nan, 0.3, 0.2, 0.1,
            0, .nan, 0, 0,
        ])
        #expect(topKCorrect(logits, labels: [2, 0, 1, 1], k: 1) == 1)  // only row 1 (class 0 wins the tie)
        #expect(topKCorrect(logits, labels: [2, 3, 1, 1], k: 1) == 0)
        #expect(topKCorrect(logits, labels: [2, 3, 1, 1], k: 2) == 2)  // rows 0 and 2
        #expect(topKCorrect(logits, labels: [2, 3, 1, 1], k: 4) == 3)  // never row 3
        #expect(topKCorrect(logits, labels: [2, 3, 1, 1], k: 5) == 3)
    }

    /// Distinct logits: top-k by the counting rule equals "label among the k largest after sorting".
    @Test func topKMatchesSortingForDistinctLogits() {
        let n = 50, c = 20
        let logits = randomTensor([n, c], seed: 9, -5, 5)
        var rng = RNG(seed: 3)
        let labels = (0..<n).map { _ in Int32(rng.below(c)) }
        for k in [1, 5] {
            var expected = 0
            for row in 0..<n {
                let order = (0..<c).sorted { logits[row * c + $0] > logits[row * c + $1] }
                if order.prefix(k).contains(Int(labels[row])) { expected += 1 }
            }
            #expect(topKCorrect(logits, labels: labels, k: k) == expected)
        }
    }

    // KL, T = 4, student [0, 0], teacher [4, 0]; torch float64:
    //   kl_div(log_softmax(s/4), softmax(t/4), reduction="sum")·16/1 and its gradient w.r.t. s.
    @Test func klHandCase() {
        let (loss, ds) = KLDivergenceLoss(temperature: 4)(student: Tensor(shape: [1, 2], values: [0, 0]),
                                                          teacher: Tensor(shape: [1, 2], values: [4, 0]))
        #expect(abs(loss - 1.7751051467476389) < 1e-12)
        expectAllClose(ds.array, [-0.9242343145200196, 0.9242343145200194], atol: 1e-8, rtol: 1e-6, "dStudent")
    }

    @Test func klIsZeroForIdenticalLogits() {
        let z = randomTensor([3, 10], seed: 12, -6, 6)
        let (loss, ds) = KLDivergenceLoss()(student: z, teacher: z.copy())
        #expect(abs(loss) < 1e-12)
        #expect(ds.array.allSatisfy { abs($0) < 1e-7 })
    }

    /// A teacher probability that underflows to exactly 0 contributes p_t·log p_t = 0, not NaN.
    @Test func klZeroTeacherProbability() {
        let student = Tensor(shape: [1, 3], values: [1, 2, -3e38])
        let teacher = Tensor(shape: [1, 3], values: [0, 1, -3e38])
        let (loss, ds) = KLDivergenceLoss(temperature: 1)(student: student, teacher: teacher)
        // Two live classes: KL(softmax([0,1]) ‖ softmax([1,2])) = 0 (a shift); the dead class adds 0.
        #expect(loss.isFinite && abs(loss) < 1e-12)
        #expect(ds.array.allSatisfy { $0.isFinite })
    }

    @Test(arguments: [1.0, 4.0])
    func klFiniteDifferences(_ temperature: Double) {
        let student = randomTensor([3, 6], seed: 21, -4, 4)
        let teacher = randomTensor([3, 6], seed: 22, -4, 4)
        let kl = KLDivergenceLoss(temperature: temperature)
        let (_, ds) = kl(student: student, teacher: teacher)
        let numeric = numericGradient(student) { kl(student: student, teacher: teacher).loss }
        expectAllClose(ds.array, numeric, atol: 2e-5, rtol: 1e-3, "dStudent vs finite differences")
    }

    /// dKL/dz_s = (T/B)(p_s − p_t), checked directly.
    @Test func klGradientFormula() {
        let b = 2, c = 5, t = 4.0
        let student = randomTensor([b, c], seed: 31, -3, 3)
        let teacher = randomTensor([b, c], seed: 32, -3, 3)
        let (_, ds) = KLDivergenceLoss(temperature: t)(student: student, teacher: teacher)
        var expected: [Double] = []
        for row in 0..<b {
            func softmax(_ z: Tensor) -> [Double] {
                let e = (0..<c).map { exp(Double(z[row * c + $0]) / t) }
                let s = e.reduce(0, +)
                return e.map { $0 / s }
            }
            let ps = softmax(student), pt = softmax(teacher)
            expected += (0..<c).map { t / Double(b) * (ps[$0] - pt[$0]) }
        }
        expectAllClose(ds.array, expected, atol: 1e-8, rtol: 1e-6, "dStudent")
    }
}
