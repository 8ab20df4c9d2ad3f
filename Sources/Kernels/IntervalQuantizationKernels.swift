// Interval (QIL / EWGS) fake-quantization kernels on flat buffers of `count` floats, layout-agnostic.
// Work is split into fixed chunks of `elementwiseChunk` elements; reductions keep one partial sum per
// chunk and combine them in chunk order, so every result is independent of the thread count.
//
// Legend: x input, y output, dy upstream gradient, dx input gradient; l, u the interval bounds,
// L the number of levels (2^bits), n = (x − l)/(u − l), c = clamp(n, 0, 1), q = round(c·(L−1))/(L−1)
// with round half to even. Weights use y = 2(q − 0.5) ("gain" 2), activations y = q (gain 1).

/// 2^23: for 0 ≤ v < 2^23, (v + 2^23) − 2^23 rounds v to an integer, ties to even (float32's default
/// rounding), with plain adds that vectorize.
@usableFromInline let roundingMagic: Float = 8_388_608

/// The interval quantizer's forward (reference §2.2.1):
/// n = (x − l)/(u − l); c = clamp(n, 0, 1); q = round(c·(L−1))/(L−1); y = signed ? (q − 0.5)·2 : q.
/// Operation order follows PyTorch's (subtract, divide by u − l, clamp, multiply, round, divide) so
/// values match bit for bit. Requires L − 1 < 2^23.
public func intervalQuantizeForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int,
                                    lower l: Float, upper u: Float, levels: Int, signed: Bool) {
    let d = u - l, steps = Float(levels - 1)
    forEachChunk(count) { lo, hi in
        if signed {
            for i in lo..<hi {
                let c = min(max((x[i] - l) / d, 0), 1)
                let q = ((c * steps + roundingMagic) - roundingMagic) / steps
                y[i] = (q - 0.5) * 2
            }
        } else {
            for i in lo..<hi {
                let c = min(max((x[i] - l) / d, 0), 1)
                y[i] = ((c * steps + roundingMagic) - roundingMagic) / steps
            }
        }
    }
}

/// Naive twin of `intervalQuantizeForward` (NaN inputs aside: PyTorch's clamp propagates NaN, the
/// fast path's min/max do not).
public func intervalQuantizeForwardNaive(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int,
                                         lower l: Float, upper u: Float, levels: Int, signed: Bool) {
    let d = u - l, steps = Float(levels - 1)
    for i in 0..<count {
        let n = (x[i] - l) / d
        let c = n < 0 ? 0 : (n > 1 ? 1 : n)
        let q = (c * steps).rounded(.toNearestOrEven) / steps
        y[i] = signed ? (q - 0.5) * 2 : q
    }
}

/// Sums the interval-parameter gradients need, from the interval quantizer's backward.
public struct IntervalGradientSums: Equatable, Sendable {
    /// Σ dx[i].
    public var dx: Double
    /// Σ dx[i]·n[i] (n = (x − l)/(u − l); only in-range elements contribute).
    public var dxTimesN: Double
    public init(dx: Double, dxTimesN: Double) { self.dx = dx; self.dxTimesN = dxTimesN }
}

