import Foundation
import Testing
import Tensors
import Kernels

/// Uniform random floats in [-1, 1).
private func randomArray(_ count: Int, seed: UInt64) -> [Float] {
    var rng = RNG(seed: seed)
    return (0..<count).map { _ in rng.uniform(-1, 1) }
}

/// Worst |a − b| / (1 + max|b|) over the arrays (a scale-aware error; float32 sums of a few thousand
/// terms land around 1e-6).
private func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let scale = 1 + (b.map { abs($0) }.max() ?? 0)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

struct ConvCase: CustomTestStringConvertible, Sendable {
    var geometry: ConvGeometry
    var bias: Bool
    var xBlock: Int
    /// Output block; nil = `convOutputBlock`.
    var yBlock: Int?
    var testDescription: String { "\(geometry) bias \(bias) x-block \(xBlock) y-block \(yBlock.map(String.init) ?? "auto")" }
}

private func g(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ k: Int, kernel: Int, stride: Int = 1, pad: Int = 0,
               groups: Int = 1) -> ConvGeometry {
    ConvGeometry(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k,
                 kernelSize: kernel, stride: stride, padding: pad, groups: groups)
}

private let cases: [ConvCase] = [
    // ResNet-style 3×3, blocked input.
    ConvCase(geometry: g(2, 16, 8, 8, 16, kernel: 3, pad: 1), bias: false, xBlock: 16),
    ConvCase(geometry: g(2, 16, 8, 8, 32, kernel: 3, stride: 2, pad: 1), bias: false, xBlock: 16),
    ConvCase(geometry: g(2, 16, 9, 7, 32, kernel: 3, stride: 2, pad: 0), bias: true, xBlock: 16),
    // Plain input (the stem on 3-channel images) and plain input with many channels.
    ConvCase(geometry: g(2, 3, 10, 10, 16, kernel: 3, pad: 1), bias: false, xBlock: 1),
    ConvCase(geometry: g(2, 3, 12, 12, 16, kernel: 7, stride: 2, pad: 3), bias: true, xBlock: 1),
    ConvCase(geometry: g(2, 16, 8, 8, 16, kernel: 3, pad: 1), bias: true, xBlock: 1),
    // 1×1, with and without stride; nChw8c input.
    ConvCase(geometry: g(2, 32, 6, 6, 64, kernel: 1), bias: true, xBlock: 8),
    ConvCase(geometry: g(2, 32, 8, 8, 16, kernel: 1, stride: 2), bias: false, xBlock: 16),
    // Output channels not divisible by 8: plain output (classifier-like).
    ConvCase(geometry: g(2, 16, 5, 5, 10, kernel: 3, pad: 1), bias: true, xBlock: 16),
    ConvCase(geometry: g(2, 8, 5, 5, 3, kernel: 1), bias: true, xBlock: 8),
    // Groups = 2 and depthwise (MobileNet-V2), stride 1 and 2.
    ConvCase(geometry: g(2, 32, 7, 7, 32, kernel: 3, pad: 1, groups: 2), bias: true, xBlock: 16),
    ConvCase(geometry: g(2, 32, 7, 7, 32, kernel: 3, pad: 1, groups: 32), bias: false, xBlock: 16),
    ConvCase(geometry: g(2, 32, 8, 8, 32, kernel: 3, stride: 2, pad: 1, groups: 32), bias: true, xBlock: 16),
    ConvCase(geometry: g(2, 24, 7, 7, 24, kernel: 3, pad: 1, groups: 24), bias: false, xBlock: 8),
    ConvCase(geometry: g(2, 16, 6, 6, 16, kernel: 3, pad: 1, groups: 16), bias: true, xBlock: 1),
    // Rectangular kernel with asymmetric stride/padding.
    ConvCase(geometry: ConvGeometry(batch: 2, inputChannels: 16, inputHeight: 9, inputWidth: 8, outputChannels: 16,
                                    kernelHeight: 3, kernelWidth: 1, strideHeight: 2, strideWidth: 1,
                                    paddingHeight: 1, paddingWidth: 0),
             bias: true, xBlock: 16),
    // Forced output layouts other than the preferred one (exercise the reorder paths).
    ConvCase(geometry: g(2, 16, 8, 8, 16, kernel: 3, pad: 1), bias: true, xBlock: 16, yBlock: 1),
    ConvCase(geometry: g(2, 16, 8, 8, 16, kernel: 3, pad: 1), bias: true, xBlock: 8, yBlock: 8),
]

