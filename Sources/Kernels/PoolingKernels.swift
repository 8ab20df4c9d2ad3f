// Pooling kernels.
//
// Legend: N batch, C channels, b channel block (1 for plain NCHW, 8/16 for nChw{b}c), input H×W,
// output Ho×Wo, window kH×kW, stride sH×sW, padding pH×pW. x is viewed as [N, C/b, H, W, b] and y as
// [N, C/b, Ho, Wo, b]; a "plane" is one (n, cb). Every kernel parallelizes over planes, each written by
// one thread in a fixed order, so overlapping-window backward sums are deterministic.

// MARK: Max pooling

/// y = max over each window (positions outside the padded input are skipped). argmax (same layout as y)
/// receives the winning position h·W + w inside its plane. Ties keep the first position in (h, w) order
/// and NaN wins, exactly as PyTorch's CPU kernel (`val > maxval || isnan(val)`).
public func maxPool2dForward(
    y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, Ho: Int, Wo: Int,
    kH: Int, kW: Int, sH: Int, sW: Int, pH: Int, pW: Int
) {
    let planes = N * (C / b)
    parallelFor(planes) { plane in
        let src = x + plane * H * W * b
        for oh in 0..<Ho {
            let h0 = max(oh * sH - pH, 0), h1 = min(oh * sH - pH + kH, H)
            for ow in 0..<Wo {
                let w0 = max(ow * sW - pW, 0), w1 = min(ow * sW - pW + kW, W)
                let o = ((plane * Ho + oh) * Wo + ow) * b
                let window = MaxWindow(src: src, W: W, h0: h0, h1: h1, w0: w0, w1: w1)
                // One vector per window for the blocked layouts (running max and argmax in registers, the
                // comparison as a lane select: a branch on data mispredicts half the time).
                switch b {
                case 8: window.reduce8(lane0: 0, b: 8, y + o, argmax + o)
                case 16:
                    window.reduce8(lane0: 0, b: 16, y + o, argmax + o)
                    window.reduce8(lane0: 8, b: 16, y + o, argmax + o)
                default: window.reduceLanes(b, y + o, argmax + o)
                }
            }
        }
    }
}

/// One pooling window of one plane [H·W, b]: rows h0..<h1, columns w0..<w1 (possibly empty: then −∞ at the
/// window's first position).
private struct MaxWindow {
    let src: UnsafePointer<Float>
    let W: Int, h0: Int, h1: Int, w0: Int, w1: Int

