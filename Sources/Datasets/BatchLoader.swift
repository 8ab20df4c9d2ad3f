import Foundation
import Tensors

/// One mini-batch, ready for the engine.
public struct Batch: Sendable {
    /// [B, C, H, W] plain float32, transformed and normalised.
    public let images: Tensor
    /// [B], the class of each image.
    public let labels: [Int32]
    /// [B], each image's index in the loader's dataset.
    public let indices: [Int]
    public let epoch: Int
    /// Position of this batch in its epoch.
    public let index: Int

    public var count: Int { labels.count }
}

/// Turns a `Dataset` into deterministic mini-batches.
///
/// Order: with `shuffle`, epoch e visits the images in `shuffleRNG(epoch: e).permutation(count)`; without,
/// in file order. Batches are consecutive runs of `batchSize` in that order; the last one is partial when
/// `batchSize` does not divide the count (no drop_last, as the reference's DataLoader).
///
/// Randomness: every stream is derived from (seed, epoch[, batch]) alone:
///   epoch stream  E = RNG(seed: seed).derived(epoch)
///   shuffle       E.derived(0)
///   augmentation  E.derived(batch + 1), drawn image by image in batch order (`CropFlip.draw`; for
///                 `randomResizedCropFlip`, `RandomResizedCrop.box` then flip = uniform() < 0.5)
/// so a batch's content depends only on (seed, epoch, batch index): a prefetching loader, a synchronous one
/// and one that starts mid-epoch produce bit-identical batches.
///
/// Prefetch: `batches(epoch:)` builds the following batches on one background thread, keeping at most
/// `prefetchDepth` finished batches waiting, while the caller trains on the current one.
public final class BatchLoader: Sendable {
    public let dataset: Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let augmentation: Augmentation
    public let seed: UInt64
    public let prefetchDepth: Int
    /// [C, 256], `dataset.normalization.lookupTable()`.
    private let lut: [Float]

    /// Throws `.invalidSetting` for a batch size or prefetch depth below 1, or a negative padding.
    public init(dataset: Dataset, batchSize: Int, shuffle: Bool, augmentation: Augmentation, seed: UInt64,
                prefetchDepth: Int = 2) throws {
        guard batchSize >= 1 else { throw DatasetError.invalidSetting("batch size must be at least 1, got \(batchSize)") }
        guard prefetchDepth >= 1 else { throw DatasetError.invalidSetting("prefetch depth must be at least 1, got \(prefetchDepth)") }
        switch augmentation {
        case .none: break
        case .cropFlip(let p):
            if p < 0 { throw DatasetError.invalidSetting("crop padding must be at least 0, got \(p)") }
        case .randomResizedCropFlip(let s):
            if s < 1 { throw DatasetError.invalidSetting("image size must be at least 1, got \(s)") }
        case .resizeCenterCrop(let r, let s):
            if s < 1 || r < s { throw DatasetError.invalidSetting("centre crop \(s) of a \(r)×\(r) resize: need 1 ≤ crop ≤ resize") }
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.augmentation = augmentation
        self.seed = seed
        self.prefetchDepth = prefetchDepth
        self.lut = dataset.normalization.lookupTable()
    }

    /// A training loader with the reference's settings: shuffled, RandomCrop(padding 4) + flip.
    public static func training(_ dataset: Dataset, batchSize: Int, seed: UInt64) throws -> BatchLoader {
        try BatchLoader(dataset: dataset, batchSize: batchSize, shuffle: true, augmentation: .cifar, seed: seed)
    }

    /// An evaluation loader: file order, `transform` (deterministic; default normalisation only).
    public static func evaluation(_ dataset: Dataset, batchSize: Int, transform: Augmentation = .none) throws -> BatchLoader {
        try BatchLoader(dataset: dataset, batchSize: batchSize, shuffle: false, augmentation: transform, seed: 0)
    }

    /// The (H, W) of the batches' images.
    public var outputSize: (height: Int, width: Int) { augmentation.outputSize(height: dataset.height, width: dataset.width) }

    /// ⌈count / batchSize⌉.
    public var batchCount: Int { (dataset.count + batchSize - 1) / batchSize }

    private func epochRNG(_ epoch: Int) -> RNG { RNG(seed: seed).derived(UInt64(bitPattern: Int64(epoch))) }

    /// The stream that draws the crops and flips of batch `batch` of epoch `epoch`.
    public func augmentationRNG(epoch: Int, batch: Int) -> RNG { epochRNG(epoch).derived(UInt64(batch) &+ 1) }

    /// The order in which epoch `epoch` visits the dataset's images.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<dataset.count) }
        var rng = epochRNG(epoch).derived(0)
        return rng.permutation(dataset.count)
    }

