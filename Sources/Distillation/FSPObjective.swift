import Kernels
import NN
import Tensors

/// Flow of solution procedure (Yim et al.; `CIFAR/distiller_zoo/FSP.py:19-48`), on feat[:-1] of both networks
/// (`utils_distill.py:131-134,324-326`: ResNet f0…f3, VGG f0…f4). For each consecutive pair (bot, top) =
/// (f_i, f_{i+1}), [B, C_b, H_b, W_b] and [B, C_t, H_t, W_t], the larger map is average-pooled to the
/// smaller one's size (`F.adaptive_avg_pool2d`; here only whole ratios H_b = r·H_t or H_t = r·H_b, r×r
/// blocks, which is what the CIFAR models give), then
///
///     G(bot, top)[b, c_t, c_b] = mean_hw top[b, c_t, hw]·bot[b, c_b, hw]        [B, C_t, C_b]
///     L = Σ_pairs mean_{b, c_t, c_b} (G_s − G_t)²                              (`compute_loss`, summed)
///
/// Backward per pair, with dG = 2(G_s − G_t)/(B·C_t·C_b):
/// dtop[b] += dG[b]·bot[b]/HW, dbot[b] += dG[b]ᵀ·top[b]/HW, then through the pooling (each pooled value's
/// gradient spread evenly over its r×r block). A middle feature receives the gradients of both its pairs.
/// The authors' FSP checks that student and teacher channels agree (`FSP.py:13-17`); so does the factory.
///
/// The authors use it only in an initialisation stage (`utils_distill.py:131-140`, `init` `:261-345`): the
/// student's feature modules train on L alone, unweighted; the main stage's L_kd is 0 (`:207-209`).
/// No parameters.
public struct FSPObjective: Objective {
    /// feat[:-1] of each network, in order; consecutive entries are paired.
    public let pairs: [FeaturePair]

    public init(pairs: [FeaturePair]) {
        precondition(pairs.count >= 2, "fsp needs at least two features")
        self.pairs = pairs
    }

