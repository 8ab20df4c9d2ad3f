import Foundation
import Tensors

/// Which half of a dataset to read. None of the datasets here has a validation split (reference §7).
public enum Split: String, CaseIterable, Codable, Sendable {
    case train
    case test
}

/// Per-channel normalisation applied after scaling pixels to [0, 1]: y = (v/255 − mean[c]) / std[c].
public struct Normalization: Equatable, Codable, Sendable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count, "normalisation has \(mean.count) means and \(std.count) stds")
        self.mean = mean
        self.std = std
    }

    /// Reference §3.4, `CIFAR/dataset/cifar10.py:21,25`.
    public static let cifar10 = Normalization(mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.2010])
    /// Reference §3.4, `CIFAR/dataset/cifar100.py:32,36`.
    public static let cifar100 = Normalization(mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761])
    /// Fashion-MNIST, cifar-style encoding (28×28 zero-padded to 32×32, replicated to 3 channels).
    /// Computed once over the 60,000 training images *after* padding to 32×32 (so the 2-pixel zero border
    /// counts), pixels /255, in float64: mean 0.218999…, population std 0.331811…; rounded to 4 places.
    /// The three channels are identical copies, hence identical constants.
    public static let fashionMNISTCifarStyle = Normalization(mean: [0.2190, 0.2190, 0.2190], std: [0.3318, 0.3318, 0.3318])
    /// Fashion-MNIST, raw 1×28×28 encoding. Computed once over the 60,000 raw 28×28 training images,
    /// pixels /255, in float64: mean 0.286040…, population std 0.353024…; rounded to 4 places.
    public static let fashionMNISTRaw = Normalization(mean: [0.2860], std: [0.3530])

    /// lut[c·256 + v] = (Float(v)/255 − mean[c]) / std[c], computed in float32 in the same order as
    /// torchvision's ToTensor (`div(255)`) followed by Normalize (`sub_(mean).div_(std)`), so a table
    /// lookup gives the reference's values bit for bit.
    public func lookupTable() -> [Float] {
        var lut = [Float](repeating: 0, count: mean.count * 256)
        for c in 0..<mean.count {
            for v in 0..<256 { lut[c * 256 + v] = (Float(v) / 255 - mean[c]) / std[c] }
        }
        return lut
    }
}

/// An image-classification dataset held in memory as raw bytes.
///
/// `images`: UInt8 [count, C, H, W], channel-major per image, as the CIFAR binary files store them.
/// `labels`: [count] in 0..<classCount. CIFAR-100 also keeps its 20 coarse labels in `coarseLabels`.
public struct Dataset: Sendable {
    /// E.g. "cifar10-train".
    public let name: String
    public let channels: Int
    public let height: Int
    public let width: Int
    public let images: [UInt8]
    public let labels: [Int32]
    public let classCount: Int
    public let coarseLabels: [Int32]?
    public let coarseClassCount: Int?
    public let normalization: Normalization

    public init(name: String, channels: Int, height: Int, width: Int, images: [UInt8], labels: [Int32],
                classCount: Int, coarseLabels: [Int32]? = nil, coarseClassCount: Int? = nil,
                normalization: Normalization) {
        precondition(images.count == labels.count * channels * height * width,
                     "\(images.count) pixel bytes for \(labels.count) images of \(channels)×\(height)×\(width)")
        precondition(normalization.mean.count == channels,
                     "normalisation has \(normalization.mean.count) channels, images have \(channels)")
        precondition(coarseLabels == nil || coarseLabels!.count == labels.count,
                     "\(coarseLabels?.count ?? 0) coarse labels for \(labels.count) images")
        self.name = name
        self.channels = channels
        self.height = height
        self.width = width
        self.images = images
        self.labels = labels
        self.classCount = classCount
        self.coarseLabels = coarseLabels
        self.coarseClassCount = coarseClassCount
        self.normalization = normalization
    }

    public var count: Int { labels.count }
    /// C·H·W bytes per image.
    public var imageSize: Int { channels * height * width }

    /// The bytes of image i, [C, H, W].
    public func image(_ i: Int) -> ArraySlice<UInt8> { images[i * imageSize ..< (i + 1) * imageSize] }

    /// The images at `indices`, in that order.
    public func subset(_ indices: [Int], name: String? = nil) -> Dataset {
        let size = imageSize
        var out = [UInt8](repeating: 0, count: indices.count * size)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "subset index \(i) outside 0..<\(count)")
                    (dst.baseAddress! + k * size).update(from: src.baseAddress! + i * size, count: size)
                }
            }
        }
        return Dataset(name: name ?? self.name, channels: channels, height: height, width: width, images: out,
                       labels: indices.map { labels[$0] }, classCount: classCount,
                       coarseLabels: coarseLabels.map { c in indices.map { c[$0] } },
                       coarseClassCount: coarseClassCount, normalization: normalization)
    }

    /// A smaller dataset for smoke runs and tests, as chosen by `selection`.
    public func limited(_ selection: SubsetSelection) -> Dataset {
        switch selection {
        case .all:
            return self
        case .first(let k):
            let n = min(max(k, 0), count)
            return n == count ? self : subset(Array(0..<n), name: "\(name)[:\(n)]")
        case .random(let k, let seed):
            let n = min(max(k, 0), count)
            var rng = RNG(seed: seed)
            let picked = rng.permutation(count).prefix(n).sorted()
            return subset(picked, name: "\(name)[random \(n), seed \(seed)]")
        }
    }
}

/// How much of a dataset to use.
public enum SubsetSelection: Equatable, Codable, Sendable {
    case all
    /// The first k images in file order.
    case first(Int)
    /// k images drawn without replacement by `RNG(seed:).permutation`, kept in file order.
    case random(Int, seed: UInt64)
}
