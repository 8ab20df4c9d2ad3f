import TestSupport
import Testing
import Tensors
import Kernels
@testable import NN

/// A parameter-free layer made of a forward and a backward function (a channel op under test).
final class FunctionLayer: Layer {
    let f: (Tensor) -> Tensor
    let df: (Tensor) -> Tensor
    init(_ f: @escaping (Tensor) -> Tensor, backward df: @escaping (Tensor) -> Tensor) {
        self.f = f
        self.df = df
    }
    func forward(_ x: Tensor, mode: Mode) -> Tensor { f(x) }
    func backward(_ dy: Tensor) -> Tensor { df(dy) }
}

@Suite("Channel concatenation, split and shuffle")
struct ChannelGatherTests {
    /// The fast gather equals its naive twin bit for bit on every pair of source/output layouts, for a
    /// concat-and-shuffle map over two sources (whole-block copies and lane-by-lane copies both occur).
    @Test(arguments: LayerTestKit.layouts)
    func gatherMatchesNaiveTwin(_ outLayout: Layout) {
        for (la, lb) in [(Layout.plain, Layout.blocked(8)), (.blocked(16), .blocked(16)), (.blocked(8), .plain)] {
            let a = randomTensor([2, 48, 3, 5], seed: 1).toLayout(la), b = randomTensor([2, 16, 3, 5], seed: 2).toLayout(lb)
            var concat: [(source: Int, channel: Int)] = [], interleave = concat, reverse = concat
            for c in 0..<64 { concat.append(c < 48 ? (source: 0, channel: c) : (source: 1, channel: c - 48)) }
            for j in 0..<16 {
                interleave.append((source: 0, channel: 16 + j))
                interleave.append((source: 1, channel: j))
                reverse.append((source: 0, channel: 47 - j))
            }
            let maps = [concat, interleave, reverse]
            for map in maps {
                let fast = gatherChannels([a, b], map, layout: outLayout)
                let naive = Tensor(shape: fast.shape, layout: outLayout)
                withUnsafeMutablePointers(naive, a, b) { y, pa, pb in
                    gatherChannelsNaive(y: y, C: map.count, b: outLayout.block, N: 2, HW: 15,
                                        sources: [ChannelSource(base: pa, channels: 48, block: la.block),
                                                  ChannelSource(base: pb, channels: 16, block: lb.block)],
                                        sourceOf: map.map(\.source), channelOf: map.map(\.channel))
                }
                #expect(LayerTestKit.identical(fast, naive), "\(la) \(lb) → \(outLayout), \(map.count) channels")
            }
        }
    }

    @Test func layoutChoice() {
        #expect(channelLayout(channels: 24, preferring: .blocked(16)) == .blocked(8))
        #expect(channelLayout(channels: 48, preferring: .blocked(16)) == .blocked(16))
        #expect(channelLayout(channels: 12, preferring: .blocked(8)) == .plain)
        #expect(channelLayout(channels: 10, preferring: .plain) == .plain)
    }

    /// Shuffle then its documented backward (shuffle with C/g groups) is the identity; split then concat too.
    @Test func inversesRoundTrip() {
        let x = randomTensor([2, 24, 2, 3], seed: 3)
        for g in [2, 3, 4] {
            #expect(shuffleChannels(shuffleChannels(x, groups: g), groups: 24 / g).plainArray == x.plainArray)
        }
        #expect(concatenateChannels(splitChannels(x, sizes: [5, 8, 11])).plainArray == x.plainArray)
    }

    /// Finite differences through each op (they are linear: this checks forward and backward agree).
    @Test func finiteDifferences() {
        let fixed = [randomTensor([2, 8, 3, 3], seed: 4), randomTensor([2, 16, 3, 3], seed: 5)]
        let layers: [(String, FunctionLayer, Int)] = [
            ("concat", FunctionLayer({ concatenateChannels([fixed[0], $0, fixed[1]]) },
                                     backward: { splitChannels($0, sizes: [8, 24, 16])[1] }), 24),
            ("chunk", FunctionLayer({ splitChannels($0, sizes: [24, 24])[1] },
                                    backward: { concatenateChannels([Tensor(shape: $0.shape, layout: $0.layout), $0]) }), 48),
            ("shuffle", FunctionLayer({ shuffleChannels($0, groups: 2) }, backward: { shuffleChannels($0, groups: 24) }), 48),
        ]
        for (name, layer, c) in layers {
            for layout in LayerTestKit.layouts where c % layout.block == 0 {
                let x = randomTensor([2, c, 3, 3], seed: 6).toLayout(layout)
                let failures = GradientCheck(h: 1e-2, atol: 1e-3, rtol: 1e-3, probes: 40).check(layer, input: x)
                #expect(failures.isEmpty, "\(name) [\(layout)]: \(failures.prefix(3))")
            }
        }
    }

    /// Against PyTorch (channel.safetensors, scripts/make_golden.py `make_channel`), inputs in every layout.
    @Test(arguments: LayerTestKit.layouts)
    func matchPyTorch(_ layout: Layout) throws {
        let g = try Golden("channel")
        func close(_ a: Tensor, _ key: String) throws {
            expectClose(a, try g.tensor(key), atol: 0, rtol: 0, "\(key) [\(layout)]", hint: goldenMismatchHint)
        }
        func input(_ key: String) throws -> Tensor {
            let t = try g.tensor(key)
            return t.shape[1] % layout.block == 0 ? t.toLayout(layout) : t
        }
        let xs = try (0..<3).map { try input("cat.x\($0)") }
        try close(concatenateChannels(xs), "cat.y")
        for (i, dx) in splitChannels(try input("cat.dy"), sizes: xs.map { $0.shape[1] }).enumerated() { try close(dx, "cat.dx\(i)") }

        let halves = splitChannels(try input("chunk.x"), sizes: [24, 24])
        try close(halves[0], "chunk.y0")
        try close(halves[1], "chunk.y1")
        try close(concatenateChannels([try input("chunk.dy0"), try input("chunk.dy1")]), "chunk.dx")

        for (name, c, groups) in [("shuffle2", 48, 2), ("shuffle3", 24, 3)] {
            try close(shuffleChannels(try input("\(name).x"), groups: groups), "\(name).y")
            try close(shuffleChannels(try input("\(name).dy"), groups: c / groups), "\(name).dx")
        }
    }

    /// 3×3 stride-2 ceil-mode max pooling at SqueezeNet's sizes (109, 54, 27 from 224; 29, 14, 7 from 64)
    /// against PyTorch (pool_ceil.safetensors), plain and, where the channels allow, blocked.
    @Test(arguments: [109, 54, 27, 29, 14, 7])
    func maxPoolCeilModeMatchesPyTorch(_ size: Int) throws {
        let g = try Golden("pool_ceil")
        let c = "maxpool_ceil_\(size)"
        let channels = try g.tensor("\(c).x").shape[1]
        for layout in LayerTestKit.layouts where channels % layout.block == 0 {
            try checkLayer(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true), golden: g, case: c, layout: layout)
        }
        #expect(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true).outputLength(size) == (try g.tensor("\(c).y").shape[2]))
    }
}
