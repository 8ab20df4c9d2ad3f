import Kernels
import NN
import Tensors

/// Neuron selectivity transfer (Huang & Wang; `CIFAR/distiller_zoo/NST.py:16-42`, feat[1:-1]), polynomial
/// kernel k(a, b) = (a·b)². For each pair f_s [B, C_s, H, W], f_t [B, C_t, H, W]: reshape to [B, C, HW],
/// L2-normalise each channel over HW (ε = 1e-12) to S_b [C_s, HW], T_b [C_t, HW], then with
/// G_b = S_b S_bᵀ [C_s, C_s] and H_b = T_b S_bᵀ [C_t, C_s]:
///
///     L_layer = mean_{b,i,j} (T_b T_bᵀ)²  +  mean_{b,i,j} G_b²  −  2·mean_{b,i,j} H_b²
///     L       = Σ_layers L_layer                      (the teacher term is detached: a constant)
///
/// Backward per sample: dS_b = 4/(B·C_s²)·G_b S_b − 4/(B·C_t·C_s)·H_bᵀ T_b, then through the channel
/// normalisation. No parameters.
public struct NSTObjective: LayerwiseFeatureObjective {
    public let pairs: [FeaturePair]

    public init(pairs: [FeaturePair]) { self.pairs = pairs }

    public var name: String { "nst" }

    /// One layer: [B, C_s, H, W] and [B, C_t, H, W] (equal B, H, W; any layout) → L_layer and dL/df_s (plain).
    public static func layerLoss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let fs = fs.toLayout(.plain), ft = ft.toLayout(.plain)
        let b = fs.shape[0], cs = fs.shape[1], ct = ft.shape[1], hw = fs.count / (b * cs)
        precondition(ft.shape[0] == b && ft.count / (b * ct) == hw && Array(fs.shape.dropFirst(2)) == Array(ft.shape.dropFirst(2)),
                     "nst: student feature \(fs.shape) and teacher feature \(ft.shape) differ in batch or spatial size")
        let s = fs.copy(), t = ft.copy()
        let sNorms = s.withUnsafeMutablePointer { normalizeRows($0, rows: b * cs, n: hw) }
        _ = t.withUnsafeMutablePointer { normalizeRows($0, rows: b * ct, n: hw) }
        let ds = Tensor(shape: fs.shape)
        var gss = [Float](repeating: 0, count: cs * cs), gts = [Float](repeating: 0, count: ct * cs)
        var gtt = [Float](repeating: 0, count: ct * ct)
        var sumSS = 0.0, sumTS = 0.0, sumTT = 0.0
        // dL/dG = 2G/(B·C_s²) and dS = (dG + dGᵀ)·S = 2·dG·S; cross: dL/dH = −4H/(B·C_t·C_s), dS += dHᵀ·T.
        let kSS = Float(4 / Double(b * cs * cs)), kTS = Float(-4 / Double(b * ct * cs))
        withUnsafeMutablePointers(s, t, ds) { s, t, ds in
            for n in 0..<b {
                let sb = s + n * cs * hw, tb = t + n * ct * hw, db = ds + n * cs * hw
                gss.withUnsafeMutableBufferPointer { g in
                    sgemm(g.baseAddress!, sb, transA: false, sb, transB: true, m: cs, n: cs, k: hw)
                    for i in 0..<(cs * cs) { let v = Double(g[i]); sumSS += v * v }
                }
                gts.withUnsafeMutableBufferPointer { g in
                    sgemm(g.baseAddress!, tb, transA: false, sb, transB: true, m: ct, n: cs, k: hw)
                    for i in 0..<(ct * cs) { let v = Double(g[i]); sumTS += v * v }
                }
                gtt.withUnsafeMutableBufferPointer { g in
                    sgemm(g.baseAddress!, tb, transA: false, tb, transB: true, m: ct, n: ct, k: hw)
                    for i in 0..<(ct * ct) { let v = Double(g[i]); sumTT += v * v }
                }
                gss.withUnsafeBufferPointer { g in sgemm(db, g.baseAddress!, transA: false, sb, transB: false, m: cs, n: hw, k: cs, alpha: kSS) }
                gts.withUnsafeBufferPointer { g in
                    sgemm(db, g.baseAddress!, transA: true, tb, transB: false, m: cs, n: hw, k: ct, alpha: kTS, beta: 1)
                }
            }
            normalizeRowsBackward(ds, normalized: s, norms: sNorms, n: hw)
        }
        let loss = sumTT / Double(b * ct * ct) + sumSS / Double(b * cs * cs) - 2 * sumTS / Double(b * ct * cs)
        return (loss, ds)
    }
}
