// Optimizer update kernels (SGD with momentum, Adam) on flat float32 buffers of `count` elements,
// PyTorch 1.13 operation order (torch.optim.SGD / Adam, single-tensor path). Elementwise, split into
// fixed chunks run in parallel, so results never depend on the thread count.
//
// Legend: p parameter, g gradient, buf momentum buffer, m first moment (exp_avg), v second moment
// (exp_avg_sq), wd coupled L2 weight decay. All scalars arrive already rounded to float32, as torch's
// kernels receive them. torch fuses `a + α·b` into an FMA; these loops round the product and the sum
// separately (the build targets baseline x86-64, without FMA), so they agree with torch to about one ulp
// per operation.
//
// The chunk bodies are separate functions whose pointers and scalars are plain arguments: the loop
// vectoriser then sees loop-invariant operands (it does not when they are read from a closure context).

/// Elements per parallel work item.
public let optimizerKernelChunk = 1 << 16

@inline(__always)
private func forEachOptimizerChunk(_ count: Int, _ body: (_ lo: Int, _ hi: Int) -> Void) {
    if count <= optimizerKernelChunk {
        body(0, count)
        return
    }
    let chunks = (count + optimizerKernelChunk - 1) / optimizerKernelChunk
    parallelFor(chunks) { k in
        body(k * optimizerKernelChunk, min(count, (k + 1) * optimizerKernelChunk))
    }
}

// MARK: SGD

/// What an SGD step does with the momentum buffer.
public enum SGDMomentumMode: Sendable {
    /// momentum = 0: no buffer.
    case none
    /// First step with momentum: buf = g.
    case initialize
    /// Later steps: buf = momentum·buf + g.
    case update
}

/// One `torch.optim.SGD` step (dampening 0):
///
///     g = grad + wd·p                      (skipped when wd = 0)
///     buf = g (initialize) | momentum·buf + g (update)
///     u = g + momentum·buf (nesterov) | buf | g (no momentum)
///     p = p + (−lr)·u
///
/// `buf` may be nil only with mode `.none`.
public func sgdStep(p: UnsafeMutablePointer<Float>, buf: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                    count: Int, lr: Float, weightDecay: Float, momentum: Float, nesterov: Bool, mode: SGDMomentumMode) {
    precondition(mode == .none || buf != nil, "SGD momentum step without a momentum buffer")
    forEachOptimizerChunk(count) { lo, hi in
        sgdChunk(p + lo, buf.map { $0 + lo }, grad + lo, hi - lo, lr, weightDecay, momentum, nesterov, mode)
    }
}

@inline(never)
private func sgdChunk(_ p: UnsafeMutablePointer<Float>, _ buf: UnsafeMutablePointer<Float>?, _ grad: UnsafePointer<Float>,
                      _ n: Int, _ lr: Float, _ wd: Float, _ mu: Float, _ nesterov: Bool, _ mode: SGDMomentumMode) {
    // Every branch is decided here, outside the loop, with literal flags: a data-independent select
    // inside the loop body stops LLVM from vectorising it.
    let b = buf ?? p
    switch (mode, nesterov, wd != 0) {
    case (.none, _, false): sgdLoop(p, b, grad, n, -lr, wd, mu, .none, false, false)
    case (.none, _, true): sgdLoop(p, b, grad, n, -lr, wd, mu, .none, false, true)
    case (.initialize, false, false): sgdLoop(p, b, grad, n, -lr, wd, mu, .initialize, false, false)
    case (.initialize, false, true): sgdLoop(p, b, grad, n, -lr, wd, mu, .initialize, false, true)
    case (.initialize, true, false): sgdLoop(p, b, grad, n, -lr, wd, mu, .initialize, true, false)
    case (.initialize, true, true): sgdLoop(p, b, grad, n, -lr, wd, mu, .initialize, true, true)
    case (.update, false, false): sgdLoop(p, b, grad, n, -lr, wd, mu, .update, false, false)
    case (.update, false, true): sgdLoop(p, b, grad, n, -lr, wd, mu, .update, false, true)
    case (.update, true, false): sgdLoop(p, b, grad, n, -lr, wd, mu, .update, true, false)
    case (.update, true, true): sgdLoop(p, b, grad, n, -lr, wd, mu, .update, true, true)
    }
}

