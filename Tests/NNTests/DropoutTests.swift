import TestSupport
import Testing
import Tensors
@testable import NN

/// Re-seeds the dropout's generator before every forward, so each forward draws the same mask and finite
/// differences see a fixed function.
final class FixedMaskDropout: Layer {
    let dropout: Dropout
    let start: RNG

    init(_ dropout: Dropout) {
        self.dropout = dropout
        start = dropout.rng
    }

    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        dropout.rng = start
        return dropout.forward(x, mode: mode)
    }

    func backward(_ dy: Tensor) -> Tensor { dropout.backward(dy) }
}

struct DropoutTests {
    typealias K = LayerTestKit

    @Test func maskStatisticsAndScale() {
        let p: Float = 0.3
        let drop = Dropout(probability: p, seed: 1)
        let x = randomTensor([100, 1000], seed: 2, 0.5, 1.5)
        let y = drop.forward(x, mode: .train)
        var zeros = 0, badScale = 0
        for i in 0..<x.count {
            if y[i] == 0 { zeros += 1 } else if abs(y[i] - x[i] / (1 - p)) > 1e-6 { badScale += 1 }
        }
        #expect(abs(Double(zeros) / Double(x.count) - 0.3) < 0.005)
        #expect(badScale == 0)
        // Backward applies the same scaled mask.
        let dy = randomTensor(x.shape, seed: 3)
        let dx = drop.backward(dy)
        var mismatch = 0
        for i in 0..<x.count where abs(dx[i] - dy[i] * y[i] / x[i]) > 1e-5 { mismatch += 1 }
        #expect(mismatch == 0)
    }

    @Test func evalIsIdentityAndRNGAdvancesOnlyInTraining() {
        let drop = Dropout(probability: 0.5, seed: 4)
        let x = randomTensor([8, 16], seed: 5)
        let before = drop.rng
        #expect(drop.forward(x, mode: .eval) === x)
        #expect(drop.rng == before)
        let dy = randomTensor([8, 16], seed: 6)
        #expect(drop.backward(dy).array == dy.array)
        _ = drop.forward(x, mode: .train)
        #expect(drop.rng != before)
    }

    @Test func extremeProbabilities() {
        let x = randomTensor([4, 16], seed: 7)
        #expect(Dropout(probability: 0, seed: 1).forward(x, mode: .train).array == x.array)
        #expect(Dropout(probability: 1, seed: 1).forward(x, mode: .train).array.allSatisfy { $0 == 0 })
    }

    /// The mask is drawn in logical order, so the layout does not change which elements drop.
    @Test(arguments: LayerTestKit.layouts)
    func layoutIndependentAndFiniteDifferences(layout: Layout) {
        let x = randomTensor([2, 16, 3, 3], seed: 8)
        let plain = Dropout(probability: 0.4, seed: 9).forward(x, mode: .train)
        let drop = Dropout(probability: 0.4, seed: 9)
        let y = drop.forward(x.toLayout(layout), mode: .train)
        #expect(y.layout == layout && y.plainArray == plain.array)
        let failures = GradientCheck().check(FixedMaskDropout(Dropout(probability: 0.4, seed: 10)), input: x.toLayout(layout))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// A checkpoint restores the generator, so training resumes with the same masks.
    @Test func stateRestores() throws {
        let a = Dropout(probability: 0.5, seed: 11)
        let x = randomTensor([4, 32], seed: 12)
        _ = a.forward(x, mode: .train)
        let saved = a.rng
        let next = a.forward(x, mode: .train)
        let b = Dropout(probability: 0.5, seed: 99)
        b.rng = saved
        #expect(b.forward(x, mode: .train).array == next.array)
    }
}
