import Foundation
import Kernels
import NN
import Tensors

/// CRD's two memory banks and its NCE loss (Tian et al.; the authors' `CIFAR/crd/memory.py:6-98` and
/// `crd/criterion.py:61-91`), a leaf of the module tree whose state is the authors' buffers:
///
///     params      [5]     K, T, Z_v1, Z_v2, momentum (Z < 0 until the first call; memory.py:22)
///     memory_v1   [N, D]  the student's embeddings of every training sample (v1 = v_s)
///     memory_v2   [N, D]  the teacher's (v2 = v_t)
///
/// both initialised U(−a, a) with a = 1/√(D/3), memory_v1 first (memory.py:23-25). For a batch of
/// embeddings v_s, v_t [B, D] (unit rows) and contrast indices idx [B, K+1] (column 0: the sample itself):
///
///     out_s[b,k] = exp(⟨memory_v2[idx[b,k]], v_s[b]⟩/T)/Z_v1     (student anchor, teacher memory; memory.py:55-58)
///     out_t[b,k] = exp(⟨memory_v1[idx[b,k]], v_t[b]⟩/T)/Z_v2     (teacher anchor, student memory; :50-53)
///
/// Z_v1, Z_v2 are set once, on the first call, to mean(exp(⟨·,·⟩/T))·N over that batch's B(K+1) scores
/// (:61-68), stored as float32 in `params` and used from there. The NCE loss of each side (criterion.py:69-91),
/// with c = K/N (m·P_n) and ε = 1e-7:
///
///     L = −(1/B)·Σ_b [ log(P_b0/(P_b0 + c + ε)) + Σ_{k≥1} log(c/(P_bk + c + ε)) ]
///     dL/ds_b0 = −(c + ε)/(B·T·(P_b0 + c + ε)),   dL/ds_bk = P_bk/(B·T·(P_bk + c + ε))   (s = the dot product)
///
/// and the objective is L(out_s) + L(out_t); dv_s = Σ_k dL/ds_bk·memory_v2[idx[b,k]], dv_t likewise. The
/// banks take no gradient (`.detach()`, :50). After the scores, each batch sample's rows move (:75-96):
/// memory_v1[i] ← normalize(m·memory_v1[i] + (1 − m)·v_s), memory_v2[i] likewise with v_t, m = 0.5.
public final class ContrastMemory: Layer {
    public let count: Int
    public let dimension: Int
    /// [K, T, Z_v1, Z_v2, momentum].
    public let params: Buffer
    /// [N, D], the student side.
    public let memoryStudent: Buffer
    /// [N, D], the teacher side.
    public let memoryTeacher: Buffer

    /// `count`: N, the training-set size; `dimension`: D (feat_dim); `negatives`: K; `temperature`: T
    /// (nce_t); `momentum`: nce_m. Draws memory_v1 then memory_v2 from `rng`.
    public init(count: Int, dimension: Int, negatives: Int, temperature: Double, momentum: Double, rng: inout RNG) {
        precondition(count >= 1 && dimension >= 1 && negatives >= 1, "ContrastMemory(N \(count), D \(dimension), K \(negatives))")
        self.count = count
        self.dimension = dimension
        params = Buffer(Tensor(shape: [5], values: [Float(negatives), Float(temperature), -1, -1, Float(momentum)]))
        let a = 1 / (Float(dimension) / 3).squareRoot()
        func bank() -> Tensor {
            let t = Tensor(shape: [count, dimension], zeroed: false)
            t.withUnsafeMutablePointer { p in for i in 0..<t.count { p[i] = rng.uniform(-a, a) } }
            return t
        }
        memoryStudent = Buffer(bank())
        memoryTeacher = Buffer(bank())
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor { preconditionFailure("ContrastMemory has no forward; call contrast") }
    public func backward(_ dy: Tensor) -> Tensor { preconditionFailure("ContrastMemory has no backward; call contrast") }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        [("params", params), ("memory_v1", memoryStudent), ("memory_v2", memoryTeacher)]
    }