    /// Eight lanes at once, lanes lane0 ..< lane0 + 8 of a block of b (8 or 16): take v where v > max or v is NaN
    /// (PyTorch's rule, per lane). Concrete SIMD types: generic SIMD code falls back to the protocol's scalar loops.
    @inline(__always)
    func reduce8(lane0: Int, b: Int, _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>) {
        var best = SIMD8<Float>(repeating: -.infinity)
        var index = SIMD8<Int32>(repeating: Int32(h0 * W + w0))
        for h in h0..<h1 {
            for w in w0..<w1 {
                let p = h * W + w
                let v = UnsafeRawPointer(src + p * b + lane0).loadUnaligned(as: SIMD8<Float>.self)
                let take = (v .> best) .| (v .!= v)
                best.replace(with: v, where: take)
                index.replace(with: Int32(p), where: take)
            }
        }
        UnsafeMutableRawPointer(y + lane0).storeBytes(of: best, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(argmax + lane0).storeBytes(of: index, as: SIMD8<Int32>.self)
    }

    /// Any block size, lane by lane (the running max and argmax in locals).
    @inline(__always)
    func reduceLanes(_ b: Int, _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>) {
        for l in 0..<b {
            var best = -Float.infinity
            var index = Int32(h0 * W + w0)
            for h in h0..<h1 {
                for w in w0..<w1 {
                    let p = h * W + w
                    let v = src[p * b + l]
                    if v > best || v.isNaN { best = v; index = Int32(p) }
                }
            }
            y[l] = best
            argmax[l] = index
        }
    }
}

/// Naive twin of `maxPool2dForward` on plain NCHW.
public func maxPool2dForwardNaive(
    y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, Ho: Int, Wo: Int,
    kH: Int, kW: Int, sH: Int, sW: Int, pH: Int, pW: Int
) {
    for nc in 0..<(N * C) {
        for oh in 0..<Ho {
            for ow in 0..<Wo {
                var best = -Float.infinity
                var bestIndex = max(oh * sH - pH, 0) * W + max(ow * sW - pW, 0)
                for i in 0..<kH {
                    for j in 0..<kW {
                        let h = oh * sH - pH + i, w = ow * sW - pW + j
                        if h < 0 || h >= H || w < 0 || w >= W { continue }
                        let v = x[(nc * H + h) * W + w]
                        if v > best || v.isNaN { best = v; bestIndex = h * W + w }
                    }
                }
                y[(nc * Ho + oh) * Wo + ow] = best
                argmax[(nc * Ho + oh) * Wo + ow] = Int32(bestIndex)
            }
        }
    }
}

/// dx = 0, then dx[argmax] += dy for every output (same blocked view as the forward).
public func maxPool2dBackward(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
    N: Int, C: Int, H: Int, W: Int, b: Int, Ho: Int, Wo: Int
) {
    let planes = N * (C / b)
    parallelFor(planes) { plane in
        let dst = dx + plane * H * W * b
        dst.update(repeating: 0, count: H * W * b)
        let g = dy + plane * Ho * Wo * b, idx = argmax + plane * Ho * Wo * b
        for o in 0..<(Ho * Wo) {
            for l in 0..<b { dst[Int(idx[o * b + l]) * b + l] += g[o * b + l] }
        }
    }
}

/// Naive twin of `maxPool2dBackward` on plain NCHW.
public func maxPool2dBackwardNaive(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
    N: Int, C: Int, H: Int, W: Int, Ho: Int, Wo: Int
) {
    dx.update(repeating: 0, count: N * C * H * W)
    for nc in 0..<(N * C) {
        for o in 0..<(Ho * Wo) { dx[nc * H * W + Int(argmax[nc * Ho * Wo + o])] += dy[nc * Ho * Wo + o] }
    }
}

// MARK: Average pooling (fixed and adaptive windows)

/// Window bounds [start, end) along one axis.
struct Windows {
    var start: [Int]
    var end: [Int]

    /// Fixed windows without padding: start = i·s, end = i·s + k.
    static func fixed(out: Int, kernel: Int, stride: Int) -> Windows {
        Windows(start: (0..<out).map { $0 * stride }, end: (0..<out).map { $0 * stride + kernel })
    }

    /// PyTorch's adaptive windows: start = ⌊i·in/out⌋, end = ⌈(i+1)·in/out⌉.
    static func adaptive(input: Int, out: Int) -> Windows {
        Windows(start: (0..<out).map { $0 * input / out }, end: (0..<out).map { (($0 + 1) * input + out - 1) / out })
    }
}

/// y[oh, ow] = Σ_window x / divisor, where divisor = area of the window when `divisor` is nil.
func windowAverageForward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, rows: Windows, cols: Windows, divisor: Int?
) {
    let Ho = rows.start.count, Wo = cols.start.count
    rows.start.withUnsafeBufferPointer { hs in rows.end.withUnsafeBufferPointer { he in
    cols.start.withUnsafeBufferPointer { ws in cols.end.withUnsafeBufferPointer { we in
        parallelFor(N * (C / b)) { plane in
            let src = x + plane * H * W * b
            for oh in 0..<Ho {
                for ow in 0..<Wo {
                    let yo = y + ((plane * Ho + oh) * Wo + ow) * b
                    for l in 0..<b { yo[l] = 0 }
                    for h in hs[oh]..<he[oh] {
                        for w in ws[ow]..<we[ow] {
                            let xp = src + (h * W + w) * b
                            for l in 0..<b { yo[l] += xp[l] }
                        }
                    }
                    let d = Float(divisor ?? (he[oh] - hs[oh]) * (we[ow] - ws[ow]))
                    for l in 0..<b { yo[l] /= d }
                }
            }
        }
    }}}}
}

