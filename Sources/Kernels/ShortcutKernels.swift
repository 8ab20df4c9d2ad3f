// Option-A shortcut of the CIFAR ResNet (He et al. 2016): subsample by `stride`, zero-pad channels.
//
// Legend: N batch, Cin/Cout channels, input H×W, output Ho×Wo with Ho = ⌈H/s⌉, Wo = ⌈W/s⌉ (the slice
// x[:, :, ::s, ::s]), pad = (Cout − Cin)/2 zero channels on each side. Input block bi and output block bo
// may differ (1 = plain): x is [N, Cin/bi, H, W, bi], y is [N, Cout/bo, Ho, Wo, bo]. Indices are computed
// per channel, so the pad need not be a multiple of either block.

/// y[n, c + pad, oh, ow] = x[n, c, oh·s, ow·s]; y = 0 on the padded channels.
/// Per output plane (n, cbo), each position writes its bo contiguous lanes, reading lane l from the input
/// channel cbo·bo + l − pad through a per-lane offset table.
public func optionAShortcutForward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, Cin: Int, H: Int, W: Int, bi: Int, Cout: Int, bo: Int, stride s: Int, pad: Int
) {
    let Ho = (H + s - 1) / s, Wo = (W + s - 1) / s
    let CBi = Cin / bi, CBo = Cout / bo
    // Offset of output channel co's input channel inside one sample of x, or −1 for a padded channel.
    let source = UnsafeMutablePointer<Int>.allocate(capacity: Cout)
    defer { source.deallocate() }
    for co in 0..<Cout {
        let ci = co - pad
        source[co] = ci < 0 || ci >= Cin ? -1 : (ci / bi) * H * W * bi + ci % bi
    }
    parallelFor(N * CBo) { plane in
        let n = plane / CBo, cbo = plane % CBo
        let sample = x + n * CBi * H * W * bi
        let lanes = source + cbo * bo
        let dst = y + plane * Ho * Wo * bo
        for oh in 0..<Ho {
            for ow in 0..<Wo {
                let pin = (oh * s * W + ow * s) * bi
                let out = dst + (oh * Wo + ow) * bo
                for l in 0..<bo {
                    let o = lanes[l]
                    out[l] = o < 0 ? 0 : sample[o + pin]
                }
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
/// Per input plane (n, cbi): zero it (unless s = 1), then each subsampled position writes its bi lanes.
public func optionAShortcutBackward(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, Cin: Int, H: Int, W: Int, bi: Int, Cout: Int, bo: Int, stride s: Int, pad: Int
) {
    let Ho = (H + s - 1) / s, Wo = (W + s - 1) / s
    let CBi = Cin / bi, CBo = Cout / bo
    // Offset of input channel ci's output channel ci + pad inside one sample of dy.
    let source = UnsafeMutablePointer<Int>.allocate(capacity: Cin)
    defer { source.deallocate() }
    for ci in 0..<Cin {
        let co = ci + pad
        source[ci] = (co / bo) * Ho * Wo * bo + co % bo
    }
    parallelFor(N * CBi) { plane in
        let n = plane / CBi, cbi = plane % CBi
        let sample = dy + n * CBo * Ho * Wo * bo
        let lanes = source + cbi * bi
        let dst = dx + plane * H * W * bi
        if s != 1 { dst.update(repeating: 0, count: H * W * bi) }
        for oh in 0..<Ho {
            for ow in 0..<Wo {
                let pout = (oh * Wo + ow) * bo
                let out = dst + (oh * s * W + ow * s) * bi
                for l in 0..<bi { out[l] = sample[lanes[l] + pout] }
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
