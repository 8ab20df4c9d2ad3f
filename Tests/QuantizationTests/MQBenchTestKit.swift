import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Quantization

/// Helpers of the MQBench quantizer tests (PACT, LSQ, DoReFa, fake-quant kernels, goldens). A namespace so
/// nothing clashes with other test files of this target.
enum MQBenchTestKit {
    /// A plain tensor of `values` with shape `shape` (default: 1-D).
    static func tensor(_ values: [Float], shape: [Int]? = nil) -> Tensor {
        Tensor(shape: shape ?? [values.count], values: values)
    }

    /// Random normal values.
    static func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var rng = RNG(seed: seed)
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.normal() * scale }
        return t
    }

    /// y = forward(x) then dx = backward(dy) in training mode.
    static func run(_ q: Quantizer, _ x: Tensor, dy: [Float]? = nil) -> (y: [Float], dx: [Float]) {
        let y = q.forward(x, mode: .train)
        let g = tensor(dy ?? [Float](repeating: 1, count: x.count), shape: x.shape)
        let dx = q.backward(g)
        return (y.plainArray, dx.plainArray)
    }

    /// Σ y ⊙ r in double.
    static func dot(_ y: Tensor, _ r: Tensor) -> Double {
        let a = y.plainArray, b = r.plainArray
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return s
    }

    /// Central difference of L(v) = Σ q.forward(x)·r with respect to `value[index]` (double accumulation
    /// over the float32 forward; eval mode so nothing is saved).
    static func centralDifference(_ q: Quantizer, x: Tensor, r: Tensor, value: Tensor, index: Int, h: Float) -> Double {
        let old = value[index]
        value[index] = old + h
        let lp = dot(q.forward(x, mode: .eval), r)
        value[index] = old - h
        let lm = dot(q.forward(x, mode: .eval), r)
        value[index] = old
        return (lp - lm) / (2 * Double(h))
    }
}
