import Foundation
import Tensors
import Testing
@testable import Datasets

@Suite struct AugmentationTests {
    @Test func normalisationMatchesTorchFormula() throws {
        let data = syntheticDataset(3)
        let loader = try BatchLoader.evaluation(data, batchSize: 3)
        let batch = loader.batch(0, epoch: 0, order: loader.order(epoch: 0))
        #expect(batch.images.shape == [3, 3, 32, 32])
        let y = batch.images.array
        let m = Normalization.cifar10
        for i in 0..<3 {
            for k in 0..<3072 {
                let c = k / 1024
                let expected = (Float(pixel(i, k)) / 255 - m.mean[c]) / m.std[c]
                if y[i * 3072 + k] != expected {
                    Issue.record("image \(i) element \(k): \(y[i * 3072 + k]) != \(expected)")
                    return
                }
            }
        }
    }

    /// A 2×4×4 image whose bytes are 10·c + 4·h + w + 1 (never 0), cropped with padding 2.
    static func smallImage() -> [UInt8] {
        (0..<32).map { (k: Int) -> UInt8 in
            let channel: Int = k / 16
            return UInt8(10 * channel + k % 16 + 1)
        }
    }
    static let norm = Normalization(mean: [0.5, 0.25], std: [0.5, 0.125])

    /// The expected value at (c, h, w) for crop (top, left) of the padded image, mirrored when `flip`.
    static func expected(_ x: [UInt8], c: Int, h: Int, w: Int, top: Int, left: Int, flip: Bool) -> Float {
        let sw = (flip ? 3 - w : w) + left - 2, sh = h + top - 2
        let v: UInt8 = (0..<4).contains(sh) && (0..<4).contains(sw) ? x[c * 16 + sh * 4 + sw] : 0
        return (Float(v) / 255 - norm.mean[c]) / norm.std[c]
    }

    @Test func cropOffsetsFlipsAndZeroPaddingAreVisible() {
        let x = Self.smallImage()
        let lut = Self.norm.lookupTable()
        var y = [Float](repeating: .nan, count: 32)
        // top = 0, left = 4: the crop's top two rows and right two columns are padding.
        x.withUnsafeBufferPointer { xp in
            cropFlipNormalizeImage(&y, xp.baseAddress!, lut, 2, 4, 4, 2, 0, 4, false)
        }
        let pad0 = -Self.norm.mean[0] / Self.norm.std[0], pad1 = -Self.norm.mean[1] / Self.norm.std[1]
        #expect(y[0] == pad0 && y[16] == pad1)  // padded pixels are −mean/std
        #expect(y[2 * 4 + 0] == (Float(x[0 * 4 + 2]) / 255 - 0.5) / 0.5)  // (h 2, w 0) shows source (0, 2)
        #expect(y[2 * 4 + 2] == pad0)
        // Same crop mirrored: (h 2, w 3) shows source (0, 2); (h 2, w 0) is padding.
        x.withUnsafeBufferPointer { xp in
            cropFlipNormalizeImage(&y, xp.baseAddress!, lut, 2, 4, 4, 2, 0, 4, true)
        }
        #expect(y[2 * 4 + 3] == (Float(x[0 * 4 + 2]) / 255 - 0.5) / 0.5)
        #expect(y[2 * 4 + 0] == pad0)
        // Every offset and flip against the hand formula and the naive twin.
        var naive = [Float](repeating: 0, count: 32)
        for top in 0...4 {
            for left in 0...4 {
                for flip in [false, true] {
                    x.withUnsafeBufferPointer { xp in
                        cropFlipNormalizeImage(&y, xp.baseAddress!, lut, 2, 4, 4, 2, top, left, flip)
                        cropFlipNormalizeImageNaive(&naive, xp.baseAddress!, Self.norm, 2, 4, 4, 2, top, left, flip)
                    }
                    #expect(y == naive, "top \(top) left \(left) flip \(flip)")
                    for c in 0..<2 { for h in 0..<4 { for w in 0..<4 {
                        let e = Self.expected(x, c: c, h: h, w: w, top: top, left: left, flip: flip)
                        if y[c * 16 + h * 4 + w] != e { Issue.record("top \(top) left \(left) flip \(flip) (\(c),\(h),\(w))") }
                    } } }
                }
            }
        }
    }

