import Foundation
import Tensors
import Testing
@testable import Datasets

/// Tests/DatasetsTests/Golden/tiny_imagenet_pipeline.json, written by scripts/make_tiny_imagenet_golden.py.
struct PipelineGolden: Decodable {
    struct Resize: Decodable {
        struct Case: Decodable { var size: [Int]; var output: [Float] }
        var input: [Float]
        var shape: [Int]
        var cases: [Case]
    }
    struct Crop: Decodable {
        var height: Int
        var width: Int
        var attempts: Int
        var draws: [Draw]
        var box: [Int]
    }
    /// ["scale", s] / ["ratio", r] / ["below", n].
    struct Draw: Decodable {
        var kind: String
        var value: Double
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            kind = try c.decode(String.self)
            value = try c.decode(Double.self)
        }
    }
    var resize: Resize
    var resizeUint8: Resize
    var crops: [Crop]

    enum CodingKeys: String, CodingKey {
        case resize, crops
        case resizeUint8 = "resize_uint8"
    }

    static let regenerate = "regenerate with `/usr/bin/python3 scripts/make_tiny_imagenet_golden.py` (repository root)"

    static func load() throws -> PipelineGolden {
        let url = try #require(Bundle.module.url(forResource: "Golden/tiny_imagenet_pipeline", withExtension: "json"), "\(regenerate)")
        return try JSONDecoder().decode(PipelineGolden.self, from: Data(contentsOf: url))
    }
}

/// Recorded draws, replayed in order; a draw of the wrong kind or out of range is a test failure.
struct FixedDraws: CropDraws {
    var draws: [PipelineGolden.Draw]
    var next = 0

    mutating func take(_ kind: String) -> Double {
        guard next < draws.count, draws[next].kind == kind else {
            Issue.record("draw \(next): expected \(kind), recorded \(next < draws.count ? draws[next].kind : "nothing")")
            return 0
        }
        defer { next += 1 }
        return draws[next].value
    }

    mutating func scale(in range: ClosedRange<Double>) -> Double { take("scale") }
    mutating func aspectRatio(in range: ClosedRange<Double>) -> Double { take("ratio") }
    mutating func below(_ n: Int) -> Int {
        let v = Int(take("below"))
        if !(0..<n).contains(v) { Issue.record("below(\(n)) recorded \(v)") }
        return v
    }
}

@Suite struct TinyImageNetPipelineTests {
    @Test func cropBoxesReplayTorchvisionGetParams() throws {
        let g = try PipelineGolden.load()
        #expect(g.crops.count == 203)
        var attemptsUsed = Set<Int>()
        for (k, c) in g.crops.enumerated() {
            var draws = FixedDraws(draws: c.draws)
            let box = RandomResizedCrop.box(height: c.height, width: c.width, attempts: c.attempts, draws: &draws)
            #expect([box.top, box.left, box.height, box.width] == c.box, "case \(k): \(box) vs \(c.box); \(PipelineGolden.regenerate)")
            #expect(draws.next == c.draws.count, "case \(k) used \(draws.next) of \(c.draws.count) draws")
            attemptsUsed.insert(c.draws.filter { $0.kind == "scale" }.count)
        }
        // The seeds include rejected attempts, and the fallbacks (centre crops) are covered.
        #expect(attemptsUsed.contains(1) && attemptsUsed.contains { $0 > 1 && $0 < 10 } && attemptsUsed.contains(10))
        #expect(g.crops.suffix(3).map(\.box) == [[0, 0, 64, 64], [0, 18, 20, 27], [18, 0, 27, 20]])
    }

    @Test func rngBoxesStayInsideTheImageAndTheRanges() {
        var rng = RNG(seed: 11)
        var areas = [Double]()
        for _ in 0..<2000 {
            let b = RandomResizedCrop.box(height: 64, width: 64, draws: &rng)
            #expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= 64 && b.left + b.width <= 64)
            let area = Double(b.height * b.width) / 4096
            areas.append(area)
            // Rounding w and h to integers moves area and ratio by at most a pixel's worth.
            #expect(area >= 0.07 && Double(b.width) / Double(b.height) <= 4.0 / 3.0 * 1.1 && Double(b.width) / Double(b.height) >= 0.75 / 1.1)
        }
        let mean = areas.reduce(0, +) / Double(areas.count)
        // E[s] over U[0.08, 1] is 0.54, less the rejected large draws.
        #expect(mean > 0.4 && mean < 0.56, "mean crop area \(mean)")
    }