/// The interval quantizer's backward (reference §2.2.2), with g = gain·dy the gradient at the
/// discretizer output (gain 2 for weights: y = 2(q − 0.5); 1 for activations):
///   g_in  = g + (g·δ·sign(g))·(c − q)            (EWGS; δ = 0 is the STE)
///   dx    = g_in·[0 ≤ n ≤ 1] / (u − l)           (clamp passes the gradient at both end points)
/// Returns S₁ = Σ dx and S₂ = Σ dx·n, from which ∂L/∂u = −S₂ and ∂L/∂l = S₂ − S₁
/// (∂n/∂u = −n/(u − l), ∂n/∂l = (n − 1)/(u − l)).
public func intervalQuantizeBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                                     x: UnsafePointer<Float>, count: Int,
                                     lower l: Float, upper u: Float, levels: Int, gain: Float,
                                     delta: Float) -> IntervalGradientSums {
    typealias V = SIMD8<Float>
    let d = u - l, steps = Float(levels - 1)
    let chunks = (count + elementwiseChunk - 1) / elementwiseChunk
    let partials = UnsafeMutablePointer<Double>.allocate(capacity: 2 * max(1, chunks))
    defer { partials.deallocate() }
    let lv = V(repeating: l), dv = V(repeating: d), sv = V(repeating: steps), mv = V(repeating: roundingMagic)
    let zero = V(repeating: 0), one = V(repeating: 1), gv = V(repeating: gain), deltav = V(repeating: delta)
    parallelFor(chunks) { k in
        let lo = k * elementwiseChunk, hi = min(count, lo + elementwiseChunk)
        var s1 = V(repeating: 0), s2 = V(repeating: 0)
        var i = lo
        while i + 8 <= hi {
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: V.self)
            let g0 = UnsafeRawPointer(dy + i).loadUnaligned(as: V.self) * gv
            let n = (xv - lv) / dv
            let inside = (n .>= zero) .& (n .<= one)
            let c = pointwiseMin(pointwiseMax(n, zero), one)
            var g = g0
            if delta != 0 {
                let q = ((c * sv + mv) - mv) / sv
                var sign = zero
                sign.replace(with: one, where: g0 .> zero)
                sign.replace(with: -one, where: g0 .< zero)
                g = g0 + (g0 * deltav * sign) * (c - q)
            }
            var out = g / dv
            out.replace(with: 0, where: .!inside)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: out, as: V.self)
            s1 += out
            s2 += out * c
            i += 8
        }
        var t1 = Double(s1.sum()), t2 = Double(s2.sum())
        while i < hi {
            let n = (x[i] - l) / d
            let c = min(max(n, 0), 1)
            var g = dy[i] * gain
            if delta != 0 {
                let q = ((c * steps + roundingMagic) - roundingMagic) / steps
                let sign: Float = g > 0 ? 1 : (g < 0 ? -1 : 0)
                g = g + (g * delta * sign) * (c - q)
            }
            let out = n >= 0 && n <= 1 ? g / d : 0
            dx[i] = out
            t1 += Double(out)
            t2 += Double(out * c)
            i += 1
        }
        partials[2 * k] = t1
        partials[2 * k + 1] = t2
    }
    var sums = IntervalGradientSums(dx: 0, dxTimesN: 0)
    for k in 0..<chunks {
        sums.dx += partials[2 * k]
        sums.dxTimesN += partials[2 * k + 1]
    }
    return sums
}

/// Naive twin of `intervalQuantizeBackward` (sums in one double accumulator, in index order).
public func intervalQuantizeBackwardNaive(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                                          x: UnsafePointer<Float>, count: Int,
                                          lower l: Float, upper u: Float, levels: Int, gain: Float,
                                          delta: Float) -> IntervalGradientSums {
    let d = u - l, steps = Float(levels - 1)
    var sums = IntervalGradientSums(dx: 0, dxTimesN: 0)
    for i in 0..<count {
        let n = (x[i] - l) / d
        let c = n < 0 ? 0 : (n > 1 ? 1 : n)
        let q = (c * steps).rounded(.toNearestOrEven) / steps
        let g = dy[i] * gain
        let sign: Float = g > 0 ? 1 : (g < 0 ? -1 : 0)
        let gIn = g + (g * delta * sign) * (c - q)
        let out: Float = (n >= 0 && n <= 1) ? gIn / d : 0
        dx[i] = out
        sums.dx += Double(out)
        sums.dxTimesN += Double(out) * Double(c)
    }
    return sums
}