    @Test func paddingLargerThanImageGivesAllBorder() {
        let x = Self.smallImage()
        let lut = Self.norm.lookupTable()
        var y = [Float](repeating: .nan, count: 32), naive = y
        x.withUnsafeBufferPointer { xp in
            cropFlipNormalizeImage(&y, xp.baseAddress!, lut, 2, 4, 4, 5, 0, 0, true)
            cropFlipNormalizeImageNaive(&naive, xp.baseAddress!, Self.norm, 2, 4, 4, 5, 0, 0, true)
        }
        #expect(y == naive)
        #expect(y.allSatisfy { $0 == -1 || $0 == -2 })
    }

    /// The loader draws (top, left, flip) per image from `augmentationRNG(epoch:batch:)` in batch order.
    @Test func loaderUsesTheDocumentedRandomStream() throws {
        let data = syntheticDataset(10)
        let loader = try BatchLoader.training(data, batchSize: 4, seed: 42)
        let order = loader.order(epoch: 3)
        let batch = loader.batch(1, epoch: 3, order: order)
        #expect(batch.indices == Array(order[4..<8]))
        #expect(batch.labels == batch.indices.map { Int32($0 % 10) })
        var rng = loader.augmentationRNG(epoch: 3, batch: 1)
        var expected = [Float](repeating: 0, count: 4 * 3072)
        var flips = 0
        for (k, i) in batch.indices.enumerated() {
            let r = CropFlip.draw(&rng, padding: 4)
            flips += r.flip ? 1 : 0
            data.images.withUnsafeBufferPointer { src in
                expected.withUnsafeMutableBufferPointer { dst in
                    cropFlipNormalizeImageNaive(dst.baseAddress! + k * 3072, src.baseAddress! + i * 3072, data.normalization,
                                                3, 32, 32, 4, r.top, r.left, r.flip)
                }
            }
        }
        #expect(batch.images.array == expected)
    }

    @Test func cropDrawsCoverTheRange() {
        var rng = RNG(seed: 7)
        var tops = Set<Int>(), lefts = Set<Int>(), flips = 0
        for _ in 0..<2000 {
            let r = CropFlip.draw(&rng, padding: 4)
            tops.insert(r.top)
            lefts.insert(r.left)
            flips += r.flip ? 1 : 0
        }
        #expect(tops == Set(0...8) && lefts == Set(0...8))
        #expect((900...1100).contains(flips))
    }
}

@Suite struct BatchLoaderTests {
    @Test func shuffleIsDeterministicPerSeedAndEpoch() throws {
        let data = syntheticDataset(50)
        let a = try BatchLoader.training(data, batchSize: 8, seed: 1)
        let b = try BatchLoader.training(data, batchSize: 8, seed: 1)
        let c = try BatchLoader.training(data, batchSize: 8, seed: 2)
        #expect(a.order(epoch: 0) == b.order(epoch: 0))
        #expect(a.order(epoch: 0).sorted() == Array(0..<50))
        #expect(a.order(epoch: 0) != a.order(epoch: 1))
        #expect(a.order(epoch: 0) != c.order(epoch: 0))
        #expect(a.order(epoch: 0) != Array(0..<50))
        let eval = try BatchLoader.evaluation(data, batchSize: 8)
        #expect(eval.order(epoch: 5) == Array(0..<50))
        let first = Array(a.batches(epoch: 4, prefetch: false))
        let again = Array(b.batches(epoch: 4, prefetch: false))
        #expect(zip(first, again).allSatisfy { $0.images.array == $1.images.array && $0.indices == $1.indices })
    }

    @Test func lastBatchIsPartialAndEveryImageAppearsOnce() throws {
        let data = syntheticDataset(23)
        let loader = try BatchLoader.training(data, batchSize: 5, seed: 9)
        #expect(loader.batchCount == 5)
        let batches = Array(loader.batches(epoch: 0))
        #expect(batches.map(\.count) == [5, 5, 5, 5, 3])
        #expect(batches.last!.images.shape == [3, 3, 32, 32])
        #expect(batches.map(\.index) == [0, 1, 2, 3, 4])
        #expect(batches.flatMap(\.indices).sorted() == Array(0..<23))
        #expect(batches.flatMap(\.labels) == batches.flatMap(\.indices).map { Int32($0 % 10) })
        let eval = try BatchLoader.evaluation(data, batchSize: 10)
        #expect(Array(eval.batches(epoch: 0)).map(\.indices) == [Array(0..<10), Array(10..<20), Array(20..<23)])
    }

