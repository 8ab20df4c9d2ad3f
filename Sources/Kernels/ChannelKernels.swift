// Channel gathers: concatenation, split (chunk) and shuffle along the channel axis of 4-D tensors are all
// one copy y[n, c] = source_{s(c)}[n, k(c)] (ShuffleNet-V2, Ma et al. 2018; SqueezeNet's Fire concat).
//
// Legend: N batch, HW = H·W pixels per channel, C output channels in block b (1 = plain NCHW), so y is
// [N, C/b, HW, b]. Source s has C_s channels in block b_s: [N, C_s/b_s, HW, b_s]; channel k of sample n
// starts at (n·C_s/b_s + k/b_s)·HW·b_s + k%b_s with pixel stride b_s. The map names, for every output
// channel c, its source `sourceOf[c]` and the channel `channelOf[c]` in it; a source channel may be read
// by no output channel (a split) or by several.

/// One input of `gatherChannels`: its storage, channel count and channel block (1 = plain).
public struct ChannelSource {
    public let base: UnsafePointer<Float>
    public let channels: Int
    public let block: Int

    public init(base: UnsafePointer<Float>, channels: Int, block: Int) {
        self.base = base
        self.channels = channels
        self.block = block
    }
}

/// y[n, c, p] = sources[sourceOf[c]][n, channelOf[c], p] for n < N, c < C, p < HW.
///
/// Per output plane (n, c/b), in parallel: a whole b-channel block copied in one piece when its b lanes
/// are b consecutive channels of one block-aligned source block of the same block size (concat and
/// split at block boundaries); otherwise lane by lane, each lane read through its own pointer and pixel
/// stride (shuffle, unaligned splits, layout changes).
public func gatherChannels(
    y: UnsafeMutablePointer<Float>, C: Int, b: Int, N: Int, HW: Int,
    sources: [ChannelSource], sourceOf: [Int], channelOf: [Int]
) {
    precondition(C % b == 0 && sourceOf.count == C && channelOf.count == C,
                 "gatherChannels: C \(C), block \(b), map of \(sourceOf.count)/\(channelOf.count) channels")
    // Per output channel: offset of its source channel inside sample 0, the source's sample stride and
    // pixel stride.
    var offset = [Int](repeating: 0, count: C), sampleStride = offset, pixelStride = offset
    var base = [UnsafePointer<Float>](repeating: sources[0].base, count: C)
    for c in 0..<C {
        let s = sources[sourceOf[c]], k = channelOf[c]
        precondition(k >= 0 && k < s.channels, "gatherChannels: channel \(k) of a \(s.channels)-channel source")
        base[c] = s.base
        offset[c] = (k / s.block) * HW * s.block + k % s.block
        sampleStride[c] = s.channels * HW
        pixelStride[c] = s.block
    }
    // Whether output block cb is one aligned source block of the same size, read in order.
    var wholeBlock = [Bool](repeating: false, count: C / b)
    for cb in 0..<C / b {
        let c0 = cb * b, s = sourceOf[c0], k0 = channelOf[c0]
        wholeBlock[cb] = sources[s].block == b && k0 % b == 0
            && (1..<max(1, b)).allSatisfy { sourceOf[c0 + $0] == s && channelOf[c0 + $0] == k0 + $0 }
    }
    let CB = C / b
    offset.withUnsafeBufferPointer { offset in sampleStride.withUnsafeBufferPointer { sampleStride in
    pixelStride.withUnsafeBufferPointer { pixelStride in base.withUnsafeBufferPointer { base in
    wholeBlock.withUnsafeBufferPointer { wholeBlock in
        parallelFor(N * CB) { plane in
            let n = plane / CB, cb = plane % CB, c0 = cb * b
            let dst = y + plane * HW * b
            if wholeBlock[cb] {
                dst.update(from: base[c0] + n * sampleStride[c0] + offset[c0], count: HW * b)
                return
            }
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: b) { lane in
                for l in 0..<b { lane[l] = base[c0 + l] + n * sampleStride[c0 + l] + offset[c0 + l] }
                if b == 1 {
                    let src = lane[0], stride = pixelStride[c0]
                    if stride == 1 { dst.update(from: src, count: HW) } else { for p in 0..<HW { dst[p] = src[p * stride] } }
                    return
                }
                for l in 0..<b {
                    let src = lane[l], stride = pixelStride[c0 + l]
                    for p in 0..<HW { dst[p * b + l] = src[p * stride] }
                }
            }
        }
    } } } } }
}

/// Naive twin of `gatherChannels`: one element at a time, indices from the layout formula.
public func gatherChannelsNaive(
    y: UnsafeMutablePointer<Float>, C: Int, b: Int, N: Int, HW: Int,
    sources: [ChannelSource], sourceOf: [Int], channelOf: [Int]
) {
    for n in 0..<N {
        for c in 0..<C {
            let s = sources[sourceOf[c]], k = channelOf[c]
            for p in 0..<HW {
                let from = ((n * (s.channels / s.block) + k / s.block) * HW + p) * s.block + k % s.block
                let to = ((n * (C / b) + c / b) * HW + p) * b + c % b
                y[to] = s.base[from]
            }
        }
    }
}
