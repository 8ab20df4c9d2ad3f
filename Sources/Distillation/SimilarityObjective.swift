import Kernels
import NN
import Tensors

/// Similarity-preserving KD (Tung & Mori; `CIFAR/distiller_zoo/SP.py:16-28`, on feat[-2] by
/// `utils_distill.py:177-181`). With F_s [B, D_s] and F_t [B, D_t] the flattened features:
///
///     G = normalize_rows(F Fᵀ)  [B, B]   (L2 per row, ε = 1e-12)
///     L = Σ_{ij} (G_t − G_s)²_{ij} / B²
///
/// Backward: dG_s = 2(G_s − G_t)/B², through the row normalisation to dP (P = F_s F_sᵀ), then
/// dF_s = (dP + dPᵀ)·F_s. No parameters.
public struct SimilarityObjective: LayerwiseFeatureObjective {
    public let pairs: [FeaturePair]

    public init(pairs: [FeaturePair]) { self.pairs = pairs }

    public var name: String { "sp" }

    /// One layer: f_s [B, …], f_t [B, …] (any layout) → L and dL/df_s (f_s's shape, plain).
    public static func layerLoss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let fs = fs.toLayout(.plain), ft = ft.toLayout(.plain)
        let b = fs.shape[0]
        precondition(ft.shape[0] == b, "sp: student batch \(fs.shape) and teacher batch \(ft.shape) differ")
        let ds = fs.count / b, dt = ft.count / b
        var gs = [Float](repeating: 0, count: b * b), gt = [Float](repeating: 0, count: b * b)
        var sNorms: [Double] = []
        withUnsafeMutablePointers(fs, ft) { f, t in
            gs.withUnsafeMutableBufferPointer { g in
                sgemm(g.baseAddress!, f, transA: false, f, transB: true, m: b, n: b, k: ds)
                sNorms = normalizeRows(g.baseAddress!, rows: b, n: b)
            }
            gt.withUnsafeMutableBufferPointer { g in
                sgemm(g.baseAddress!, t, transA: false, t, transB: true, m: b, n: b, k: dt)
                _ = normalizeRows(g.baseAddress!, rows: b, n: b)
            }
        }
        var loss = 0.0
        var dg = [Float](repeating: 0, count: b * b)
        let scale = 2 / Double(b * b)
        for i in 0..<(b * b) {
            let z = Double(gt[i]) - Double(gs[i])
            loss += z * z
            dg[i] = Float(-scale * z)
        }
        loss /= Double(b * b)
        gs.withUnsafeBufferPointer { u in
            dg.withUnsafeMutableBufferPointer { normalizeRowsBackward($0.baseAddress!, normalized: u.baseAddress!, norms: sNorms, n: b) }
        }
        var sym = [Float](repeating: 0, count: b * b)
        for i in 0..<b { for j in 0..<b { sym[i * b + j] = dg[i * b + j] + dg[j * b + i] } }
        let df = Tensor(shape: fs.shape)
        withUnsafeMutablePointers(df, fs) { df, f in
            sym.withUnsafeBufferPointer { sgemm(df, $0.baseAddress!, transA: false, f, transB: false, m: b, n: ds, k: b) }
        }
        return (loss, df)
    }
}
