import Foundation

// Timing helper for the convolution fast path (a function, not a timed unit test: the disabled-by-default
// `ConvolutionBenchmark` test and scratch scripts call it). Compare with scripts that time PyTorch on the
// same shapes and thread count.

/// Times forward, backward-data and backward-weights of each geometry (activations in the blocks the
/// layers use: x in `xBlock`, y/dy in `convOutputBlock`), after two warm-up rounds. Returns one line per
/// geometry with milliseconds per call (median over `iterations`) and the implementations oneDNN runs.
public func convBenchmark(_ geometries: [(name: String, geometry: ConvGeometry, xBlock: Int)],
                          threads: Int, iterations: Int) -> [String] {
    Threads.set(threads)
    var lines = ["threads \(threads), oneDNN \(dnnlVersion()), median of \(iterations) calls, ms"]
    var totals = [0.0, 0.0, 0.0]
    for (name, g, xBlock) in geometries {
        let yBlock = convOutputBlock(g, bias: false)
        let xCount = g.inputShape.reduce(1, *), yCount = g.outputShape.reduce(1, *)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: xCount)
        let dx = UnsafeMutablePointer<Float>.allocate(capacity: xCount)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: yCount)
        let dy = UnsafeMutablePointer<Float>.allocate(capacity: yCount)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: g.weightCount)
        let dw = UnsafeMutablePointer<Float>.allocate(capacity: g.weightCount)
        defer { for p in [x, dx, y, dy, w, dw] { p.deallocate() } }
        for i in 0..<xCount { x[i] = Float(i % 17) * 0.1 - 0.8 }
        for i in 0..<yCount { dy[i] = Float(i % 13) * 0.1 - 0.6 }
        for i in 0..<g.weightCount { w[i] = Float(i % 7) * 0.01 - 0.03; dw[i] = 0 }

        func median(_ body: () -> Void) -> Double {
            for _ in 0..<2 { body() }
            var times: [Double] = []
            for _ in 0..<max(1, iterations) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return times.sorted()[times.count / 2]
        }
        let f = median { convForward(y, yBlock: yBlock, x, xBlock: xBlock, w, nil, g) }
        let bd = median { convBackwardData(dx, dxBlock: xBlock, dy, dyBlock: yBlock, w, g) }
        let bw = median { convBackwardWeights(dw, nil, x, xBlock: xBlock, dy, dyBlock: yBlock, g) }
        totals[0] += f; totals[1] += bd; totals[2] += bw
        let gmacs = Double(g.macs) / 1e9
        lines.append(String(format: "%@: fwd %.2f  bwd-data %.2f  bwd-weights %.2f  total %.2f  (%.0f GMAC/s fwd)",
                            name, f, bd, bw, f + bd + bw, gmacs / (f / 1e3)))
        for info in convPlanInfo(g, bias: false, xBlock: xBlock) { lines.append("    \(info)") }
    }
    lines.append(String(format: "sum: fwd %.2f  bwd-data %.2f  bwd-weights %.2f  total %.2f",
                        totals[0], totals[1], totals[2], totals.reduce(0, +)))
    return lines
}

/// `convBenchmark` on the five distinct 3×3 convolutions of ResNet-20 (CIFAR, batch 128) plus its stem.
public func convBenchmarkResNet20(threads: Int, iterations: Int, batch: Int = 128) -> [String] {
    func g(_ c: Int, _ hw: Int, _ k: Int, _ s: Int) -> ConvGeometry {
        ConvGeometry(batch: batch, inputChannels: c, inputHeight: hw, inputWidth: hw, outputChannels: k,
                     kernelSize: 3, stride: s, padding: 1)
    }
    return convBenchmark([
        ("stem 3->16 32x32", g(3, 32, 16, 1), 1),
        ("16->16 32x32", g(16, 32, 16, 1), 16),
        ("16->32 s2 32x32", g(16, 32, 32, 2), 16),
        ("32->32 16x16", g(32, 16, 32, 1), 16),
        ("32->64 s2 16x16", g(32, 16, 64, 2), 16),
        ("64->64 8x8", g(64, 8, 64, 1), 16),
    ], threads: threads, iterations: iterations)
}