    @Test(arguments: [1, 2, 3])
    func prefetchIsBitIdenticalToSynchronous(depth: Int) throws {
        let data = syntheticDataset(37)
        let loader = try BatchLoader(dataset: data, batchSize: 4, shuffle: true, augmentation: .cifar, seed: 123,
                                     prefetchDepth: depth)
        for epoch in 0..<3 {
            let sync = Array(loader.batches(epoch: epoch, prefetch: false))
            let pre = Array(loader.batches(epoch: epoch, prefetch: true))
            #expect(sync.count == 10 && pre.count == 10)
            for (s, p) in zip(sync, pre) {
                #expect(s.indices == p.indices && s.labels == p.labels && s.index == p.index && s.epoch == epoch)
                #expect(s.images.array.map(\.bitPattern) == p.images.array.map(\.bitPattern))
            }
            // Starting mid-epoch gives the same tail.
            let tail = Array(loader.batches(epoch: epoch, startingAt: 6))
            #expect(tail.map(\.index) == [6, 7, 8, 9])
            #expect(zip(tail, sync[6...]).allSatisfy { $0.images.array == $1.images.array && $0.indices == $1.indices })
        }
        #expect(Array(loader.batches(epoch: 0, startingAt: 10)).isEmpty)
        #expect(Array(loader.batches(epoch: 0, startingAt: 99, prefetch: false)).isEmpty)
    }

    @Test func abandoningAnEpochStopsThePrefetchThread() throws {
        let data = syntheticDataset(64)
        let loader = try BatchLoader.training(data, batchSize: 2, seed: 5)
        for epoch in 0..<20 {
            for batch in loader.batches(epoch: epoch) where batch.index == 1 { break }
        }
        // A later full epoch still works.
        #expect(Array(loader.batches(epoch: 0)).count == 32)
    }

    @Test func invalidSettingsThrow() {
        let data = syntheticDataset(4)
        #expect(throws: DatasetError.self) { try BatchLoader.training(data, batchSize: 0, seed: 0) }
        #expect(throws: DatasetError.self) {
            try BatchLoader(dataset: data, batchSize: 2, shuffle: true, augmentation: .none, seed: 0, prefetchDepth: 0)
        }
        #expect(throws: DatasetError.self) {
            try BatchLoader(dataset: data, batchSize: 2, shuffle: true, augmentation: .cropFlip(padding: -1), seed: 0)
        }
    }

    @Test func emptyDatasetHasNoBatches() throws {
        let loader = try BatchLoader.training(syntheticDataset(0), batchSize: 4, seed: 0)
        #expect(loader.batchCount == 0)
        #expect(Array(loader.batches(epoch: 0)).isEmpty)
    }

    @Test func subsets() {
        let data = syntheticDataset(30)
        let first = data.limited(.first(7))
        #expect(first.count == 7 && first.labels == data.labels.prefix(7).map { $0 })
        #expect(first.images == Array(data.images.prefix(7 * 3072)))
        let r1 = data.limited(.random(5, seed: 3)), r2 = data.limited(.random(5, seed: 3))
        #expect(r1.count == 5 && r1.images == r2.images && r1.labels == r2.labels)
        #expect(data.limited(.random(5, seed: 4)).images != r1.images)
        #expect(data.limited(.first(100)).count == 30)
        #expect(data.limited(.all).count == 30)
        let picked = data.subset([4, 2])
        #expect(Array(picked.image(0)) == Array(data.image(4)) && picked.labels == [4, 2])
    }

    @Test func oneChannelImagesWithCrop() throws {
        let data = syntheticDataset(6, channels: 1, size: 28)
        let loader = try BatchLoader.training(data, batchSize: 6, seed: 11)
        let batch = Array(loader.batches(epoch: 2))[0]
        #expect(batch.images.shape == [6, 1, 28, 28])
        var rng = loader.augmentationRNG(epoch: 2, batch: 0)
        var expected = [Float](repeating: 0, count: 6 * 784)
        for (k, i) in batch.indices.enumerated() {
            let r = CropFlip.draw(&rng, padding: 4)
            data.images.withUnsafeBufferPointer { src in
                expected.withUnsafeMutableBufferPointer { dst in
                    cropFlipNormalizeImageNaive(dst.baseAddress! + k * 784, src.baseAddress! + i * 784, data.normalization,
                                                1, 28, 28, 4, r.top, r.left, r.flip)
                }
            }
        }
        #expect(batch.images.array == expected)
    }
}
