import Foundation
import Kernels

// Timing of the convolution fast path (`sqakd bench conv`). Compare with scripts/bench_conv_torch.py, which
// times PyTorch on the same shapes and thread count.

/// Times forward, backward-data and backward-weights of each geometry (activations in the blocks the
/// layers use: x in `xBlock`, y/dy in `convOutputBlock`), after two warm-up rounds. Returns one line per
/// geometry with milliseconds per call, median (and minimum) over `iterations`, and the implementations
/// oneDNN runs. On a shared machine the minimum is the better estimate of the uncontended time.
public func convBenchmark(_ geometries: [(name: String, geometry: ConvGeometry, xBlock: Int)],
                          threads: Int, iterations: Int) -> [String] {
    Threads.set(threads)
    var lines = ["threads \(threads), oneDNN \(dnnlVersion()), median (min) of \(iterations) calls, ms"]
    var totals = [0.0, 0.0, 0.0], minTotals = [0.0, 0.0, 0.0]
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

        func time(_ body: () -> Void) -> (median: Double, min: Double) {
            for _ in 0..<2 { body() }
            var times: [Double] = []
            for _ in 0..<max(1, iterations) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            times.sort()
            return (times[times.count / 2], times[0])
        }
        let f = time { convForward(y, yBlock: yBlock, x, xBlock: xBlock, w, nil, g) }
        let bd = time { convBackwardData(dx, dxBlock: xBlock, dy, dyBlock: yBlock, w, g) }
        let bw = time { convBackwardWeights(dw, nil, x, xBlock: xBlock, dy, dyBlock: yBlock, g) }
        totals[0] += f.median; totals[1] += bd.median; totals[2] += bw.median
        minTotals[0] += f.min; minTotals[1] += bd.min; minTotals[2] += bw.min
        let gmacs = Double(g.macs) / 1e9
        lines.append(String(format: "%@: fwd %.2f (%.2f)  bwd-data %.2f (%.2f)  bwd-weights %.2f (%.2f)  total %.2f (%.2f)  [%.0f GMAC/s fwd at min]",
                            name, f.median, f.min, bd.median, bd.min, bw.median, bw.min,
                            f.median + bd.median + bw.median, f.min + bd.min + bw.min, gmacs / (f.min / 1e3)))
        for info in convPlanInfo(g, bias: false, xBlock: xBlock) { lines.append("    \(info)") }
    }
    lines.append(String(format: "sum: fwd %.2f (%.2f)  bwd-data %.2f (%.2f)  bwd-weights %.2f (%.2f)  total %.2f (%.2f)",
                        totals[0], minTotals[0], totals[1], minTotals[1], totals[2], minTotals[2],
                        totals.reduce(0, +), minTotals.reduce(0, +)))
    return lines
}

/// `convBenchmark` on the five distinct 3×3 convolutions of ResNet-20 (CIFAR, batch 128) plus its stem.
/// Inputs arrive in the block a preceding C→C convolution would have written (plain for the stem).
public func convBenchmarkResNet20(threads: Int, iterations: Int, batch: Int = 128) -> [String] {
    func g(_ c: Int, _ hw: Int, _ k: Int, _ s: Int) -> ConvGeometry {
        ConvGeometry(batch: batch, inputChannels: c, inputHeight: hw, inputWidth: hw, outputChannels: k,
                     kernelSize: 3, stride: s, padding: 1)
    }
    func entry(_ name: String, _ c: Int, _ hw: Int, _ k: Int, _ s: Int) -> (String, ConvGeometry, Int) {
        (name, g(c, hw, k, s), c == 3 ? 1 : convOutputBlock(g(c, hw, c, 1), bias: false))
    }
    return convBenchmark([
        entry("stem 3->16 32x32", 3, 32, 16, 1),
        entry("16->16 32x32", 16, 32, 16, 1),
        entry("16->32 s2 32x32", 16, 32, 32, 2),
        entry("32->32 16x16", 32, 16, 32, 1),
        entry("32->64 s2 16x16", 32, 16, 64, 2),
        entry("64->64 8x8", 64, 8, 64, 1),
    ], threads: threads, iterations: iterations)
}
