import Tensors

/// The per-image transform of a loader (reference §7, `CIFAR/dataset/*.py`, the Tiny-ImageNet DALI pipelines).
/// - `none`: ToTensor + Normalize (the reference's CIFAR test transform).
/// - `cropFlip(padding: p)`: RandomCrop(H×W, padding=p) with ZERO padding of the raw bytes (so a padded pixel
///   becomes −mean/std after normalisation), then RandomHorizontalFlip(0.5), then ToTensor + Normalize.
/// - `randomResizedCropFlip(size: S)`: the Tiny-ImageNet train pipeline: `RandomResizedCrop.box`, bilinear
///   resize of the crop to S×S, RandomHorizontalFlip(0.5), normalise (`resizedCropNormalizeImage`).
/// - `resizeCenterCrop(resize: R, crop: S)`: the Tiny-ImageNet val pipeline (deterministic): resize to
///   R×R, centre crop S×S (`centerCropGeometry`), normalise.
public enum Augmentation: Equatable, Codable, Sendable {
    case none
    case cropFlip(padding: Int)
    case randomResizedCropFlip(size: Int)
    case resizeCenterCrop(resize: Int, crop: Int)

    /// The Tiny-ImageNet evaluation transform for training resolution S.
    public static func tinyImageNetEvaluation(imageSize S: Int) -> Augmentation {
        .resizeCenterCrop(resize: centerCropGeometry(imageSize: S).resize, crop: S)
    }

    /// The (H, W) of the images this transform makes from `height`×`width` ones.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        switch self {
        case .none, .cropFlip: return (height, width)
        case .randomResizedCropFlip(let s), .resizeCenterCrop(_, let s): return (s, s)
        }
    }

    /// The CIFAR train transform: RandomCrop(32, padding=4) + RandomHorizontalFlip.
    public static let cifar = Augmentation.cropFlip(padding: 4)
}

/// The random choices for one image: the crop's top-left corner in the padded (H+2p)×(W+2p) image, and
/// whether to mirror. Drawn per image, in this order, as torchvision does:
/// top = below(2p+1), left = below(2p+1) (torchvision's `randint(0, h − th + 1)`), flip = uniform() < 0.5.
public struct CropFlip: Equatable, Sendable {
    public var top: Int
    public var left: Int
    public var flip: Bool

    public init(top: Int, left: Int, flip: Bool) {
        self.top = top
        self.left = left
        self.flip = flip
    }

    public static func draw(_ rng: inout RNG, padding: Int) -> CropFlip {
        let top = rng.below(2 * padding + 1)
        let left = rng.below(2 * padding + 1)
        let flip = rng.uniform() < 0.5
        return CropFlip(top: top, left: left, flip: flip)
    }
}

// These are the loader's per-image kernels: flat functions on raw pointers, outputs first, each with a naive
// twin used as test oracle. They live here rather than in Kernels because they are byte-to-float data
// preparation, not engine maths. Legend: C, H, W image sizes; p padding; lut the table of
// `Normalization.lookupTable()` ([C, 256]).

/// y[c, h, w] = lut[c, x[c, h, w]].
/// y: [C, H, W] float; x: [C, H, W] bytes.
@inline(__always)
public func normalizeImage(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<UInt8>, _ lut: UnsafePointer<Float>,
                           _ C: Int, _ H: Int, _ W: Int) {
    let hw = H * W
    for c in 0..<C {
        let t = lut + c * 256, xc = x + c * hw, yc = y + c * hw
        for i in 0..<hw { yc[i] = t[Int(xc[i])] }
    }
}

/// Crop of the zero-padded image at (top, left), optionally mirrored, normalised through `lut`:
/// y[c, h, w] = lut[c, padded(c, h + top, w' + left)] with w' = flip ? W−1−w : w, and
/// padded(c, i, j) = x[c, i − p, j − p] inside the image, 0 outside.
/// y: [C, H, W] float; x: [C, H, W] bytes. Works row by row: each output row is a run of border pixels,
/// a run of looked-up pixels, and another run of border pixels.
@inline(__always)
public func cropFlipNormalizeImage(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<UInt8>, _ lut: UnsafePointer<Float>,
                                   _ C: Int, _ H: Int, _ W: Int, _ p: Int, _ top: Int, _ left: Int, _ flip: Bool) {
    // Unmirrored output columns [w0, w1) read source column w + left − p; the rest is border.
    let w0 = min(W, max(0, p - left)), w1 = max(w0, min(W, W + p - left))
    let shift = left - p
    for c in 0..<C {
        let t = lut + c * 256, border = t[0]
        for h in 0..<H {
            let yr = y + (c * H + h) * W
            let sh = h + top - p
            if sh < 0 || sh >= H {
                yr.update(repeating: border, count: W)
                continue
            }
            let xr = x + (c * H + sh) * W
            if !flip {
                for w in 0..<w0 { yr[w] = border }
                for w in w0..<w1 { yr[w] = t[Int(xr[w + shift])] }
                for w in w1..<W { yr[w] = border }
            } else {
                // Mirrored output column w shows unmirrored column W−1−w.
                for w in 0..<(W - w1) { yr[w] = border }
                for w in (W - w1)..<(W - w0) { yr[w] = t[Int(xr[W - 1 - w + shift])] }
                for w in (W - w0)..<W { yr[w] = border }
            }
        }
    }
}

/// Naive twin of `cropFlipNormalizeImage`, step by step as torchvision does it: build the padded byte
/// image, crop, mirror, then ToTensor (/255) and Normalize in float32.
public func cropFlipNormalizeImageNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<UInt8>,
                                        _ normalization: Normalization,
                                        _ C: Int, _ H: Int, _ W: Int, _ p: Int, _ top: Int, _ left: Int, _ flip: Bool) {
    let PH = H + 2 * p, PW = W + 2 * p
    var padded = [UInt8](repeating: 0, count: C * PH * PW)
    for c in 0..<C { for h in 0..<H { for w in 0..<W { padded[(c * PH + h + p) * PW + w + p] = x[(c * H + h) * W + w] } } }
    for c in 0..<C {
        for h in 0..<H {
            for w in 0..<W {
                let sw = flip ? W - 1 - w : w
                let v = padded[(c * PH + h + top) * PW + sw + left]
                y[(c * H + h) * W + w] = (Float(v) / 255 - normalization.mean[c]) / normalization.std[c]
            }
        }
    }
}
