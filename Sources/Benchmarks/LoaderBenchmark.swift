import Datasets
import Foundation

/// Throughput of one thread building augmented (crop + flip) 3×32×32 training batches of `batchSize` from a
/// synthetic in-memory dataset of `images` images, over `epochs` epochs. Returns images per second and
/// the number of images built. The target on the reference machine is > 5,000 images/s.
public func loaderBenchmark(images: Int = 2048, batchSize: Int = 128,
                            epochs: Int = 4) throws -> (imagesPerSecond: Double, images: Int) {
    let d = 3 * 32 * 32
    var pixels = [UInt8](repeating: 0, count: images * d)
    for i in 0..<images { for k in 0..<d { pixels[i * d + k] = UInt8(truncatingIfNeeded: i &* 31 &+ k &* 7) } }
    let data = Dataset(name: "synthetic", channels: 3, height: 32, width: 32, images: pixels,
                       labels: (0..<images).map { Int32($0 % 10) }, classCount: 10, normalization: .cifar10)
    let loader = try BatchLoader.training(data, batchSize: batchSize, seed: 1)
    let order = loader.order(epoch: 0)
    let start = DispatchTime.now().uptimeNanoseconds
    var built = 0
    for epoch in 0..<epochs {
        for b in 0..<loader.batchCount { built += loader.batch(b, epoch: epoch, order: order).count }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return (Double(built) / seconds, built)
}
