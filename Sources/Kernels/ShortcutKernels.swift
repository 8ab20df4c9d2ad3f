// Option-A shortcut of the CIFAR ResNet (He et al. 2016): subsample by `stride`, zero-pad channels.
//
// Legend: N batch, Cin/Cout channels, input H×W, output Ho×Wo with Ho = ⌈H/s⌉, Wo = ⌈W/s⌉ (the slice
// x[:, :, ::s, ::s]), pad = (Cout − Cin)/2 zero channels on each side. Input block bi and output block bo
// may differ (1 = plain): x is [N, Cin/bi, H, W, bi], y is [N, Cout/bo, Ho, Wo, bo]. Indices are computed
// per channel, so the pad need not be a multiple of either block.

/// y[n, c + pad, oh, ow] = x[n, c, oh·s, ow·s]; y = 0 on the padded channels.
public func optionAShortcutForward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, Cin: Int, H: Int, W: Int, bi: Int, Cout: Int, bo: Int, stride s: Int, pad: Int
) {
    let Ho = (H + s - 1) / s, Wo = (W + s - 1) / s
    let CBi = Cin / bi, CBo = Cout / bo
    parallelFor(N * CBo) { plane in
        let n = plane / CBo, cbo = plane % CBo
        for l in 0..<bo {
            let ci = cbo * bo + l - pad
            let dst = y + plane * Ho * Wo * bo + l
            if ci < 0 || ci >= Cin {
                for p in 0..<(Ho * Wo) { dst[p * bo] = 0 }
                continue
            }
            let src = x + (n * CBi + ci / bi) * H * W * bi + ci % bi
            for oh in 0..<Ho {
                let srow = src + oh * s * W * bi, drow = dst + oh * Wo * bo
                for ow in 0..<Wo { drow[ow * bo] = srow[ow * s * bi] }
            }
        }
    }
}

/// Naive twin of `optionAShortcutForward` on plain NCHW.
public func optionAShortcutForwardNaive(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, Cin: Int, H: Int, W: Int, Cout: Int, stride s: Int, pad: Int
) {
    let Ho = (H + s - 1) / s, Wo = (W + s - 1) / s
    for n in 0..<N {
        for co in 0..<Cout {
            for oh in 0..<Ho {
                for ow in 0..<Wo {
                    let ci = co - pad
                    y[((n * Cout + co) * Ho + oh) * Wo + ow] =
                        ci < 0 || ci >= Cin ? 0 : x[((n * Cin + ci) * H + oh * s) * W + ow * s]
                }
            }
        }
    }
}

/// dx[n, c, oh·s, ow·s] = dy[n, c + pad, oh, ow]; dx = 0 at every other position.
public func optionAShortcutBackward(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, Cin: Int, H: Int, W: Int, bi: Int, Cout: Int, bo: Int, stride s: Int, pad: Int
) {
    let Ho = (H + s - 1) / s, Wo = (W + s - 1) / s
    let CBi = Cin / bi, CBo = Cout / bo
    parallelFor(N * CBi) { plane in
        let n = plane / CBi, cbi = plane % CBi
        let planeStart = dx + plane * H * W * bi
        if s != 1 { planeStart.update(repeating: 0, count: H * W * bi) }
        for l in 0..<bi {
            let co = cbi * bi + l + pad
            let dst = planeStart + l
            let src = dy + ((n * CBo + co / bo) * Ho * Wo) * bo + co % bo
            for oh in 0..<Ho {
                let drow = dst + oh * s * W * bi, srow = src + oh * Wo * bo
                for ow in 0..<Wo { drow[ow * s * bi] = srow[ow * bo] }
            }
        }
    }
}

/// Naive twin of `optionAShortcutBackward` on plain NCHW.
public func optionAShortcutBackwardNaive(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, Cin: Int, H: Int, W: Int, Cout: Int, stride s: Int, pad: Int
) {
    let Ho = (H + s - 1) / s, Wo = (W + s - 1) / s
    dx.update(repeating: 0, count: N * Cin * H * W)
    for n in 0..<N {
        for c in 0..<Cin {
            for oh in 0..<Ho {
                for ow in 0..<Wo {
                    dx[((n * Cin + c) * H + oh * s) * W + ow * s] = dy[((n * Cout + c + pad) * Ho + oh) * Wo + ow]
                }
            }
        }
    }
}
