import Kernels
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

    /// One layer: f_s, f_t [B, C, H, W] (any layout, or plain [B, C, HW]) → L_layer and dL/df_s (f_s's shape and layout,
    /// so the tap adds it to the incoming gradient without a conversion).
    public static func layerLoss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        requireSameMaps(fs, ft, "at")
        let b = fs.shape[0], hw = fs.count / (b * fs.shape[1])
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
        return (loss, attentionBackward(da, fs))
    }

    /// a(f) [B, HW] and the row norms before normalisation; f in any layout (each position's sum runs over the
    /// channels in ascending order, in Double, so every layout gives the same bits). Parallel over the batch.
    static func attention(_ f: Tensor) -> (map: [Float], norms: [Double]) {
        let b = f.shape[0], c = f.shape[1], hw = f.count / (b * c), bk = f.layout.block
        var q = [Float](repeating: 0, count: b * hw)
        f.withUnsafeBufferPointer { f in
            q.withUnsafeMutableBufferPointer { q in
                parallelFor(b) { n in
                    var s = [Double](repeating: 0, count: hw)
                    for cb in 0..<(c / bk) {
                        let base = (n * (c / bk) + cb) * hw * bk
                        for i in 0..<hw {
                            var acc = s[i]
                            for j in 0..<bk { let v = Double(f[base + i * bk + j]); acc += v * v }
                            s[i] = acc
                        }
                    }
                    for i in 0..<hw { q[n * hw + i] = Float(s[i] / Double(c)) }
                }
            }
        }
        let norms = q.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: b, n: hw) }
        return (q, norms)
    }

    /// dL/df = dL/dq · 2f/C from dL/dq [B, HW] (after the normalisation's backward), in f's layout; parallel over the batch.
    static func attentionBackward(_ dq: [Float], _ f: Tensor) -> Tensor {
        let b = f.shape[0], c = f.shape[1], hw = f.count / (b * c), bk = f.layout.block
        let df = Tensor(shape: f.shape, layout: f.layout, zeroed: false)
        let k = Float(2) / Float(c)
        dq.withUnsafeBufferPointer { dq in
            withUnsafeMutablePointers(df, f) { df, f in
                parallelFor(b) { n in
                    for cb in 0..<(c / bk) {
                        let base = (n * (c / bk) + cb) * hw * bk
                        for i in 0..<hw {
                            let g = dq[n * hw + i] * k
                            for j in 0..<bk { df[base + i * bk + j] = g * f[base + i * bk + j] }
                        }
                    }
                }
            }
        }
        return df
    }
}
