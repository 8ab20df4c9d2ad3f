// Backward weights without oneDNN, for the shapes where oneDNN 2.6 has no JIT kernel and falls back to its
// `ref:any` loop (3×3 convolutions on 1×1 and 2×2 maps: ResNet-18's layer4 and MobileNet-V2's last
// depthwise convolutions at 32×32 and 64×64 inputs; seconds per call there). Same arguments and semantics
// as `convBackwardWeights` (accumulated dweight/dbias); naive twin: `convBackwardWeightsReference`.
// Legend as Convolution.swift: N batch, C/K input/output channels, H×W / P×Q input/output maps, R×S kernel,
// G groups, Cg = C/G, Kg = K/G.
//
// - G = 1: im2col. For a chunk of images, col[(c, r, s), (n, p, q)] = x[n, c, p·sh − ph + r, q·sw − pw + s]
//   (0 outside) and dyT[k, (n, p, q)] = dy[n, k, p, q]; then dweight[K, C·R·S] += dyT · colᵀ (sgemm).
// - G > 1 (depthwise and grouped): a direct sum per output channel, channels spread over the threads.
// Each output element's sum has one order for a given thread count (sgemm's partition is fixed by the
// count), so results are bit-identical for a fixed `Threads.count`.

/// `convBackwardWeights` through im2col + sgemm (G = 1) or direct sums (G > 1), without oneDNN.
public func convBackwardWeightsDirect(_ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>?,
                                      _ x: UnsafePointer<Float>, xBlock: Int,
                                      _ dy: UnsafePointer<Float>, dyBlock: Int,
                                      _ g: ConvGeometry) {
    let N = g.batch, C = g.inputChannels, H = g.inputHeight, W = g.inputWidth
    let K = g.outputChannels, P = g.outputHeight, Q = g.outputWidth
    let R = g.kernelHeight, S = g.kernelWidth, G = g.groups, Cg = C / G, Kg = K / G
    let PQ = P * Q, HW = H * W
    // Plain NCHW copies of blocked inputs.
    let xPlain = plainCopy(x, block: xBlock, n: N, c: C, hw: HW)
    let dyPlain = plainCopy(dy, block: dyBlock, n: N, c: K, hw: PQ)
    defer { xPlain.map { $0.deallocate() }; dyPlain.map { $0.deallocate() } }
    let xs = UnsafePointer(xPlain ?? UnsafeMutablePointer(mutating: x))
    let dys = UnsafePointer(dyPlain ?? UnsafeMutablePointer(mutating: dy))

    if let dbias {
        parallelFor(K) { k in
            var acc: Float = 0
            for n in 0..<N { let row = dys + (n * K + k) * PQ; for i in 0..<PQ { acc += row[i] } }
            dbias[k] += acc
        }
    }

    if G > 1 {
        parallelFor(K) { k in
            let c0 = (k / Kg) * Cg
            for c in 0..<Cg {
                for r in 0..<R {
                    for s in 0..<S {
                        var acc: Float = 0
                        for n in 0..<N {
                            let d = dys + (n * K + k) * PQ, xc = xs + (n * C + c0 + c) * HW
                            for p in 0..<P {
                                let h = p * g.strideHeight - g.paddingHeight + r
                                if h < 0 || h >= H { continue }
                                for q in 0..<Q {
                                    let w = q * g.strideWidth - g.paddingWidth + s
                                    if w < 0 || w >= W { continue }
                                    acc += d[p * Q + q] * xc[h * W + w]
                                }
                            }
                        }
                        dweight[((k * Cg + c) * R + r) * S + s] += acc
                    }
                }
            }
        }
        return
    }

    // G = 1: chunks of images whose col buffer stays under 16 M floats.
    let CRS = C * R * S
    let chunk = max(1, min(N, (1 << 24) / max(1, CRS * PQ)))
    let col = UnsafeMutablePointer<Float>.allocate(capacity: CRS * chunk * PQ)
    let dyT = UnsafeMutablePointer<Float>.allocate(capacity: K * chunk * PQ)
    defer { col.deallocate(); dyT.deallocate() }
    var n0 = 0
    while n0 < N {
        let m = min(chunk, N - n0), cols = m * PQ
        parallelFor(CRS) { row in
            let c = row / (R * S), r = (row / S) % R, s = row % S
            let out = col + row * cols
            for j in 0..<m {
                let xc = xs + ((n0 + j) * C + c) * HW, o = out + j * PQ
                for p in 0..<P {
                    let h = p * g.strideHeight - g.paddingHeight + r
                    for q in 0..<Q {
                        let w = q * g.strideWidth - g.paddingWidth + s
                        o[p * Q + q] = h >= 0 && h < H && w >= 0 && w < W ? xc[h * W + w] : 0
                    }
                }
            }
        }
        parallelFor(K) { k in
            for j in 0..<m { (dyT + k * cols + j * PQ).update(from: dys + ((n0 + j) * K + k) * PQ, count: PQ) }
        }
        sgemm(dweight, dyT, transA: false, col, transB: true, m: K, n: CRS, k: cols, beta: 1)
        n0 += m
    }
}

/// A plain NCHW copy of a [n, c, hw] activation in block `block`; nil when it is plain already.
private func plainCopy(_ p: UnsafePointer<Float>, block b: Int, n: Int, c: Int, hw: Int) -> UnsafeMutablePointer<Float>? {
    if b == 1 { return nil }
    let out = UnsafeMutablePointer<Float>.allocate(capacity: n * c * hw)
    parallelFor(n * c) { nc in
        let ni = nc / c, ci = nc % c
        let src = p + ((ni * (c / b) + ci / b) * hw) * b + ci % b, dst = out + nc * hw
        for i in 0..<hw { dst[i] = src[i * b] }
    }
    return out
}
