import NN
import Tensors

/// Finite-difference gradient check for any `Layer`, shared by every test target (TestSupport), with an
/// option for networks with many ReLU kinks.
///
/// Loss L = Σ y ⊙ r for a fixed random r, so dL/dy = r. The analytic input gradient (from `backward`) and
/// every parameter gradient are compared with central differences (L(θ+h) − L(θ−h)) / 2h computed in
/// double precision over the float32 forward. Only `probes` randomly chosen coordinates of each tensor are
/// perturbed, which keeps big layers fast. Tolerance: |a − n| ≤ atol + rtol·max(|a|, |n|).
///
/// `skipNonSmooth`: in a conv → BN → ReLU stack, a weight or BN parameter moves a whole channel, so some
/// pre-activation often lies within h of a ReLU kink (seen: a BN output 4.6e-4 from zero). A kink at distance
/// z₀ < h with slope change r adds r·(h − z₀) to the second difference Δ² = L(θ+h) + L(θ−h) − 2L(θ) and
/// exactly Δ²/2h to the central difference. With the option on, probes with |Δ²|/2h > atol are skipped
/// (the kink error of the others is at most atol, on top of the comparison tolerance). A wrong gradient
/// still fails: its error is not a second difference. More than `maxSkippedFraction` of the probes
/// skipped is a failure of its own (strong curvature also trips the test; use a smaller h).
public struct GradientCheck {
    public var h: Float
    public var atol: Double
    public var rtol: Double
    public var probes: Int
    public var seed: UInt64
    public var skipNonSmooth: Bool
    public var maxSkippedFraction: Double

    public init(h: Float = 1e-2, atol: Double = 2e-3, rtol: Double = 2e-2, probes: Int = 24, seed: UInt64 = 7,
                skipNonSmooth: Bool = false, maxSkippedFraction: Double = 0.25) {
        self.h = h
        self.atol = atol
        self.rtol = rtol
        self.probes = probes
        self.seed = seed
        self.skipNonSmooth = skipNonSmooth
        self.maxSkippedFraction = maxSkippedFraction
    }

    /// Returns a description of every failing probe; empty when all pass.
    public func check(_ layer: Layer, input: Tensor, mode: Mode = .train, checkInput: Bool = true) -> [String] {
        var rng = RNG(seed: seed)
        let y0 = layer.forward(input, mode: mode)
        let r = Tensor(shape: y0.shape, layout: y0.layout)
        r.withUnsafeMutablePointer { p in for i in 0..<r.count { p[i] = rng.uniform(-1, 1) } }
        layer.zeroGrad()
        let dx = layer.backward(r)

        func loss() -> Double {
            let y = layer.forward(input, mode: mode)
            let yp = y.toLayout(r.layout), n = yp.count
            var s = 0.0
            withUnsafeMutablePointers(yp, r) { yp, r in for i in 0..<n { s += Double(yp[i]) * Double(r[i]) } }
            return s
        }

        let l0 = skipNonSmooth ? loss() : 0

        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= atol + rtol * max(abs(a), abs(b)) }

        var failures: [String] = []
        var probed = 0, skipped = 0
        func probe(_ name: String, _ value: Tensor, _ analytic: Tensor) {
            let n = min(probes, value.count)
            var picks = Set<Int>()
            while picks.count < n { picks.insert(rng.below(value.count)) }
            for i in picks.sorted() {
                probed += 1
                let old = value[i]
                value[i] = old + h
                let lp = loss()
                value[i] = old - h
                let lm = loss()
                value[i] = old
                let numeric = (lp - lm) / (2 * Double(h))
                if skipNonSmooth && abs(lp + lm - 2 * l0) / (2 * Double(h)) > atol {
                    skipped += 1
                    continue
                }
                let a = Double(analytic[i])
                if !close(a, numeric) { failures.append("\(name)[\(i)]: analytic \(a) numeric \(numeric)") }
            }
        }
        if checkInput {
            let dxs = dx.toLayout(input.layout)
            probe("input", input, dxs)
        }
        for (name, p) in layer.parameters() { probe(name, p.value, p.grad) }
        _ = layer.forward(input, mode: mode)
        if Double(skipped) > maxSkippedFraction * Double(probed) {
            failures.append("\(skipped) of \(probed) probes non-smooth; use a smaller h or another seed")
        }
        return failures
    }
}

/// A random tensor with entries uniform in [lo, hi).
public func randomTensor(_ shape: [Int], seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
    var rng = RNG(seed: seed)
    let t = Tensor(shape: shape)
    t.withUnsafeMutablePointer { p in for i in 0..<t.count { p[i] = rng.uniform(lo, hi) } }
    return t
}