    /// Z_v1 and Z_v2 (negative until the first call).
    public var normalization: (student: Float, teacher: Float) { (params.value[2], params.value[3]) }

    /// Loss L(out_s) + L(out_t) and dL/dv_s, dL/dv_t [B, D] for unit embeddings v_s, v_t [B, D] and contrast
    /// indices [B, K+1]. Sets Z on the first call; leaves the banks unchanged (`update` moves them).
    public func contrast(student vs: Tensor, teacher vt: Tensor, indices idx: ContrastIndices)
        -> (loss: Double, dStudent: Tensor, dTeacher: Tensor) {
        let b = vs.shape[0], d = dimension, w = idx.width
        precondition(vs.shape == [b, d] && vt.shape == [b, d] && idx.rows == b,
                     "crd: embeddings \(vs.shape), \(vt.shape) and contrast indices [\(idx.rows), \(w)] for D = \(d)")
        let t = params.value[1]
        if params.value[2] < 0 || params.value[3] < 0 {
            // memory.py:61-68: Z = mean(out)·N on the first batch, stored (float32) before use.
            let (ss, st) = scoreSums(vs, vt, idx)
            let n = Double(b * w), size = Double(count)
            if params.value[2] < 0 { params.value[2] = Float(ss / n * size) }
            if params.value[3] < 0 { params.value[3] = Float(st / n * size) }
        }
        let zs = params.value[2], zt = params.value[3]
        let c = Float(Double(w - 1) * (1 / Double(count))), eps: Float = 1e-7
        let invBT = 1 / (Float(b) * t)
        let dvs = Tensor(shape: [b, d]), dvt = Tensor(shape: [b, d])
        var rowLoss = [Double](repeating: 0, count: 2 * b)
        rowLoss.withUnsafeMutableBufferPointer { rowLoss in
            withUnsafeMutablePointers(vs, vt, dvs, dvt) { vs, vt, dvs, dvt in
                memoryStudent.value.withUnsafeMutablePointer { ms in
                    memoryTeacher.value.withUnsafeMutablePointer { mt in
                        idx.values.withUnsafeBufferPointer { idx in
                            parallelFor(b) { r in
                                let vsr = vs + r * d, vtr = vt + r * d, gs = dvs + r * d, gt = dvt + r * d
                                var ls = 0.0, lt = 0.0
                                for j in 0..<w {
                                    let i = Int(idx[r * w + j])
                                    let rowT = mt + i * d, rowS = ms + i * d
                                    let ps = exp(dot(rowT, vsr, d) / t) / zs
                                    let pt = exp(dot(rowS, vtr, d) / t) / zt
                                    let dss: Float, dst: Float
                                    if j == 0 {
                                        ls -= Double(log1p((c + eps) / ps))
                                        lt -= Double(log1p((c + eps) / pt))
                                        dss = -(c + eps) / (ps + c + eps) * invBT
                                        dst = -(c + eps) / (pt + c + eps) * invBT
                                    } else {
                                        ls -= Double(log1p((ps + eps) / c))
                                        lt -= Double(log1p((pt + eps) / c))
                                        dss = ps / (ps + c + eps) * invBT
                                        dst = pt / (pt + c + eps) * invBT
                                    }
                                    axpy(gs, dss, rowT, d)
                                    axpy(gt, dst, rowS, d)
                                }
                                rowLoss[r] = ls
                                rowLoss[b + r] = lt
                            }
                        }
                    }
                }
            }
        }
        var ls = 0.0, lt = 0.0
        for r in 0..<b { ls += rowLoss[r]; lt += rowLoss[b + r] }
        return (-ls / Double(b) - lt / Double(b), dvs, dvt)
    }

