// Naive direct convolution: the test oracle for Convolution.swift. Same arguments and semantics as
// `convForward`, `convBackwardData`, `convBackwardWeights` (any activation block, plain OIHW weights,
// overwritten dx, accumulated dweight/dbias); sums in double precision, single-threaded, slow.

/// Offset of activation element (n, c, h, w) of a [N, C, H, W] tensor in block `b` (1 = plain NCHW).
@inline(__always)
func activationOffset(_ n: Int, _ c: Int, _ h: Int, _ w: Int, C: Int, H: Int, W: Int, block b: Int) -> Int {
    ((n * (C / b) + c / b) * H * W + h * W + w) * b + c % b
}

/// Reference for `convForward`.
public func convForwardReference(_ y: UnsafeMutablePointer<Float>, yBlock: Int,
                                 _ x: UnsafePointer<Float>, xBlock: Int,
                                 _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                 _ g: ConvGeometry) {
    let C = g.inputChannels, H = g.inputHeight, W = g.inputWidth
    let K = g.outputChannels, P = g.outputHeight, Q = g.outputWidth
    let R = g.kernelHeight, S = g.kernelWidth, Cg = C / g.groups, Kg = K / g.groups
    for n in 0..<g.batch {
        for k in 0..<K {
            let c0 = (k / Kg) * Cg
            for p in 0..<P {
                for q in 0..<Q {
                    var acc = Double(bias?[k] ?? 0)
                    for c in 0..<Cg {
                        for r in 0..<R {
                            let h = p * g.strideHeight - g.paddingHeight + r
                            if h < 0 || h >= H { continue }
                            for s in 0..<S {
                                let w = q * g.strideWidth - g.paddingWidth + s
                                if w < 0 || w >= W { continue }
                                let xv = x[activationOffset(n, c0 + c, h, w, C: C, H: H, W: W, block: xBlock)]
                                acc += Double(xv) * Double(weight[((k * Cg + c) * R + r) * S + s])
                            }
                        }
                    }
                    y[activationOffset(n, k, p, q, C: K, H: P, W: Q, block: yBlock)] = Float(acc)
                }
            }
        }
    }
}

/// Reference for `convBackwardData` (dx overwritten).
public func convBackwardDataReference(_ dx: UnsafeMutablePointer<Float>, dxBlock: Int,
                                      _ dy: UnsafePointer<Float>, dyBlock: Int,
                                      _ weight: UnsafePointer<Float>,
                                      _ g: ConvGeometry) {
    let C = g.inputChannels, H = g.inputHeight, W = g.inputWidth
    let K = g.outputChannels, P = g.outputHeight, Q = g.outputWidth
    let R = g.kernelHeight, S = g.kernelWidth, Cg = C / g.groups, Kg = K / g.groups
    var acc = [Double](repeating: 0, count: g.batch * C * H * W)
    for n in 0..<g.batch {
        for k in 0..<K {
            let c0 = (k / Kg) * Cg
            for p in 0..<P {
                for q in 0..<Q {
                    let d = Double(dy[activationOffset(n, k, p, q, C: K, H: P, W: Q, block: dyBlock)])
                    for c in 0..<Cg {
                        for r in 0..<R {
                            let h = p * g.strideHeight - g.paddingHeight + r
                            if h < 0 || h >= H { continue }
                            for s in 0..<S {
                                let w = q * g.strideWidth - g.paddingWidth + s
                                if w < 0 || w >= W { continue }
                                acc[((n * C + c0 + c) * H + h) * W + w] += d * Double(weight[((k * Cg + c) * R + r) * S + s])
                            }
                        }
                    }
                }
            }
        }
    }
    for n in 0..<g.batch {
        for c in 0..<C {
            for h in 0..<H {
                for w in 0..<W {
                    dx[activationOffset(n, c, h, w, C: C, H: H, W: W, block: dxBlock)] = Float(acc[((n * C + c) * H + h) * W + w])
                }
            }
        }
    }
}

/// Reference for `convBackwardWeights` (dweight and dbias accumulated).
public func convBackwardWeightsReference(_ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>?,
                                         _ x: UnsafePointer<Float>, xBlock: Int,
                                         _ dy: UnsafePointer<Float>, dyBlock: Int,
                                         _ g: ConvGeometry) {
    let C = g.inputChannels, H = g.inputHeight, W = g.inputWidth
    let K = g.outputChannels, P = g.outputHeight, Q = g.outputWidth
    let R = g.kernelHeight, S = g.kernelWidth, Cg = C / g.groups, Kg = K / g.groups
    for k in 0..<K {
        let c0 = (k / Kg) * Cg
        if let dbias {
            var acc = 0.0
            for n in 0..<g.batch {
                for p in 0..<P {
                    for q in 0..<Q { acc += Double(dy[activationOffset(n, k, p, q, C: K, H: P, W: Q, block: dyBlock)]) }
                }
            }
            dbias[k] += Float(acc)
        }
        for c in 0..<Cg {
            for r in 0..<R {
                for s in 0..<S {
                    var acc = 0.0
                    for n in 0..<g.batch {
                        for p in 0..<P {
                            let h = p * g.strideHeight - g.paddingHeight + r
                            if h < 0 || h >= H { continue }
                            for q in 0..<Q {
                                let w = q * g.strideWidth - g.paddingWidth + s
                                if w < 0 || w >= W { continue }
                                acc += Double(dy[activationOffset(n, k, p, q, C: K, H: P, W: Q, block: dyBlock)])
                                    * Double(x[activationOffset(n, c0 + c, h, w, C: C, H: H, W: W, block: xBlock)])
                            }
                        }
                    }
                    dweight[((k * Cg + c) * R + r) * S + s] += Float(acc)
                }
            }
        }
    }
}
