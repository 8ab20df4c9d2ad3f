// Elementwise kernels on flat buffers of `count` floats. They ignore shape and layout: callers make the
// operands' layouts agree first. Work is split into fixed chunks of `elementwiseChunk` elements, each
// written by one thread, so results never depend on the thread count.
//
// Legend: x input, y output, dy upstream gradient, dx input gradient.

/// Elements per parallel work item (64 KiB of floats).
public let elementwiseChunk = 16_384

@inline(__always)
func forEachChunk(_ count: Int, _ body: (_ lo: Int, _ hi: Int) -> Void) {
    let chunks = (count + elementwiseChunk - 1) / elementwiseChunk
    parallelFor(chunks) { k in
        body(k * elementwiseChunk, min(count, (k + 1) * elementwiseChunk))
    }
}

// MARK: ReLU

/// y = max(x, 0) (NaN propagates, as in PyTorch).
public func reluForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi { let v = x[i]; y[i] = v < 0 ? 0 : v }
    }
}

/// Naive twin of `reluForward`.
public func reluForwardNaive(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = x[i] < 0 ? 0 : x[i] }
}

/// dx = dy where y > 0, else 0 (y is the forward output; PyTorch's threshold_backward on the result).
public func reluBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        // Both loads are unconditional so the select vectorizes (a branch mispredicts on half the elements).
        for i in lo..<hi { let g = dy[i]; dx[i] = y[i] > 0 ? g : 0 }
    }
}

/// Naive twin of `reluBackward`.
public func reluBackwardNaive(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : 0 }
}

// MARK: ReLU6

/// y = min(max(x, 0), 6) (NaN propagates).
public func relu6Forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi {
            let v = x[i]
            y[i] = v < 0 ? 0 : (v > 6 ? 6 : v)
        }
    }
}

/// Naive twin of `relu6Forward`.
public func relu6ForwardNaive(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = x[i] < 0 ? 0 : (x[i] > 6 ? 6 : x[i]) }
}

/// dx = dy where 0 < y < 6, else 0 (hardtanh backward; y is the forward output, and 0 < y < 6 exactly
/// when 0 < x < 6).
public func relu6Backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi {
            let v = y[i], g = dy[i]
            dx[i] = (v > 0) && (v < 6) ? g : 0
        }
    }
}

/// Naive twin of `relu6Backward`.
public func relu6BackwardNaive(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = (y[i] > 0 && y[i] < 6) ? dy[i] : 0 }
}

// MARK: Arithmetic

/// y = a + b.
public func addForward(y: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi { y[i] = a[i] + b[i] }
    }
}

/// Naive twin of `addForward`.
public func addForwardNaive(y: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = a[i] + b[i] }
}

/// y += x.
public func accumulate(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi { y[i] += x[i] }
    }
}

/// Naive twin of `accumulate`.
public func accumulateNaive(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += x[i] }
}

/// y = s·x.
public func scaleForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, s: Float, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi { y[i] = s * x[i] }
    }
}

/// Naive twin of `scaleForward`.
public func scaleForwardNaive(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, s: Float, count: Int) {
    for i in 0..<count { y[i] = s * x[i] }
}

/// y = a ⊙ b (dropout applies its scaled mask with it, forward and backward).
public func multiplyForward(y: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int) {
    forEachChunk(count) { lo, hi in
        for i in lo..<hi { y[i] = a[i] * b[i] }
    }
}

/// Naive twin of `multiplyForward`.
public func multiplyForwardNaive(y: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = a[i] * b[i] }
}