    /// Σ exp(s/T) over the batch's scores of each side (the first call's Z).
    private func scoreSums(_ vs: Tensor, _ vt: Tensor, _ idx: ContrastIndices) -> (Double, Double) {
        let b = vs.shape[0], d = dimension, w = idx.width, t = params.value[1]
        var sums = [Double](repeating: 0, count: 2 * b)
        sums.withUnsafeMutableBufferPointer { sums in
            withUnsafeMutablePointers(vs, vt, memoryStudent.value, memoryTeacher.value) { vs, vt, ms, mt in
                idx.values.withUnsafeBufferPointer { idx in
                    parallelFor(b) { r in
                        var ss = 0.0, st = 0.0
                        for j in 0..<w {
                            let i = Int(idx[r * w + j])
                            ss += Double(exp(dot(mt + i * d, vs + r * d, d) / t))
                            st += Double(exp(dot(ms + i * d, vt + r * d, d) / t))
                        }
                        sums[r] = ss
                        sums[b + r] = st
                    }
                }
            }
        }
        var ss = 0.0, st = 0.0
        for r in 0..<b { ss += sums[r]; st += sums[b + r] }
        return (ss, st)
    }

    /// The momentum update of the batch's own rows (memory.py:75-96), after `contrast`:
    /// memory_v1[i_b] ← u/‖u‖ with u = m·memory_v1[i_b] + (1 − m)·v_s[b], memory_v2 with v_t.
    public func update(student vs: Tensor, teacher vt: Tensor, samples: [Int]) {
        let d = dimension, m = params.value[4]
        precondition(vs.shape == [samples.count, d] && vt.shape == [samples.count, d], "crd update: \(vs.shape), \(vt.shape), \(samples.count) samples")
        for (bank, v) in [(memoryStudent.value, vs), (memoryTeacher.value, vt)] {
            withUnsafeMutablePointers(bank, v) { bank, v in
                for (r, i) in samples.enumerated() {
                    precondition(i >= 0 && i < count, "crd: sample index \(i) outside the memory of \(count)")
                    let row = bank + i * d, vr = v + r * d
                    var s = 0.0
                    for j in 0..<d {
                        row[j] = row[j] * m + vr[j] * (1 - m)
                        s += Double(row[j]) * Double(row[j])
                    }
                    let norm = Float(s.squareRoot())
                    for j in 0..<d { row[j] /= norm }
                }
            }
        }
    }
}

/// Contrast indices of a batch, [B, K+1] row-major: column 0 the sample itself ("exact" mode), then its K
/// negatives (the authors' `contrast_idx`).
public struct ContrastIndices: Equatable, Sendable {
    public let rows: Int
    public let width: Int
    public var values: [Int32]

    public init(rows: Int, width: Int, values: [Int32]) {
        precondition(values.count == rows * width, "\(values.count) contrast indices for [\(rows), \(width)]")
        self.rows = rows
        self.width = width
        self.values = values
    }

    public func row(_ r: Int) -> ArraySlice<Int32> { values[(r * width)..<((r + 1) * width)] }
}

/// CRD's "exact" negatives (`CIFAR/dataset/cifar10.py:30-103`, `cifar100.py` the same): for sample i of
/// class y, contrast indices [i, n_1 … n_K] with the n_k drawn uniformly from the samples of the other
/// classes, without replacement unless K exceeds their number M_y (`np.random.choice(cls_negative[y], k,
/// replace=k > M_y)`, :99-101).
///
/// The authors' loader workers draw from numpy's global generator. Here sample i in epoch e draws from its
/// own stream `rng.derived(e).derived(i)`: negatives are a function of (seed, epoch, sample) alone, whatever
/// the batch, the thread count or an interruption. Without replacement: Floyd's algorithm (K draws, a bitset
/// of M_y bits) over positions in `cls_negative[y]`, the other classes' indices class by class in index
/// order (:49-58), mapped back to dataset indices. The last batch's draw is kept, so that CKTF's five
/// criteria share one draw per batch, as they share `contrast_idx` (`utils_distill.py:220-239`).
public final class ContrastSampler {
    public let negatives: Int
    public let count: Int
    let rng: RNG
    /// Dataset indices ordered by (class, index).
    let byClass: [Int32]
    /// Class c's samples are byClass[classStart[c]..<classStart[c + 1]].
    let classStart: [Int]
    let labels: [Int32]
    private var last: (samples: BatchSamples, indices: ContrastIndices)?