@Suite("Convolution (oneDNN vs naive)", .serialized)
struct ConvolutionTests {
    @Test("forward, backward-data, backward-weights match the naive twin", arguments: cases)
    func matchesReference(_ c: ConvCase) {
        Threads.set(2)
        let geo = c.geometry
        let yBlock = c.yBlock ?? convOutputBlock(geo, bias: c.bias)
        let x = randomArray(geo.inputShape.reduce(1, *), seed: 1)
        let w = randomArray(geo.weightCount, seed: 2)
        let b = randomArray(geo.outputChannels, seed: 3)
        let dy = randomArray(geo.outputShape.reduce(1, *), seed: 4)
        let dw0 = randomArray(geo.weightCount, seed: 5)
        let db0 = randomArray(geo.outputChannels, seed: 6)

        var y = [Float](repeating: .nan, count: dy.count), yRef = y
        convForward(&y, yBlock: yBlock, x, xBlock: c.xBlock, w, c.bias ? b : nil, geo)
        convForwardReference(&yRef, yBlock: yBlock, x, xBlock: c.xBlock, w, c.bias ? b : nil, geo)
        #expect(relativeError(y, yRef) < 1e-5, "forward")

        var dx = [Float](repeating: .nan, count: x.count), dxRef = dx
        convBackwardData(&dx, dxBlock: c.xBlock, dy, dyBlock: yBlock, w, geo)
        convBackwardDataReference(&dxRef, dxBlock: c.xBlock, dy, dyBlock: yBlock, w, geo)
        #expect(relativeError(dx, dxRef) < 1e-5, "backward data")

        var dw = dw0, dwRef = dw0, db = db0, dbRef = db0
        if c.bias {
            convBackwardWeights(&dw, &db, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo)
            convBackwardWeightsReference(&dwRef, &dbRef, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo)
        } else {
            convBackwardWeights(&dw, nil, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo)
            convBackwardWeightsReference(&dwRef, nil, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo)
        }
        #expect(relativeError(dw, dwRef) < 1e-5, "backward weights (accumulated)")
        #expect(relativeError(db, dbRef) < 1e-5, "bias gradient (accumulated)")
    }

    @Test("naive twin agrees with itself across layouts")
    func referenceLayouts() {
        let geo = g(2, 16, 5, 5, 16, kernel: 3, pad: 1)
        let x = randomArray(geo.inputShape.reduce(1, *), seed: 1)
        let w = randomArray(geo.weightCount, seed: 2)
        var y1 = [Float](repeating: 0, count: geo.outputShape.reduce(1, *)), y16 = y1
        convForwardReference(&y1, yBlock: 1, x, xBlock: 1, w, nil, geo)
        let x16 = Tensor(shape: geo.inputShape, values: x).toLayout(.blocked(16)).array
        convForwardReference(&y16, yBlock: 16, x16, xBlock: 16, w, nil, geo)
        let t = Tensor(shape: geo.outputShape, layout: .blocked(16), zeroed: false)
        t.withUnsafeMutableBufferPointer { _ = $0.update(from: y16) }
        #expect(t.plainArray == y1)
    }

