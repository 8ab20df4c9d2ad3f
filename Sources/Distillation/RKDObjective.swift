import Kernels
import NN
import Tensors

/// Relational KD (Park et al.; `CIFAR/distiller_zoo/RKD.py:15-58`, on feat[-1] by `utils_distill.py:182-185`),
/// distance and angle terms with the authors' weights w_d = 25, w_a = 50. With s_i, t_i the flattened
/// features of sample i ([B, D_s], [B, D_t]):
///
///     d_ij  = √max(‖s_i‖² + ‖s_j‖² − 2 s_i·s_j, 1e-12) for i ≠ j, d_ii = 0      (`pdist`, `:47-58`)
///     d̂     = d / mean{d_ij : d_ij > 0}                    (likewise the teacher's, without gradient)
///     L_d   = smoothL1(d̂_s, d̂_t)                           (mean over B², β = 1)
///     u_ij  = normalize(s_j − s_i)  (ε = 1e-12; u_ii = 0),  ang_ijk = u_ij·u_ik
///     L_a   = smoothL1(ang_s, ang_t)                        (mean over B³)
///     L     = 25·L_d + 50·L_a
///
/// Backward: the distance term through the mean (it depends on d), the square root (zero where the clamp
/// is active and on the diagonal) and the Gram expansion, ds = 2·diag(ΣA)·s − 2·A·s with A = dr + drᵀ; the
/// angle term per anchor i: dU_i = (G_i + G_iᵀ)·U_i, through the normalisation, ds_j += de_ij, ds_i −= de_ij.
/// The angle term costs 3 B×B×D products per anchor (O(B³·D)), as the authors' bmm. No parameters.
public struct RKDObjective: Objective {
    public let pair: FeaturePair
    public var distanceWeight = 25.0
    public var angleWeight = 50.0

    public init(pair: FeaturePair) { self.pair = pair }