@inline(__always)
private func sgdLoop(_ p: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>,
                     _ n: Int, _ negLR: Float, _ wd: Float, _ mu: Float,
                     _ mode: SGDMomentumMode, _ nesterov: Bool, _ useWD: Bool) {
    for k in 0..<n {
        let d = useWD ? grad[k] + wd * p[k] : grad[k]
        let u: Float
        switch mode {
        case .none:
            u = d
        case .initialize:
            b[k] = d
            u = nesterov ? d + mu * d : d
        case .update:
            let m = b[k] * mu + d
            b[k] = m
            u = nesterov ? d + mu * m : m
        }
        p[k] = p[k] + negLR * u
    }
}

/// Naive twin of `sgdStep` (single thread, one branchy loop).
public func sgdStepNaive(p: UnsafeMutablePointer<Float>, buf: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                         count: Int, lr: Float, weightDecay: Float, momentum: Float, nesterov: Bool, mode: SGDMomentumMode) {
    for k in 0..<count {
        var d = grad[k]
        if weightDecay != 0 { d = d + weightDecay * p[k] }
        var u = d
        switch mode {
        case .none: break
        case .initialize:
            buf![k] = d
            u = nesterov ? d + momentum * d : d
        case .update:
            buf![k] = buf![k] * momentum + d
            u = nesterov ? d + momentum * buf![k] : buf![k]
        }
        p[k] = p[k] + (-lr) * u
    }
}

// MARK: Adam

/// One `torch.optim.Adam` step (amsgrad off) for one tensor, after the caller has advanced its step
/// count t and computed the Double scalars negStepSize = −lr/(1 − β1^t), bias2Sqrt = sqrt(1 − β2^t):
///
///     g = grad + wd·p                      (skipped when wd = 0; coupled L2)
///     m = m·β1 + (1 − β1)·g
///     v = v·β2 + (1 − β2)·g·g
///     p = p + (negStepSize·m) / (sqrt(v)/bias2Sqrt + eps)
public func adamStep(p: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                     grad: UnsafePointer<Float>, count: Int, negStepSize: Float, bias2Sqrt: Float, eps: Float,
                     beta1: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float, weightDecay: Float) {
    forEachOptimizerChunk(count) { lo, hi in
        adamChunk(p + lo, m + lo, v + lo, grad + lo, hi - lo, negStepSize, bias2Sqrt, eps,
                  beta1, oneMinusBeta1, beta2, oneMinusBeta2, weightDecay)
    }
}

@inline(never)
private func adamChunk(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                       _ grad: UnsafePointer<Float>, _ n: Int, _ negStepSize: Float, _ bias2Sqrt: Float, _ eps: Float,
                       _ b1: Float, _ c1: Float, _ b2: Float, _ c2: Float, _ wd: Float) {
    if wd != 0 {
        adamLoop(p, m, v, grad, n, negStepSize, bias2Sqrt, eps, b1, c1, b2, c2, wd, true)
    } else {
        adamLoop(p, m, v, grad, n, negStepSize, bias2Sqrt, eps, b1, c1, b2, c2, wd, false)
    }
}

/// Note: `squareRoot()` lowers to an errno-setting `sqrtf` call on Linux, which keeps this loop scalar
/// (building with `-Xcc -fno-math-errno` would let LLVM vectorise it).
@inline(__always)
private func adamLoop(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                      _ grad: UnsafePointer<Float>, _ n: Int, _ negStepSize: Float, _ bias2Sqrt: Float, _ eps: Float,
                      _ b1: Float, _ c1: Float, _ b2: Float, _ c2: Float, _ wd: Float, _ useWD: Bool) {
    for k in 0..<n {
        let d = useWD ? grad[k] + wd * p[k] : grad[k]
        let mk = m[k] * b1 + c1 * d
        let vk = v[k] * b2 + c2 * d * d
        m[k] = mk
        v[k] = vk
        p[k] = p[k] + negStepSize * mk / (vk.squareRoot() / bias2Sqrt + eps)
    }
}

/// Naive twin of `adamStep`.
public func adamStepNaive(p: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                          grad: UnsafePointer<Float>, count: Int, negStepSize: Float, bias2Sqrt: Float, eps: Float,
                          beta1: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float, weightDecay: Float) {
    for k in 0..<count {
        var d = grad[k]
        if weightDecay != 0 { d = d + weightDecay * p[k] }
        m[k] = m[k] * beta1 + oneMinusBeta1 * d
        v[k] = v[k] * beta2 + oneMinusBeta2 * d * d
        let denom = v[k].squareRoot() / bias2Sqrt + eps
        p[k] = p[k] + negStepSize * m[k] / denom
    }
}
