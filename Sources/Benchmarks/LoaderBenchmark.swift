import Datasets
import Foundation

/// Throughput of one thread building training batches of `batchSize` from a synthetic in-memory dataset of
/// `images` images, over `epochs` epochs. Returns images per second and the number of images built.
/// - `imageSize` nil: augmented (crop + flip) 3×32×32 CIFAR batches; the target on the reference machine is
///   > 5,000 images/s.
/// - `imageSize` S: the Tiny-ImageNet pipelines on 3×64×64 images, the train one (random-resized crop,
///   bilinear resize to S×S, flip) or, with `evaluation`, the val one (resize to ⌊S·256/224⌋, centre crop S).
public func loaderBenchmark(images: Int = 2048, batchSize: Int = 128, epochs: Int = 4, imageSize: Int? = nil,
                            evaluation: Bool = false) throws -> (imagesPerSecond: Double, images: Int) {
    let side = imageSize == nil ? 32 : TinyImageNet.side
    let d = 3 * side * side
    var pixels = [UInt8](repeating: 0, count: images * d)
    for i in 0..<images { for k in 0..<d { pixels[i * d + k] = UInt8(truncatingIfNeeded: i &* 31 &+ k &* 7) } }
    let data = Dataset(name: "synthetic", channels: 3, height: side, width: side, images: pixels,
                       labels: (0..<images).map { Int32($0 % 10) }, classCount: 10,
                       normalization: imageSize == nil ? .cifar10 : TinyImageNet.normalization)
    let augmentation: Augmentation
    if let s = imageSize {
        augmentation = evaluation ? .tinyImageNetEvaluation(imageSize: s) : .randomResizedCropFlip(size: s)
    } else {
        augmentation = .cifar
    }
    let loader = try BatchLoader(dataset: data, batchSize: batchSize, shuffle: true, augmentation: augmentation, seed: 1)
    let order = loader.order(epoch: 0)
    let start = DispatchTime.now().uptimeNanoseconds
    var built = 0
    for epoch in 0..<epochs {
        for b in 0..<loader.batchCount { built += loader.batch(b, epoch: epoch, order: order).count }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return (Double(built) / seconds, built)
}
