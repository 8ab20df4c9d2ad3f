import Testing
import Tensors
@testable import NN

/// Finite-difference gradient check for any `Layer`.
///
/// Loss L = Σ y ⊙ r for a fixed random r, so dL/dy = r. The analytic input gradient (from `backward`) and
/// every parameter gradient are compared with central differences (L(θ+h) − L(θ−h)) / 2h computed in
/// double precision over the float32 forward. Only `probes` randomly chosen coordinates of each tensor are
/// perturbed, which keeps big layers fast. Tolerance: |a − n| ≤ atol + rtol·max(|a|, |n|).
struct GradientCheck {
    var h: Float = 1e-2
    var atol: Double = 2e-3
    var rtol: Double = 2e-2
    var probes: Int = 24
    var seed: UInt64 = 7

    /// Returns the worst mismatch description, or nil when every probe passes.
    func check(_ layer: Layer, input: Tensor, mode: Mode = .train, checkInput: Bool = true) -> [String] {
        var rng = RNG(seed: seed)
        let y0 = layer.forward(input, mode: mode)
        let r = Tensor(shape: y0.shape, layout: y0.layout)
        for i in 0..<r.count { r.data[i] = rng.uniform(-1, 1) }
        layer.zeroGrad()
        let dx = layer.backward(r)

        func loss() -> Double {
            let y = layer.forward(input, mode: mode)
            let yp = y.toLayout(r.layout)
            var s = 0.0
            for i in 0..<yp.count { s += Double(yp.data[i]) * Double(r.data[i]) }
            return s
        }

        var failures: [String] = []
        func probe(_ name: String, _ value: Tensor, _ analytic: Tensor) {
            let n = min(probes, value.count)
            var picks = Set<Int>()
            while picks.count < n { picks.insert(rng.below(value.count)) }
            for i in picks.sorted() {
                let old = value.data[i]
                value.data[i] = old + h
                let lp = loss()
                value.data[i] = old - h
                let lm = loss()
                value.data[i] = old
                let numeric = (lp - lm) / (2 * Double(h))
                let a = Double(analytic.data[i])
                if abs(a - numeric) > atol + rtol * max(abs(a), abs(numeric)) {
                    failures.append("\(name)[\(i)]: analytic \(a) numeric \(numeric)")
                }
            }
        }
        if checkInput {
            let dxs = dx.toLayout(input.layout)
            probe("input", input, dxs)
        }
        for (name, p) in layer.parameters() { probe(name, p.value, p.grad) }
        _ = layer.forward(input, mode: mode)
        return failures
    }
}

/// A random tensor with entries uniform in [lo, hi).
func randomTensor(_ shape: [Int], seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
    var rng = RNG(seed: seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t.data[i] = rng.uniform(lo, hi) }
    return t
}