/// dx = 0, then dx[window] += dy / divisor for every output.
func windowAverageBackward(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, rows: Windows, cols: Windows, divisor: Int?
) {
    let Ho = rows.start.count, Wo = cols.start.count
    rows.start.withUnsafeBufferPointer { hs in rows.end.withUnsafeBufferPointer { he in
    cols.start.withUnsafeBufferPointer { ws in cols.end.withUnsafeBufferPointer { we in
        parallelFor(N * (C / b)) { plane in
            let dst = dx + plane * H * W * b
            dst.update(repeating: 0, count: H * W * b)
            for oh in 0..<Ho {
                for ow in 0..<Wo {
                    let g = dy + ((plane * Ho + oh) * Wo + ow) * b
                    let d = Float(divisor ?? (he[oh] - hs[oh]) * (we[ow] - ws[ow]))
                    for h in hs[oh]..<he[oh] {
                        for w in ws[ow]..<we[ow] {
                            let xp = dst + (h * W + w) * b
                            for l in 0..<b { xp[l] += g[l] / d }
                        }
                    }
                }
            }
        }
    }}}}
}

/// Plain-NCHW naive forward for both average poolings.
func windowAverageForwardNaive(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, rows: Windows, cols: Windows, divisor: Int?
) {
    let Ho = rows.start.count, Wo = cols.start.count
    for nc in 0..<(N * C) {
        for oh in 0..<Ho {
            for ow in 0..<Wo {
                var s: Float = 0
                for h in rows.start[oh]..<rows.end[oh] {
                    for w in cols.start[ow]..<cols.end[ow] { s += x[(nc * H + h) * W + w] }
                }
                let d = divisor ?? (rows.end[oh] - rows.start[oh]) * (cols.end[ow] - cols.start[ow])
                y[(nc * Ho + oh) * Wo + ow] = s / Float(d)
            }
        }
    }
}

/// Plain-NCHW naive backward for both average poolings.
func windowAverageBackwardNaive(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, rows: Windows, cols: Windows, divisor: Int?
) {
    let Ho = rows.start.count, Wo = cols.start.count
    dx.update(repeating: 0, count: N * C * H * W)
    for nc in 0..<(N * C) {
        for oh in 0..<Ho {
            for ow in 0..<Wo {
                let d = divisor ?? (rows.end[oh] - rows.start[oh]) * (cols.end[ow] - cols.start[ow])
                let g = dy[(nc * Ho + oh) * Wo + ow] / Float(d)
                for h in rows.start[oh]..<rows.end[oh] {
                    for w in cols.start[ow]..<cols.end[ow] { dx[(nc * H + h) * W + w] += g }
                }
            }
        }
    }
}

/// AvgPool2d without padding (count_include_pad is then moot): y = Σ_{kH×kW window} x / (kH·kW),
/// Ho = (H − kH)/sH + 1, Wo = (W − kW)/sW + 1.
public func avgPool2dForward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, kH: Int, kW: Int, sH: Int, sW: Int
) {
    windowAverageForward(y: y, x: x, N: N, C: C, H: H, W: W, b: b,
                         rows: .fixed(out: (H - kH) / sH + 1, kernel: kH, stride: sH),
                         cols: .fixed(out: (W - kW) / sW + 1, kernel: kW, stride: sW), divisor: kH * kW)
}

/// Naive twin of `avgPool2dForward` on plain NCHW.
public func avgPool2dForwardNaive(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, kH: Int, kW: Int, sH: Int, sW: Int
) {
    windowAverageForwardNaive(y: y, x: x, N: N, C: C, H: H, W: W,
                              rows: .fixed(out: (H - kH) / sH + 1, kernel: kH, stride: sH),
                              cols: .fixed(out: (W - kW) / sW + 1, kernel: kW, stride: sW), divisor: kH * kW)
}