    @Test func bilinearResizeMatchesPyTorchInterpolate() throws {
        let g = try PipelineGolden.load()
        let (C, H, W) = (g.resize.shape[0], g.resize.shape[1], g.resize.shape[2])
        for c in g.resize.cases {
            let y = resizeBilinearNaive(g.resize.input, C, H, W, c.size[0], c.size[1])
            let worst = zip(y, c.output).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 2e-4, "size \(c.size): max |Δ| \(worst) (values 0…255); \(PipelineGolden.regenerate)")
        }
    }

    @Test func uint8PipelineMatchesTorchvisionResize() throws {
        let g = try PipelineGolden.load()
        let (C, H, W) = (g.resizeUint8.shape[0], g.resizeUint8.shape[1], g.resizeUint8.shape[2])
        let x = g.resizeUint8.input.map { UInt8($0) }
        let norm = TinyImageNet.normalization
        let lut = norm.lookupTable()
        for c in g.resizeUint8.cases {
            let (OH, OW) = (c.size[0], c.size[1])
            var y = [Float](repeating: 0, count: C * OH * OW)
            var scratch = [Float](repeating: 0, count: H * OW)
            x.withUnsafeBufferPointer { xp in lut.withUnsafeBufferPointer { l in
                resizedCropNormalizeImage(&y, xp.baseAddress!, l.baseAddress!, C, H, W, CropBox(top: 0, left: 0, height: H, width: W),
                                          OH, OW, 0, 0, OH, OW, false, &scratch)
            } }
            let expected = c.output.enumerated().map { k, v in lut[(k / (OH * OW)) * 256 + Int(v)] }
            #expect(y == expected, "size \(c.size); \(PipelineGolden.regenerate)")
        }
    }

    /// The fused kernel equals its naive twin bit for bit: random crops, windows and flips.
    @Test func fusedKernelEqualsNaiveTwin() {
        var rng = RNG(seed: 5)
        let (C, H, W) = (3, 12, 10)
        let x = (0..<(C * H * W)).map { _ in UInt8(rng.below(256)) }
        let norm = TinyImageNet.normalization
        let lut = norm.lookupTable()
        for trial in 0..<60 {
            let h = 1 + rng.below(H), w = 1 + rng.below(W)
            let box = CropBox(top: rng.below(H - h + 1), left: rng.below(W - w + 1), height: h, width: w)
            let RH = 1 + rng.below(20), RW = 1 + rng.below(20)
            let OH = 1 + rng.below(RH), OW = 1 + rng.below(RW)
            let oy = rng.below(RH - OH + 1), ox = rng.below(RW - OW + 1)
            let flip = trial % 2 == 1
            var y = [Float](repeating: .nan, count: C * OH * OW)
            var scratch = [Float](repeating: 0, count: H * OW)
            x.withUnsafeBufferPointer { xp in lut.withUnsafeBufferPointer { l in
                resizedCropNormalizeImage(&y, xp.baseAddress!, l.baseAddress!, C, H, W, box, RH, RW, oy, ox, OH, OW, flip, &scratch)
            } }
            let naive = resizedCropNormalizeImageNaive(x, norm, C, H, W, box, RH, RW, oy, ox, OH, OW, flip)
            #expect(y == naive, "trial \(trial): \(box) → \(RH)×\(RW), window \(OH)×\(OW) at (\(oy), \(ox)), flip \(flip)")
        }
    }

    @Test func roundedByteIsRoundHalfToEven() {
        var rng = RNG(seed: 3)
        let values = stride(from: Float(0), through: 255, by: 0.25).map { $0 } + (0..<10_000).map { _ in rng.uniform() * 255 }
            + [0.49999997, 0.50000006, 254.5, 255.00002, 2.5, 3.5]
        for v in values { #expect(roundedByte(v) == Int(v.rounded(.toNearestOrEven)), "\(v)") }
    }

    @Test func flipMirrorsAndCentreCropIsTheMiddle() {
        let (C, H, W) = (3, 8, 8)
        let x = (0..<(C * H * W)).map { UInt8(($0 * 29) % 256) }
        let lut = TinyImageNet.normalization.lookupTable()
        func run(_ box: CropBox, _ R: Int, _ o: Int, _ S: Int, _ flip: Bool) -> [Float] {
            var y = [Float](repeating: 0, count: C * S * S)
            var scratch = [Float](repeating: 0, count: H * S)
            x.withUnsafeBufferPointer { xp in lut.withUnsafeBufferPointer { l in
                resizedCropNormalizeImage(&y, xp.baseAddress!, l.baseAddress!, C, H, W, box, R, R, o, o, S, S, flip, &scratch)
            } }
            return y
        }
        let full = CropBox(top: 0, left: 0, height: 8, width: 8)
        let plain = run(full, 13, 0, 13, false), mirrored = run(full, 13, 0, 13, true)
        for c in 0..<C { for i in 0..<13 { for j in 0..<13 {
            #expect(mirrored[(c * 13 + i) * 13 + j] == plain[(c * 13 + i) * 13 + 12 - j])
        } } }
        // Same-size "resize" is the identity: the centre crop of an unresized image is its middle pixels.
        let centre = run(full, 8, 2, 4, false)
        for c in 0..<C { for i in 0..<4 { for j in 0..<4 {
            #expect(centre[(c * 4 + i) * 4 + j] == lut[c * 256 + Int(x[(c * 8 + i + 2) * 8 + j + 2])])
        } } }
        #expect(centerCropGeometry(imageSize: 224) == (256, 16))
        #expect(centerCropGeometry(imageSize: 64) == (73, 4))
        #expect(centerCropGeometry(imageSize: 32) == (36, 2))
    }

    @Test func loaderBatchesAreDeterministicAndSized() throws {
        let n = 20
        var rng = RNG(seed: 2)
        let pixels = (0..<(n * 3 * 64 * 64)).map { _ in UInt8(rng.below(256)) }
        let data = Dataset(name: "t", channels: 3, height: 64, width: 64, images: pixels, labels: (0..<n).map { Int32($0 % 4) },
                           classCount: 4, normalization: TinyImageNet.normalization)
        let a = try BatchLoader(dataset: data, batchSize: 8, shuffle: true, augmentation: .randomResizedCropFlip(size: 40), seed: 9)
        let b = try BatchLoader(dataset: data, batchSize: 8, shuffle: true, augmentation: .randomResizedCropFlip(size: 40), seed: 9)
        #expect(a.outputSize == (40, 40))
        let prefetched = Array(a.batches(epoch: 1)), direct = Array(b.batches(epoch: 1, prefetch: false))
        #expect(prefetched.count == 3 && prefetched.last?.count == 4)
        #expect(prefetched[0].images.shape == [8, 3, 40, 40])
        for (p, d) in zip(prefetched, direct) { #expect(p.images.array == d.images.array && p.labels == d.labels) }
        let other = try BatchLoader(dataset: data, batchSize: 8, shuffle: true, augmentation: .randomResizedCropFlip(size: 40), seed: 10)
        #expect(other.batch(0, epoch: 1, order: a.order(epoch: 1)).images.array != prefetched[0].images.array)
        let eval = try BatchLoader.evaluation(data, batchSize: 8, transform: .tinyImageNetEvaluation(imageSize: 64))
        #expect(eval.batch(0, epoch: 0, order: eval.order(epoch: 0)).images.shape == [8, 3, 64, 64])
        #expect(DatasetKind.tinyImageNet.trainTransform(imageSize: nil, augment: true) == .randomResizedCropFlip(size: 224))
        #expect(DatasetKind.tinyImageNet.evaluationTransform(imageSize: nil) == .resizeCenterCrop(resize: 256, crop: 224))
        #expect(DatasetKind.tinyImageNet.trainTransform(imageSize: 64, augment: false) == .resizeCenterCrop(resize: 73, crop: 64))
        #expect(DatasetKind.cifar10.trainTransform(imageSize: nil, augment: true) == .cifar)
        #expect(DatasetKind.cifar10.evaluationTransform(imageSize: nil) == Augmentation.none)
    }
}