    @Test("repeated calls are bit-identical")
    func determinism() {
        Threads.set(2)
        let geo = g(8, 32, 16, 16, 32, kernel: 3, pad: 1)
        let yBlock = convOutputBlock(geo, bias: true)
        let x = randomArray(geo.inputShape.reduce(1, *), seed: 11)
        let w = randomArray(geo.weightCount, seed: 12)
        let b = randomArray(geo.outputChannels, seed: 13)
        let dy = randomArray(geo.outputShape.reduce(1, *), seed: 14)
        func once() -> [[Float]] {
            var y = [Float](repeating: 0, count: dy.count)
            var dx = [Float](repeating: 0, count: x.count)
            var dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: b.count)
            convForward(&y, yBlock: yBlock, x, xBlock: 16, w, b, geo)
            convBackwardData(&dx, dxBlock: 16, dy, dyBlock: yBlock, w, geo)
            convBackwardWeights(&dw, &db, x, xBlock: 16, dy, dyBlock: yBlock, geo)
            return [y, dx, dw, db]
        }
        let first = once(), second = once()
        for (a, b) in zip(first, second) {
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        }
    }

    @Test("ResNet-20 convolutions run on JIT implementations without activation reorders")
    func resnetPlans() {
        let geometries = [
            g(128, 16, 32, 32, 16, kernel: 3, pad: 1),
            g(128, 16, 32, 32, 32, kernel: 3, stride: 2, pad: 1),
            g(128, 32, 16, 16, 32, kernel: 3, pad: 1),
            g(128, 32, 16, 16, 64, kernel: 3, stride: 2, pad: 1),
            g(128, 64, 8, 8, 64, kernel: 3, pad: 1),
        ]
        // The channel block oneDNN prefers on this CPU: 16 with AVX-512, 8 with AVX2. Every layer uses the same one,
        // so activations flow from conv to conv without a reorder.
        let block = convOutputBlock(geometries[0], bias: false)
        #expect(block == 8 || block == 16)
        for geo in geometries {
            #expect(convOutputBlock(geo, bias: false) == block, "\(geo)")
            for info in convPlanInfo(geo, bias: false, xBlock: block) {
                #expect(info.isJIT, "\(geo): \(info)")
                #expect(!info.reorders.contains { $0.contains("nChw") || $0.contains("nchw") }, "\(geo): \(info)")
            }
        }
        // The stem reads the plain image batch directly (its backward-data is never needed).
        let stem = g(128, 3, 32, 32, 16, kernel: 3, pad: 1)
        #expect(convOutputBlock(stem, bias: false) == block)
        let stemPlans = convPlanInfo(stem, bias: false, xBlock: 1)
        for info in [stemPlans[0], stemPlans[2]] {
            #expect(info.isJIT, "\(info)")
            #expect(!info.reorders.contains { $0.contains("nChw") || $0.contains("nchw") }, "\(info)")
        }
    }

    /// The path `convBackwardWeights` takes where oneDNN has only `ref:any` (3×3 on 1×1 / 2×2 maps: ResNet-18
    /// layer4 and MobileNet-V2's last depthwise convs at 32–64 px) against the naive twin, on every layout,
    /// grouping, stride and padding of the case list plus those shapes; and through `convBackwardWeights`.
    @Test("backward weights without oneDNN (im2col + sgemm, direct grouped sums) match the naive twin",
          arguments: cases + [ConvCase(geometry: g(3, 32, 2, 2, 32, kernel: 3, pad: 1), bias: false, xBlock: 8),
                              ConvCase(geometry: g(3, 32, 2, 2, 48, kernel: 3, stride: 2, pad: 1), bias: true, xBlock: 16),
                              ConvCase(geometry: g(3, 48, 1, 1, 48, kernel: 3, pad: 1, groups: 48), bias: false, xBlock: 8),
                              ConvCase(geometry: g(3, 40, 2, 2, 40, kernel: 3, stride: 2, pad: 1, groups: 40), bias: true, xBlock: 8)])
    func directBackwardWeights(_ c: ConvCase) {
        Threads.set(2)
        let geo = c.geometry
        let yBlock = c.yBlock ?? convOutputBlock(geo, bias: c.bias)
        let x = randomArray(geo.inputShape.reduce(1, *), seed: 11)
        let dy = randomArray(geo.outputShape.reduce(1, *), seed: 12)
        let dw0 = randomArray(geo.weightCount, seed: 13), db0 = randomArray(geo.outputChannels, seed: 14)
        /// Runs `f` on copies of dw0 / db0 (db nil without a bias); returns both.
        func run(_ f: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void) -> ([Float], [Float]) {
            var w = dw0, b = db0
            w.withUnsafeMutableBufferPointer { wp in b.withUnsafeMutableBufferPointer { bp in f(wp.baseAddress!, c.bias ? bp.baseAddress! : nil) } }
            return (w, b)
        }
        let direct = run { convBackwardWeightsDirect($0, $1, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo) }
        let ref = run { convBackwardWeightsReference($0, $1, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo) }
        let routed = run { convBackwardWeights($0, $1, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo) }
        #expect(relativeError(direct.0, ref.0) < 1e-5 && relativeError(direct.1, ref.1) < 1e-5, "direct")
        #expect(relativeError(routed.0, ref.0) < 1e-5 && relativeError(routed.1, ref.1) < 1e-5, "routed")
        // Bit-identical on a second call at the same thread count.
        let again = run { convBackwardWeightsDirect($0, $1, x, xBlock: c.xBlock, dy, dyBlock: yBlock, geo) }
        #expect(again.0 == direct.0 && again.1 == direct.1)
    }

    @Test("MobileNet-V2 depthwise and 1x1 convolutions run on JIT implementations")
    func mobileNetPlans() {
        let geometries = [
            g(64, 96, 16, 16, 96, kernel: 3, stride: 2, pad: 1, groups: 96),
            g(64, 144, 8, 8, 144, kernel: 3, pad: 1, groups: 144),
            g(64, 32, 8, 8, 192, kernel: 1),
            g(64, 96, 8, 8, 24, kernel: 1),
        ]
        for geo in geometries {
            for info in convPlanInfo(geo, bias: false, xBlock: geo.inputChannels % 16 == 0 ? 16 : 8) {
                #expect(info.isJIT, "\(geo): \(info)")
            }
        }
    }
}