    public var name: String { "fsp" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { pairs.map(\.student) }
    public var teacherFeaturePaths: [String] { pairs.map(\.teacher) }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("fsp needs the teacher's features") }
        let (l, d) = Self.loss(student: pairs.map { student.plainFeature($0.student, name) },
                               teacher: pairs.map { teacher.plainFeature($0.teacher, name) })
        return ObjectiveValue(loss: l, dLogits: nil,
                              dFeatures: Dictionary(uniqueKeysWithValues: zip(pairs.map(\.student), d)))
    }

    /// Plain features f_0…f_n of each side → L and dL/df_i for the student (plain, f_i's shape).
    public static func loss(student fs: [Tensor], teacher ft: [Tensor]) -> (loss: Double, dStudent: [Tensor]) {
        precondition(fs.count == ft.count && fs.count >= 2, "fsp: \(fs.count) student and \(ft.count) teacher features")
        for (s, t) in zip(fs, ft) {
            precondition(s.shape.prefix(2) == t.shape.prefix(2),
                         "fsp: student feature \(s.shape) and teacher feature \(t.shape) differ in batch or channels")
        }
        let d = fs.map { Tensor(shape: $0.shape) }
        var total = 0.0
        for i in 0..<(fs.count - 1) {
            let gs = matrix(bot: fs[i], top: fs[i + 1]), gt = matrix(bot: ft[i], top: ft[i + 1])
            let n = gs.g.count
            var dg = [Float](repeating: 0, count: n)
            var s = 0.0
            let k = 2 / Double(n)
            for j in 0..<n {
                let z = Double(gs.g[j]) - Double(gt.g[j])
                s += z * z
                dg[j] = Float(k * z)
            }
            total += s / Double(n)
            backward(dg, gs, dBot: d[i], dTop: d[i + 1])
        }
        return (total, d)
    }

    /// One side's pair: the pooled maps ([B, C, hw] each, the common size) and G [B, C_t, C_b].
    struct Pair {
        var bot: [Float], top: [Float]
        var g: [Float]
        var batch: Int, cb: Int, ct: Int, hw: Int
        /// Pooling ratio of bot and of top (1 = not pooled), and their sizes before pooling.
        var rb: Int, rt: Int
        var botShape: [Int], topShape: [Int]
    }

    static func matrix(bot: Tensor, top: Tensor) -> Pair {
        let hb = bot.shape[2], ht = top.shape[2]
        let rb = hb > ht ? ratio(bot.shape, top.shape) : 1, rt = ht > hb ? ratio(top.shape, bot.shape) : 1
        let b = bot.shape[0], cb = bot.shape[1], ct = top.shape[1]
        let pb = pool(bot, rb), pt = pool(top, rt)
        let hw = pb.count / (b * cb)
        var g = [Float](repeating: 0, count: b * ct * cb)
        pb.withUnsafeBufferPointer { x in
            pt.withUnsafeBufferPointer { y in
                g.withUnsafeMutableBufferPointer { g in
                    for n in 0..<b {
                        sgemm(g.baseAddress! + n * ct * cb, y.baseAddress! + n * ct * hw, transA: false,
                              x.baseAddress! + n * cb * hw, transB: true, m: ct, n: cb, k: hw, alpha: 1 / Float(hw))
                    }
                }
            }
        }
        return Pair(bot: pb, top: pt, g: g, batch: b, cb: cb, ct: ct, hw: hw, rb: rb, rt: rt,
                    botShape: bot.shape, topShape: top.shape)
    }

    /// Accumulates dL/dbot and dL/dtop (unpooled) from dG.
    static func backward(_ dg: [Float], _ p: Pair, dBot: Tensor, dTop: Tensor) {
        let b = p.batch, cb = p.cb, ct = p.ct, hw = p.hw
        var db = [Float](repeating: 0, count: b * cb * hw), dt = [Float](repeating: 0, count: b * ct * hw)
        dg.withUnsafeBufferPointer { dg in
            p.bot.withUnsafeBufferPointer { x in
                p.top.withUnsafeBufferPointer { y in
                    db.withUnsafeMutableBufferPointer { db in
                        dt.withUnsafeMutableBufferPointer { dt in
                            for n in 0..<b {
                                let g = dg.baseAddress! + n * ct * cb
                                sgemm(dt.baseAddress! + n * ct * hw, g, transA: false, x.baseAddress! + n * cb * hw, transB: false,
                                      m: ct, n: hw, k: cb, alpha: 1 / Float(hw))
                                sgemm(db.baseAddress! + n * cb * hw, g, transA: true, y.baseAddress! + n * ct * hw, transB: false,
                                      m: cb, n: hw, k: ct, alpha: 1 / Float(hw))
                            }
                        }
                    }
                }
            }
        }
        unpoolAdd(db, ratio: p.rb, into: dBot)
        unpoolAdd(dt, ratio: p.rt, into: dTop)
    }

    /// The whole ratio r = H_big/H_small (equal for W); a trap otherwise (the factory checks the shapes).
    static func ratio(_ big: [Int], _ small: [Int]) -> Int {
        let r = big[2] / small[2]
        precondition(r * small[2] == big[2] && r * small[3] == big[3],
                     "fsp: cannot pool \(big) to the spatial size of \(small) (only whole ratios)")
        return r
    }

    /// Average over r×r blocks: [B, C, H, W] → [B, C, (H/r)·(W/r)] (a copy when r = 1).
    static func pool(_ f: Tensor, _ r: Int) -> [Float] {
        let bc = f.shape[0] * f.shape[1], h = f.shape[2], w = f.shape[3]
        if r == 1 { return f.withUnsafeBufferPointer { Array($0) } }
        let ho = h / r, wo = w / r
        var out = [Float](repeating: 0, count: bc * ho * wo)
        let inv = 1 / Float(r * r)
        f.withUnsafeBufferPointer { x in
            for m in 0..<bc {
                for i in 0..<ho {
                    for j in 0..<wo {
                        var s: Float = 0
                        for u in 0..<r { for v in 0..<r { s += x[(m * h + i * r + u) * w + j * r + v] } }
                        out[(m * ho + i) * wo + j] = s * inv
                    }
                }
            }
        }
        return out
    }

    /// d += unpool(g): each pooled gradient spread as g/r² over its r×r block.
    static func unpoolAdd(_ g: [Float], ratio r: Int, into d: Tensor) {
        let bc = d.shape[0] * d.shape[1], h = d.shape[2], w = d.shape[3]
        let ho = h / r, wo = w / r
        let inv = 1 / Float(r * r)
        d.withUnsafeMutableBufferPointer { d in
            for m in 0..<bc {
                for i in 0..<h {
                    for j in 0..<w { d[(m * h + i) * w + j] += r == 1 ? g[(m * h + i) * w + j] : g[(m * ho + i / r) * wo + j / r] * inv }
                }
            }
        }
    }
}