/// Backward of `avgPool2dForward`: dx = 0, then dx[window] += dy / (kH·kW).
public func avgPool2dBackward(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, kH: Int, kW: Int, sH: Int, sW: Int
) {
    windowAverageBackward(dx: dx, dy: dy, N: N, C: C, H: H, W: W, b: b,
                          rows: .fixed(out: (H - kH) / sH + 1, kernel: kH, stride: sH),
                          cols: .fixed(out: (W - kW) / sW + 1, kernel: kW, stride: sW), divisor: kH * kW)
}

/// Naive twin of `avgPool2dBackward` on plain NCHW.
public func avgPool2dBackwardNaive(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, kH: Int, kW: Int, sH: Int, sW: Int
) {
    windowAverageBackwardNaive(dx: dx, dy: dy, N: N, C: C, H: H, W: W,
                               rows: .fixed(out: (H - kH) / sH + 1, kernel: kH, stride: sH),
                               cols: .fixed(out: (W - kW) / sW + 1, kernel: kW, stride: sW), divisor: kH * kW)
}

/// AdaptiveAvgPool2d to Ho×Wo: window i spans [⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉) (likewise for W); y = window mean.
/// Ho = Wo = 1 (global average) takes a vectorized path over each contiguous HW·b row.
public func adaptiveAvgPool2dForward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, Ho: Int, Wo: Int
) {
    if Ho == 1 && Wo == 1 && rowVector % b == 0 {
        let len = H * W * b, d = Float(H * W)
        parallelFor(N * (C / b)) { plane in
            let yo = y + plane * b
            foldLanes(yo, rowSum16(x + plane * len, len), b)
            for l in 0..<b { yo[l] /= d }
        }
        return
    }
    windowAverageForward(y: y, x: x, N: N, C: C, H: H, W: W, b: b,
                         rows: .adaptive(input: H, out: Ho), cols: .adaptive(input: W, out: Wo), divisor: nil)
}

/// Naive twin of `adaptiveAvgPool2dForward` on plain NCHW.
public func adaptiveAvgPool2dForwardNaive(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, N: Int, C: Int, H: Int, W: Int, Ho: Int, Wo: Int
) {
    windowAverageForwardNaive(y: y, x: x, N: N, C: C, H: H, W: W,
                              rows: .adaptive(input: H, out: Ho), cols: .adaptive(input: W, out: Wo), divisor: nil)
}

/// Backward of `adaptiveAvgPool2dForward`: dx = 0, then dx[window] += dy / |window|.
public func adaptiveAvgPool2dBackward(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
    N: Int, C: Int, H: Int, W: Int, b: Int, Ho: Int, Wo: Int
) {
    if Ho == 1 && Wo == 1 && rowVector % b == 0 {
        let len = H * W * b, d = Float(H * W)
        parallelFor(N * (C / b)) { plane in
            let g = lanePattern(dy + plane * b, b) / d
            let dst = dx + plane * len
            let full = len / rowVector * rowVector
            var i = 0
            while i < full { store16(dst + i, g); i += rowVector }
            while i < len { dst[i] = g[i % rowVector]; i += 1 }
        }
        return
    }
    windowAverageBackward(dx: dx, dy: dy, N: N, C: C, H: H, W: W, b: b,
                          rows: .adaptive(input: H, out: Ho), cols: .adaptive(input: W, out: Wo), divisor: nil)
}

/// Naive twin of `adaptiveAvgPool2dBackward` on plain NCHW.
public func adaptiveAvgPool2dBackwardNaive(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, N: Int, C: Int, H: Int, W: Int, Ho: Int, Wo: Int
) {
    windowAverageBackwardNaive(dx: dx, dy: dy, N: N, C: C, H: H, W: W,
                               rows: .adaptive(input: H, out: Ho), cols: .adaptive(input: W, out: Wo), divisor: nil)
}