    public var name: String { "rkd" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { [pair.student] }
    public var teacherFeaturePaths: [String] { [pair.teacher] }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("rkd needs the teacher's features") }
        let r = loss(student: student.plainFeature(pair.student, name), teacher: teacher.plainFeature(pair.teacher, name))
        return ObjectiveValue(loss: r.loss, dLogits: nil, dFeatures: [pair.student: r.dStudent])
    }

    /// f_s [B, …], f_t [B, …] plain → 25·L_d + 50·L_a and dL/df_s (f_s's shape).
    public func loss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let b = fs.shape[0]
        precondition(ft.shape[0] == b && b >= 2, "rkd: student \(fs.shape) and teacher \(ft.shape) need one batch of ≥ 2")
        let ds = Tensor(shape: fs.shape)
        let ld = withUnsafeMutablePointers(fs, ft, ds) { s, t, g in
            Self.distance(s, t, b: b, dimS: fs.count / b, dimT: ft.count / b, ds: g, weight: distanceWeight)
        }
        let la = withUnsafeMutablePointers(fs, ft, ds) { s, t, g in
            Self.angle(s, t, b: b, dimS: fs.count / b, dimT: ft.count / b, ds: g, weight: angleWeight)
        }
        return (distanceWeight * ld + angleWeight * la, ds)
    }

    /// `pdist` of `RKD.py:47-58`: d [B, B] (diagonal 0) and whether the clamp let the gradient through.
    static func pairwiseDistances(_ e: UnsafePointer<Float>, b: Int, dim: Int) -> (d: [Float], open: [Bool]) {
        var prod = [Float](repeating: 0, count: b * b)
        prod.withUnsafeMutableBufferPointer { sgemm($0.baseAddress!, e, transA: false, e, transB: true, m: b, n: b, k: dim) }
        var sq = [Float](repeating: 0, count: b)
        for i in 0..<b { var s: Float = 0; for k in 0..<dim { s += e[i * dim + k] * e[i * dim + k] }; sq[i] = s }
        var d = [Float](repeating: 0, count: b * b), open = [Bool](repeating: false, count: b * b)
        for i in 0..<b {
            for j in 0..<b where i != j {
                let raw = sq[i] + sq[j] - 2 * prod[i * b + j]
                open[i * b + j] = raw >= 1e-12
                d[i * b + j] = max(raw, 1e-12).squareRoot()
            }
        }
        return (d, open)
    }

    /// L_d; accumulates weight·dL_d/ds into ds.
    static func distance(_ s: UnsafePointer<Float>, _ t: UnsafePointer<Float>, b: Int, dimS: Int, dimT: Int,
                         ds: UnsafeMutablePointer<Float>, weight: Double) -> Double {
        func normalized(_ d: [Float]) -> (dn: [Float], mean: Double, positive: Int) {
            var sum = 0.0, n = 0
            for v in d where v > 0 { sum += Double(v); n += 1 }
            let m = sum / Double(n)
            return (d.map { Float(Double($0) / m) }, m, n)
        }
        let (dS, open) = pairwiseDistances(s, b: b, dim: dimS)
        let (dT, _) = pairwiseDistances(t, b: b, dim: dimT)
        let ns = normalized(dS), nt = normalized(dT)
        var g = [Float](repeating: 0, count: b * b)
        let loss = smoothL1(ns.dn, nt.dn, count: b * b, dx: &g)
        // d̂ = d/m with m = Σ_{d>0} d / P: dd = g/m − (Σ g·d)/(m²·P)·[d > 0].
        var gd = 0.0
        for i in 0..<(b * b) { gd += Double(g[i]) * Double(dS[i]) }
        let m = ns.mean, c = gd / (m * m * Double(ns.positive))
        var a = [Double](repeating: 0, count: b * b)
        for i in 0..<b {
            for j in 0..<b where i != j && open[i * b + j] {
                let k = i * b + j
                let dd = Double(g[k]) / m - (dS[k] > 0 ? c : 0)
                a[k] = dd / (2 * Double(dS[k]))
            }
        }
        // raw_ij = ‖s_i‖² + ‖s_j‖² − 2 s_i·s_j: ds_i = 2·s_i·Σ_j A_ij − 2·Σ_j A_ij s_j with A = dr + drᵀ.
        var sym = [Float](repeating: 0, count: b * b)
        var rowSum = [Double](repeating: 0, count: b)
        for i in 0..<b {
            for j in 0..<b {
                let v = a[i * b + j] + a[j * b + i]
                sym[i * b + j] = Float(-2 * weight * v)
                rowSum[i] += v
            }
        }
        sym.withUnsafeBufferPointer { sgemm(ds, $0.baseAddress!, transA: false, s, transB: false, m: b, n: dimS, k: b, beta: 1) }
        for i in 0..<b {
            let f = Float(2 * weight * rowSum[i])
            for k in 0..<dimS { ds[i * dimS + k] += f * s[i * dimS + k] }
        }
        return loss
    }

    /// L_a; accumulates weight·dL_a/ds into ds.
    static func angle(_ s: UnsafePointer<Float>, _ t: UnsafePointer<Float>, b: Int, dimS: Int, dimT: Int,
                      ds: UnsafeMutablePointer<Float>, weight: Double) -> Double {
        var us = [Float](repeating: 0, count: b * dimS), ut = [Float](repeating: 0, count: b * dimT)
        var angS = [Float](repeating: 0, count: b * b), angT = [Float](repeating: 0, count: b * b)
        var g = [Float](repeating: 0, count: b * b), sym = [Float](repeating: 0, count: b * b)
        var du = [Float](repeating: 0, count: b * dimS)
        let n3 = b * b * b
        var total = 0.0
        for i in 0..<b {
            // U_i rows: normalize(s_j − s_i), j = 0..<B.
            for j in 0..<b { for k in 0..<dimS { us[j * dimS + k] = s[j * dimS + k] - s[i * dimS + k] } }
            for j in 0..<b { for k in 0..<dimT { ut[j * dimT + k] = t[j * dimT + k] - t[i * dimT + k] } }
            let norms = us.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: b, n: dimS) }
            _ = ut.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: b, n: dimT) }
            us.withUnsafeBufferPointer { u in
                angS.withUnsafeMutableBufferPointer { sgemm($0.baseAddress!, u.baseAddress!, transA: false, u.baseAddress!, transB: true, m: b, n: b, k: dimS) }
            }
            ut.withUnsafeBufferPointer { u in
                angT.withUnsafeMutableBufferPointer { sgemm($0.baseAddress!, u.baseAddress!, transA: false, u.baseAddress!, transB: true, m: b, n: b, k: dimT) }
            }
            // smoothL1 of this anchor's B² triples, with the mean over all B³ folded into the scale.
            total += smoothL1(angS, angT, count: b * b, dx: &g, scale: weight / Double(b)) * Double(b * b)
            for j in 0..<b { for k in 0..<b { sym[j * b + k] = g[j * b + k] + g[k * b + j] } }
            us.withUnsafeBufferPointer { u in
                sym.withUnsafeBufferPointer { m in
                    du.withUnsafeMutableBufferPointer { sgemm($0.baseAddress!, m.baseAddress!, transA: false, u.baseAddress!, transB: false, m: b, n: dimS, k: b) }
                }
                du.withUnsafeMutableBufferPointer { normalizeRowsBackward($0.baseAddress!, normalized: u.baseAddress!, norms: norms, n: dimS) }
            }
            for j in 0..<b {
                for k in 0..<dimS {
                    let v = du[j * dimS + k]
                    ds[j * dimS + k] += v
                    ds[i * dimS + k] -= v
                }
            }
        }
        return total / Double(n3)
    }
}