    /// Builds batch `index` of epoch `epoch` synchronously; `order` is `order(epoch: epoch)`.
    public func batch(_ index: Int, epoch: Int, order: [Int]) -> Batch {
        precondition(order.count == dataset.count, "order has \(order.count) entries for \(dataset.count) images")
        precondition(index >= 0 && index < batchCount, "batch \(index) outside 0..<\(batchCount)")
        let lo = index * batchSize, hi = min(lo + batchSize, dataset.count)
        let indices = Array(order[lo..<hi])
        let C = dataset.channels, H = dataset.height, W = dataset.width, size = dataset.imageSize
        let (OH, OW) = outputSize
        let outSize = C * OH * OW
        let images = Tensor(shape: [indices.count, C, OH, OW], layout: .plain, zeroed: false)
        var rng = augmentationRNG(epoch: epoch, batch: index)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: H * OW)
        defer { scratch.deallocate() }
        dataset.images.withUnsafeBufferPointer { src in
            lut.withUnsafeBufferPointer { lut in images.withUnsafeMutablePointer { dst in
                for (k, i) in indices.enumerated() {
                    let x = src.baseAddress! + i * size, y = dst + k * outSize
                    switch augmentation {
                    case .none:
                        normalizeImage(y, x, lut.baseAddress!, C, H, W)
                    case .cropFlip(let p):
                        let r = CropFlip.draw(&rng, padding: p)
                        cropFlipNormalizeImage(y, x, lut.baseAddress!, C, H, W, p, r.top, r.left, r.flip)
                    case .randomResizedCropFlip(let s):
                        let box = RandomResizedCrop.box(height: H, width: W, draws: &rng)
                        let flip = rng.uniform() < 0.5
                        resizedCropNormalizeImage(y, x, lut.baseAddress!, C, H, W, box, s, s, 0, 0, s, s, flip, scratch)
                    case .resizeCenterCrop(let r, let s):
                        let offset = Int((Double(r - s) / 2).rounded(.toNearestOrEven))
                        resizedCropNormalizeImage(y, x, lut.baseAddress!, C, H, W, CropBox(top: 0, left: 0, height: H, width: W),
                                                  r, r, offset, offset, s, s, false, scratch)
                    }
                }
            } }
        }
        return Batch(images: images, labels: indices.map { dataset.labels[$0] }, indices: indices, epoch: epoch, index: index)
    }

    /// The batches of epoch `epoch` from batch `start` on (empty when `start >= batchCount`), built ahead
    /// on a background thread when `prefetch`, else on demand. Both give identical batches.
    public func batches(epoch: Int, startingAt start: Int = 0, prefetch: Bool = true) -> EpochBatches {
        EpochBatches(loader: self, epoch: epoch, start: max(0, start), prefetch: prefetch)
    }
}

/// The batches of one epoch, in order. With prefetch, a background thread fills a queue of at most
/// `prefetchDepth` batches; abandoning the iteration (dropping this object) stops that thread.
public final class EpochBatches: Sequence, IteratorProtocol {
    private let loader: BatchLoader
    private let epoch: Int
    private let order: [Int]
    private var nextIndex: Int
    private let queue: PrefetchQueue?

    init(loader: BatchLoader, epoch: Int, start: Int, prefetch: Bool) {
        self.loader = loader
        self.epoch = epoch
        self.order = loader.order(epoch: epoch)
        self.nextIndex = start
        if prefetch && start < loader.batchCount {
            let queue = PrefetchQueue(depth: loader.prefetchDepth)
            let order = self.order
            let thread = Thread {
                for b in start..<loader.batchCount {
                    guard queue.waitForRoom() else { break }
                    queue.put(loader.batch(b, epoch: epoch, order: order))
                }
                queue.finish()
            }
            thread.name = "BatchLoader.prefetch"
            thread.start()
            self.queue = queue
        } else {
            self.queue = nil
        }
    }

    deinit { queue?.cancel() }

    public func next() -> Batch? {
        if let queue { return queue.take() }
        guard nextIndex < loader.batchCount else { return nil }
        defer { nextIndex += 1 }
        return loader.batch(nextIndex, epoch: epoch, order: order)
    }
}

/// A bounded single-producer single-consumer queue guarded by one condition variable.
private final class PrefetchQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private let depth: Int
    private var items: [Batch] = []
    private var finished = false
    private var cancelled = false

    init(depth: Int) { self.depth = depth }

    /// Producer: blocks while the queue is full; false once the consumer has gone.
    func waitForRoom() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= depth && !cancelled { condition.wait() }
        return !cancelled
    }

    func put(_ batch: Batch) {
        condition.lock()
        items.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer: the next batch, waiting for it if needed; nil after the last one.
    func take() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty { return nil }
        let batch = items.removeFirst()
        condition.broadcast()
        return batch
    }

    func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}
