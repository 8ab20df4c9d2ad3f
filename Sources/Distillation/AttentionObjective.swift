import NN
import Tensors

/// Attention transfer (Zagoruyko & Komodakis; `CIFAR/distiller_zoo/AT.py:15-29`, applied to feat[1:-1] by
/// `utils_distill.py:167-171`), p = 2. For each feature pair f_s, f_t [B, C, H, W]:
///
///     a(f)[b, :] = normalize( mean_c f[b, c, :]² )        (a row of H·W values, L2-normalised, ε = 1e-12)
///     L_layer    = mean_{b, hw} (a(f_s) − a(f_t))²
///     L          = Σ_layers L_layer
///
/// Backward: dL/da_s = 2(a_s − a_t)/(B·HW), through the row normalisation, then dL/df = dq·2f/C.
/// Student and teacher maps must have equal batch and spatial sizes (the authors' adaptive pooling of the larger map never
/// triggers for the paper's pairs). No parameters.
public struct AttentionObjective: LayerwiseFeatureObjective {
    public let pairs: [FeaturePair]

    public init(pairs: [FeaturePair]) { self.pairs = pairs }

    public var name: String { "at" }

    /// One layer: f_s, f_t plain [B, C, H, W] (or [B, C, HW]) → L_layer and dL/df_s (plain, f_s's shape).
    public static func layerLoss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        requireSameMaps(fs, ft, "at")
        let b = fs.shape[0], c = fs.shape[1], hw = fs.count / (b * c)
        let aS = attention(fs), aT = attention(ft)
        var loss = 0.0
        let scale = 2 / Double(b * hw)
        var da = [Float](repeating: 0, count: b * hw)
        for i in 0..<(b * hw) {
            let z = Double(aS.map[i]) - Double(aT.map[i])
            loss += z * z
            da[i] = Float(scale * z)
        }
        loss /= Double(b * hw)
        aS.map.withUnsafeBufferPointer { u in
            da.withUnsafeMutableBufferPointer { normalizeRowsBackward($0.baseAddress!, normalized: u.baseAddress!, norms: aS.norms, n: hw) }
        }
        let df = Tensor(shape: fs.shape)
        let k = Float(2) / Float(c)
        withUnsafeMutablePointers(df, fs) { df, f in
            for n in 0..<b {
                for ch in 0..<c {
                    let o = (n * c + ch) * hw
                    for i in 0..<hw { df[o + i] = da[n * hw + i] * k * f[o + i] }
                }
            }
        }
        return (loss, df)
    }

    /// a(f) [B, HW] and the row norms before normalisation.
    static func attention(_ f: Tensor) -> (map: [Float], norms: [Double]) {
        let b = f.shape[0], c = f.shape[1], hw = f.count / (b * c)
        var q = [Float](repeating: 0, count: b * hw)
        f.withUnsafeBufferPointer { f in
            for n in 0..<b {
                for i in 0..<hw {
                    var s = 0.0
                    for ch in 0..<c { let v = Double(f[(n * c + ch) * hw + i]); s += v * v }
                    q[n * hw + i] = Float(s / Double(c))
                }
            }
        }
        let norms = q.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: b, n: hw) }
        return (q, norms)
    }
}