/// Output-scale backward (EWGS's y = conv·|s|): dx = dy·s (s = |output_scale|) and returns
/// Σ dy·y₀ (y₀ the unscaled conv output), so that ∂L/∂output_scale = sign(output_scale)·Σ dy·y₀.
public func scaleBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y0: UnsafePointer<Float>,
                          s: Float, count: Int) -> Double {
    typealias V = SIMD8<Float>
    let chunks = (count + elementwiseChunk - 1) / elementwiseChunk
    let partials = UnsafeMutablePointer<Double>.allocate(capacity: max(1, chunks))
    defer { partials.deallocate() }
    let sv = V(repeating: s)
    parallelFor(chunks) { k in
        let lo = k * elementwiseChunk, hi = min(count, lo + elementwiseChunk)
        var acc = V(repeating: 0)
        var i = lo
        while i + 8 <= hi {
            let g = UnsafeRawPointer(dy + i).loadUnaligned(as: V.self)
            let y = UnsafeRawPointer(y0 + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: g * sv, as: V.self)
            acc += g * y
            i += 8
        }
        var t = Double(acc.sum())
        while i < hi {
            dx[i] = dy[i] * s
            t += Double(dy[i] * y0[i])
            i += 1
        }
        partials[k] = t
    }
    var total = 0.0
    for k in 0..<chunks { total += partials[k] }
    return total
}

/// Naive twin of `scaleBackward`.
public func scaleBackwardNaive(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y0: UnsafePointer<Float>,
                               s: Float, count: Int) -> Double {
    var total = 0.0
    for i in 0..<count {
        dx[i] = dy[i] * s
        total += Double(dy[i]) * Double(y0[i])
    }
    return total
}

// MARK: Calibration statistics (run once per layer; chunked and combined in order like the rest)

/// Whole-tensor statistics used by quantizer calibration.
public struct TensorStatistics: Sendable {
    public var mean: Double
    /// Unbiased (N − 1) standard deviation, as `torch.std` (NaN for a single element, as in PyTorch).
    public var std: Double
    public var min: Float
    public var max: Float
    /// mean |x|.
    public var meanAbs: Double
}

/// Mean, unbiased std (two passes), min, max and mean |x| of `count` floats.
public func tensorStatistics(_ x: UnsafePointer<Float>, count: Int) -> TensorStatistics {
    precondition(count > 0, "statistics of an empty tensor")
    let chunks = (count + elementwiseChunk - 1) / elementwiseChunk
    let partials = UnsafeMutablePointer<Double>.allocate(capacity: 4 * chunks)
    defer { partials.deallocate() }
    parallelFor(chunks) { k in
        let lo = k * elementwiseChunk, hi = min(count, lo + elementwiseChunk)
        var s = 0.0, a = 0.0, mn = Float.infinity, mx = -Float.infinity
        for i in lo..<hi {
            let v = x[i]
            s += Double(v)
            a += Double(abs(v))
            mn = Swift.min(mn, v)
            mx = Swift.max(mx, v)
        }
        partials[4 * k] = s
        partials[4 * k + 1] = a
        partials[4 * k + 2] = Double(mn)
        partials[4 * k + 3] = Double(mx)
    }
    var sum = 0.0, absSum = 0.0, mn = Float.infinity, mx = -Float.infinity
    for k in 0..<chunks {
        sum += partials[4 * k]
        absSum += partials[4 * k + 1]
        mn = Swift.min(mn, Float(partials[4 * k + 2]))
        mx = Swift.max(mx, Float(partials[4 * k + 3]))
    }
    let mean = sum / Double(count)
    parallelFor(chunks) { k in
        let lo = k * elementwiseChunk, hi = min(count, lo + elementwiseChunk)
        var s = 0.0
        for i in lo..<hi { let dv = Double(x[i]) - mean; s += dv * dv }
        partials[k] = s
    }
    var squares = 0.0
    for k in 0..<chunks { squares += partials[k] }
    let std = count > 1 ? (squares / Double(count - 1)).squareRoot() : .nan
    return TensorStatistics(mean: mean, std: std, min: mn, max: mx, meanAbs: absSum / Double(count))
}
