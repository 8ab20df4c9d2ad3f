// Batch normalisation kernels.
//
// Legend: N batch, C channels, HW = H·W positions, b channel block (1 for plain NCHW, 8 or 16 for
// oneDNN's nChw{b}c). Every 4-D tensor is viewed as [N, C/b, HW, b]: channel c = cb·b + lane. A "row" is
// the contiguous run of HW·b floats of one (n, cb); element i of a row belongs to lane i % b.
//
// Determinism: reductions first compute per-row partial results (rows are independent, so the split
// over threads cannot change them), then combine the rows of each channel in ascending n, in double
// precision. Results are therefore bit-identical for any thread count.

/// Lanes of the row kernels: b must divide it, so lane j of a SIMD16 chunk holds channel lane j % b.
@usableFromInline let rowVector = 16

@inline(__always)
func checkBlock(_ b: Int) {
    precondition(b >= 1 && rowVector % b == 0, "channel block \(b) must divide \(rowVector)")
}

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func store16(_ p: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// A SIMD16 whose lane j is `v[j % b]` (the per-channel pattern of one channel block).
@inline(__always)
func lanePattern(_ v: UnsafePointer<Float>, _ b: Int) -> SIMD16<Float> {
    var p = SIMD16<Float>()
    for j in 0..<rowVector { p[j] = v[j % b] }
    return p
}

/// out[l] = Σ_{j ≡ l (mod b)} acc[j], for l in 0..<b, summed in ascending j.
@inline(__always)
func foldLanes(_ out: UnsafeMutablePointer<Float>, _ acc: SIMD16<Float>, _ b: Int) {
    for l in 0..<b { out[l] = 0 }
    for j in 0..<rowVector { out[j % b] += acc[j] }
}

/// Per-lane sum of a row of `len` floats (lane of element i is i % 16; fold with `foldLanes`).
@inline(__always)
func rowSum16(_ x: UnsafePointer<Float>, _ len: Int) -> SIMD16<Float> {
    var acc = SIMD16<Float>()
    let full = len / rowVector * rowVector
    var i = 0
    while i < full { acc += load16(x + i); i += rowVector }
    while i < len { acc[i % rowVector] += x[i]; i += 1 }
    return acc
}

/// Batch statistics per channel, in double: mean[C] and the biased variance var[C] = mean((x − mean)²).
///
/// x: [N, C/b, HW, b]. Each row (n, cb) yields a two-pass mean and centred sum of squares per lane
/// (float); rows are merged per channel in ascending n with Chan et al.'s pairwise formula in double:
/// M2 = Σ_n M2_n + HW·Σ_n (m_n − mean)².
public func batchNormStatistics(
    mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>,
    x: UnsafePointer<Float>, N: Int, C: Int, HW: Int, b: Int
) {
    checkBlock(b)
    precondition(C % b == 0, "C = \(C) not divisible by block \(b)")
    let CB = C / b, len = HW * b
    // Row partials, indexed [n, c].
    let rowMean = UnsafeMutablePointer<Float>.allocate(capacity: max(1, N * C))
    let rowM2 = UnsafeMutablePointer<Float>.allocate(capacity: max(1, N * C))
    defer { rowMean.deallocate(); rowM2.deallocate() }
    let inverseHW = 1 / Float(HW)
    parallelFor(N * CB) { r in
        let n = r / CB, cb = r % CB
        let row = x + r * len
        let m = rowMean + n * C + cb * b, m2 = rowM2 + n * C + cb * b
        foldLanes(m, rowSum16(row, len), b)
        for l in 0..<b { m[l] *= inverseHW }
        let mv = lanePattern(m, b)
        var acc = SIMD16<Float>()
        let full = len / rowVector * rowVector
        var i = 0
        while i < full {
            let d = load16(row + i) - mv
            acc += d * d
            i += rowVector
        }
        while i < len {
            let d = row[i] - m[i % b]
            acc[i % rowVector] += d * d
            i += 1
        }
        foldLanes(m2, acc, b)
    }
    parallelFor(C) { c in
        var s = 0.0
        for n in 0..<N { s += Double(rowMean[n * C + c]) }
        let mu = s / Double(N)
        var m2 = 0.0, spread = 0.0
        for n in 0..<N {
            m2 += Double(rowM2[n * C + c])
            let d = Double(rowMean[n * C + c]) - mu
            spread += d * d
        }
        mean[c] = mu
        variance[c] = (m2 + Double(HW) * spread) / Double(N * HW)
    }
}

/// Naive twin of `batchNormStatistics` on plain NCHW: two passes in double per channel.
public func batchNormStatisticsNaive(
    mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>,
    x: UnsafePointer<Float>, N: Int, C: Int, HW: Int
) {
    for c in 0..<C {
        var s = 0.0
        for n in 0..<N { for p in 0..<HW { s += Double(x[(n * C + c) * HW + p]) } }
        let mu = s / Double(N * HW)
        var v = 0.0
        for n in 0..<N {
            for p in 0..<HW {
                let d = Double(x[(n * C + c) * HW + p]) - mu
                v += d * d
            }
        }
        mean[c] = mu
        variance[c] = v / Double(N * HW)
    }
}

/// Per-channel affine map y = x·scale[c] + shift[c], x and y: [N, C/b, HW, b].
/// Batch-norm forward folds (γ, β, mean, invstd) into scale = γ·invstd, shift = β − mean·scale.
public func batchNormApply(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    N: Int, C: Int, HW: Int, b: Int
) {
    checkBlock(b)
    let CB = C / b, len = HW * b
    parallelFor(N * CB) { r in
        let cb = r % CB
        let src = x + r * len, dst = y + r * len
        let sc = scale + cb * b, sh = shift + cb * b
        let sv = lanePattern(sc, b), hv = lanePattern(sh, b)
        let full = len / rowVector * rowVector
        var i = 0
        while i < full { store16(dst + i, load16(src + i) * sv + hv); i += rowVector }
        while i < len { dst[i] = src[i] * sc[i % b] + sh[i % b]; i += 1 }
    }
}

/// Naive twin of `batchNormApply` on plain NCHW.
public func batchNormApplyNaive(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    N: Int, C: Int, HW: Int
) {
    for n in 0..<N {
        for c in 0..<C {
            for p in 0..<HW {
                let i = (n * C + c) * HW + p
                y[i] = x[i] * scale[c] + shift[c]
            }
        }
    }
}

/// Backward reductions per channel, in double: sumDy[c] = Σ dy, sumDyXmu[c] = Σ dy·(x − mean[c]), over N and HW.
/// dy, x: [N, C/b, HW, b]. Row partials in float, rows combined in ascending n in double.
public func batchNormBackwardReduce(
    sumDy: UnsafeMutablePointer<Double>, sumDyXmu: UnsafeMutablePointer<Double>,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>,
    N: Int, C: Int, HW: Int, b: Int
) {
    checkBlock(b)
    let CB = C / b, len = HW * b
    let rowDy = UnsafeMutablePointer<Float>.allocate(capacity: max(1, N * C))
    let rowDyXmu = UnsafeMutablePointer<Float>.allocate(capacity: max(1, N * C))
    defer { rowDy.deallocate(); rowDyXmu.deallocate() }
    parallelFor(N * CB) { r in
        let n = r / CB, cb = r % CB
        let g = dy + r * len, v = x + r * len
        let mc = mean + cb * b
        let mv = lanePattern(mc, b)
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        let full = len / rowVector * rowVector
        var i = 0
        while i < full {
            let gv = load16(g + i)
            a0 += gv
            a1 += gv * (load16(v + i) - mv)
            i += rowVector
        }
        while i < len {
            a0[i % rowVector] += g[i]
            a1[i % rowVector] += g[i] * (v[i] - mc[i % b])
            i += 1
        }
        foldLanes(rowDy + n * C + cb * b, a0, b)
        foldLanes(rowDyXmu + n * C + cb * b, a1, b)
    }
    parallelFor(C) { c in
        var s0 = 0.0, s1 = 0.0
        for n in 0..<N {
            s0 += Double(rowDy[n * C + c])
            s1 += Double(rowDyXmu[n * C + c])
        }
        sumDy[c] = s0
        sumDyXmu[c] = s1
    }
}

/// Naive twin of `batchNormBackwardReduce` on plain NCHW, in double.
public func batchNormBackwardReduceNaive(
    sumDy: UnsafeMutablePointer<Double>, sumDyXmu: UnsafeMutablePointer<Double>,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>,
    N: Int, C: Int, HW: Int
) {
    for c in 0..<C {
        var s0 = 0.0, s1 = 0.0
        for n in 0..<N {
            for p in 0..<HW {
                let i = (n * C + c) * HW + p
                s0 += Double(dy[i])
                s1 += Double(dy[i]) * (Double(x[i]) - Double(mean[c]))
            }
        }
        sumDy[c] = s0
        sumDyXmu[c] = s1
    }
}

/// dx = dyScale[c]·dy + xScale[c]·x + shift[c], all tensors [N, C/b, HW, b].
/// Training-mode batch-norm backward, dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)), expands to
/// dyScale = γ/σ, xScale = −γ·Σdy(x−μ)/(σ³·M), shift = −dyScale·Σdy/M − xScale·μ (M = N·HW).
public func batchNormBackwardInput(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
    dyScale: UnsafePointer<Float>, xScale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    N: Int, C: Int, HW: Int, b: Int
) {
    checkBlock(b)
    let CB = C / b, len = HW * b
    parallelFor(N * CB) { r in
        let cb = r % CB
        let g = dy + r * len, v = x + r * len, out = dx + r * len
        let a = dyScale + cb * b, k = xScale + cb * b, s = shift + cb * b
        let av = lanePattern(a, b), kv = lanePattern(k, b), sv = lanePattern(s, b)
        let full = len / rowVector * rowVector
        var i = 0
        while i < full {
            store16(out + i, load16(g + i) * av + load16(v + i) * kv + sv)
            i += rowVector
        }
        while i < len {
            let l = i % b
            out[i] = g[i] * a[l] + v[i] * k[l] + s[l]
            i += 1
        }
    }
}

/// Naive twin of `batchNormBackwardInput` on plain NCHW.
public func batchNormBackwardInputNaive(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
    dyScale: UnsafePointer<Float>, xScale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    N: Int, C: Int, HW: Int
) {
    for n in 0..<N {
        for c in 0..<C {
            for p in 0..<HW {
                let i = (n * C + c) * HW + p
                dx[i] = dy[i] * dyScale[c] + x[i] * xScale[c] + shift[c]
            }
        }
    }
}