    /// `labels`: the whole training set's, [N] (class ids ≥ 0). Throws when some class has no negatives
    /// (a training set of one class).
    public init(labels: [Int32], negatives: Int, rng: RNG) throws {
        precondition(negatives >= 1, "crd: K = \(negatives)")
        let classes = Int(labels.max() ?? 0) + 1
        var counts = [Int](repeating: 0, count: classes + 1)
        for y in labels {
            guard y >= 0 else { throw ObjectiveError("crd: training label \(y) is negative") }
            counts[Int(y) + 1] += 1
        }
        for c in 0..<classes { counts[c + 1] += counts[c] }
        var next = counts, order = [Int32](repeating: 0, count: labels.count)
        for (i, y) in labels.enumerated() {
            order[next[Int(y)]] = Int32(i)
            next[Int(y)] += 1
        }
        if let y = labels.first, labels.allSatisfy({ $0 == y }) {
            throw ObjectiveError("crd draws negatives from other classes, and the training set's \(labels.count) samples are all of class \(y)")
        }
        self.negatives = negatives
        self.count = labels.count
        self.rng = rng
        self.labels = labels
        byClass = order
        classStart = counts
    }

    /// The contrast indices [B, K+1] of a batch.
    public func draw(_ samples: BatchSamples) -> ContrastIndices {
        if let last, last.samples == samples { return last.indices }
        let b = samples.indices.count, w = negatives + 1
        var values = [Int32](repeating: 0, count: b * w)
        let epochRNG = rng.derived(UInt64(samples.epoch))
        values.withUnsafeMutableBufferPointer { out in
            samples.indices.withUnsafeBufferPointer { indices in
                parallelFor(b) { r in
                    let i = indices[r]
                    precondition(i >= 0 && i < count, "crd: sample index \(i) outside the training set of \(count)")
                    var g = epochRNG.derived(UInt64(i))
                    let row = out.baseAddress! + r * w
                    row[0] = Int32(i)
                    drawNegatives(class: Int(labels[i]), into: row + 1, rng: &g)
                }
            }
        }
        let result = ContrastIndices(rows: b, width: w, values: values)
        last = (samples, result)
        return result
    }

    /// K negatives of class y into `out`: positions p in 0..<M of cls_negative[y] (p < start(y): itself,
    /// else p + n_y), uniform; distinct when K ≤ M.
    private func drawNegatives(class y: Int, into out: UnsafeMutablePointer<Int32>, rng g: inout RNG) {
        let lo = classStart[y], n = classStart[y + 1] - lo, m = count - n, k = negatives
        @inline(__always) func index(_ p: Int) -> Int32 { byClass[p < lo ? p : p + n] }
        if k > m {
            for j in 0..<k { out[j] = index(g.below(m)) }
            return
        }
        var seen = [UInt64](repeating: 0, count: (m + 63) / 64)
        var j = 0
        for top in (m - k)..<m {
            let t = g.below(top + 1)
            let p = seen[t >> 6] & (1 << UInt64(t & 63)) == 0 ? t : top
            seen[p >> 6] |= 1 << UInt64(p & 63)
            out[j] = index(p)
            j += 1
        }
    }
}

/// ⟨a, b⟩ over n floats, eight lanes at a time.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 8 <= n {
        acc += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// y += α·x over n floats.
@inline(__always)
func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] += alpha * x[i] }
}
