import Kernels
import Tensors

// Channel concatenation, split (chunk) and shuffle of 4-D tensors, as functions a block calls inside its
// forward and backward (torchvision computes them in `Fire.forward` and `InvertedResidual.forward`, not in
// modules). All three are one gather, y[n, c] = x_{s(c)}[n, k(c)] (`gatherChannels`); each is a
// permutation of channels, so its backward is the gather of the inverse permutation (given with each).
// Inputs may be in any layout; outputs take `channelLayout(channels:preferring:)` of the first input's.

/// `preferred` when its channel block divides `channels`; else nChw8c when `preferred` is blocked and 8
/// divides `channels`; else plain. (A 48-channel nChw16c tensor split in two gives 24-channel nChw8c halves.)
public func channelLayout(channels: Int, preferring preferred: Layout) -> Layout {
    if channels % preferred.block == 0 { return preferred }
    return preferred.block > 8 && channels % 8 == 0 ? .blocked(8) : .plain
}

/// y[:, c] = sources[map[c].source][:, map[c].channel] for c < map.count.
/// sources: 4-D [N, C_s, H, W] with equal N, H, W, any layouts → y [N, map.count, H, W] in `layout`
/// (default: `channelLayout(channels: map.count, preferring: sources[0].layout)`).
public func gatherChannels(_ sources: [Tensor], _ map: [(source: Int, channel: Int)], layout: Layout? = nil) -> Tensor {
    precondition(!sources.isEmpty && sources.allSatisfy { $0.shape.count == 4 }
                 && sources.allSatisfy { $0.shape[0] == sources[0].shape[0] && $0.shape[2...] == sources[0].shape[2...] },
                 "gatherChannels needs 4-D sources of equal N, H, W, got \(sources.map(\.shape))")
    let (N, H, W) = (sources[0].shape[0], sources[0].shape[2], sources[0].shape[3])
    let C = map.count
    let out = layout ?? channelLayout(channels: C, preferring: sources[0].layout)
    let y = Tensor(shape: [N, C, H, W], layout: out, zeroed: false)
    func withBases<R>(_ i: Int, _ acc: [ChannelSource], _ body: ([ChannelSource]) -> R) -> R {
        if i == sources.count { return body(acc) }
        return sources[i].withUnsafeMutablePointer { p in
            withBases(i + 1, acc + [ChannelSource(base: p, channels: sources[i].shape[1], block: sources[i].layout.block)], body)
        }
    }
    withBases(0, []) { bases in
        y.withUnsafeMutablePointer { yp in
            gatherChannels(y: yp, C: C, b: out.block, N: N, HW: H * W, sources: bases,
                           sourceOf: map.map(\.source), channelOf: map.map(\.channel))
        }
    }
    return y
}

/// `torch.cat(xs, dim=1)`: xs [N, C_i, H, W] → y [N, Σ C_i, H, W].
/// Backward: `splitChannels(dy, sizes: xs.map { $0.shape[1] })`.
public func concatenateChannels(_ xs: [Tensor], layout: Layout? = nil) -> Tensor {
    gatherChannels(xs, xs.indices.flatMap { s in (0..<xs[s].shape[1]).map { (source: s, channel: $0) } }, layout: layout)
}

/// The consecutive channel ranges of x of the given sizes (`torch.split(x, sizes, dim=1)`; with equal
/// sizes `x.chunk(parts, dim=1)`): x [N, Σ sizes, H, W] → [N, sizes[i], H, W], each in
/// `channelLayout(channels: sizes[i], preferring: x.layout)`. Backward: `concatenateChannels(dys)`.
public func splitChannels(_ x: Tensor, sizes: [Int]) -> [Tensor] {
    precondition(x.shape.count == 4 && sizes.allSatisfy { $0 > 0 } && sizes.reduce(0, +) == x.shape[1],
                 "splitChannels: sizes \(sizes) of \(x.shape)")
    var start = 0
    return sizes.map { size in
        defer { start += size }
        return gatherChannels([x], (start..<start + size).map { (source: 0, channel: $0) })
    }
}

/// `channel_shuffle(x, groups)` of torchvision's shufflenetv2.py: view [N, g, C/g, H, W], transpose to
/// [N, C/g, g, H, W], flatten. y[:, j·g + i] = x[:, i·(C/g) + j] for i < g, j < C/g.
/// Backward: `shuffleChannels(dy, groups: C/g)` (the inverse permutation).
public func shuffleChannels(_ x: Tensor, groups g: Int) -> Tensor {
    precondition(x.shape.count == 4 && g > 0 && x.shape[1] % g == 0, "shuffleChannels: \(g) groups of \(x.shape)")
    let m = x.shape[1] / g
    return gatherChannels([x], (0..<x.shape[1]).map { c in (source: 0, channel: (c % g) * m + c / g) }, layout: x.layout)
}
