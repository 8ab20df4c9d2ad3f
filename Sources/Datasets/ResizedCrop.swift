import Foundation
import Tensors

// The Tiny-ImageNet pipelines (reference §7, `TinyImageNet/data_loaders/imagenet_data_loader.py`):
//   train: random-resized crop of the 64×64 image → resize to S×S → horizontal flip (p = 0.5) → normalise
//   val:   resize to R×R, R = ⌊S·256/224⌋ (256 for S = 224) → centre crop S×S → normalise
// Both are one fused kernel, `resizedCropNormalizeImage`: a box of the source image is resized to
// (RH, RW) and a window of that resized image is written out, mirrored or not, through the normalisation LUT.
//
// The resize filter: bilinear with half-pixel centres (PyTorch `interpolate(mode='bilinear',
// align_corners=False, antialias=False)`), then rounded to uint8 (half to even, as torchvision's uint8
// path), then normalised. DALI's "triangular" filter is exactly this linear interpolation when upscaling,
// which is every case of the paper's pipelines (a crop of at most 64 px to 224; 64 → 256 for val) and of
// S = 64 (crops ≤ 64 → 64; 64 → 73). Only at S < 64 can a crop shrink, where DALI's triangle widens into
// an antialiasing filter and ours stays bilinear; the uint8 rounding matches DALI's uint8 resize output.

/// A crop of an image: rows top..<top+height, columns left..<left+width.
public struct CropBox: Equatable, Codable, Sendable {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }
}

/// The random numbers a random-resized crop consumes, in this order per attempt: a scale s (uniform in
/// `scale`), an aspect ratio r (log-uniform in `ratio`); then, for the accepted attempt, a top and a left
/// offset (uniform integers below n). `RNG` draws them; tests feed torchvision's recorded draws.
public protocol CropDraws {
    mutating func scale(in range: ClosedRange<Double>) -> Double
    mutating func aspectRatio(in range: ClosedRange<Double>) -> Double
    mutating func below(_ n: Int) -> Int
}

extension RNG: CropDraws {
    /// 53-bit uniform in [0, 1).
    private mutating func uniform53() -> Double { Double(next() >> 11) * 0x1p-53 }

    public mutating func scale(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * uniform53()
    }

    public mutating func aspectRatio(in range: ClosedRange<Double>) -> Double {
        let lo = log(range.lowerBound), hi = log(range.upperBound)
        return exp(lo + (hi - lo) * uniform53())
    }
}

/// torchvision's `RandomResizedCrop.get_params` (0.14, `transforms.py`), with DALI's 100 attempts
/// (`fn.decoders.image_random_crop(random_area=[0.08, 1], random_aspect_ratio=[0.75, 1.33],
/// num_attempts=100)` in the authors' loader).
public enum RandomResizedCrop {
    public static let scale: ClosedRange<Double> = 0.08...1
    public static let ratio: ClosedRange<Double> = 0.75...(4.0 / 3.0)
    public static let attempts = 100

    /// Per attempt: target area A = H·W·s, w = round(√(A·r)), h = round(√(A/r)) (Python's round: half to
    /// even); accepted when 0 < w ≤ W and 0 < h ≤ H, then top = below(H − h + 1), left = below(W − w + 1).
    /// After `attempts` rejections, the centre crop of the largest box whose aspect ratio is within `ratio`
    /// (the whole image for a square one): top = (H − h) / 2, left = (W − w) / 2 (floor).
    public static func box<D: CropDraws>(height H: Int, width W: Int, scale: ClosedRange<Double> = scale,
                                         ratio: ClosedRange<Double> = ratio, attempts: Int = attempts,
                                         draws: inout D) -> CropBox {
        let area = Double(H * W)
        for _ in 0..<attempts {
            let target = area * draws.scale(in: scale)
            let r = draws.aspectRatio(in: ratio)
            let w = Int((target * r).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / r).squareRoot().rounded(.toNearestOrEven))
            if w > 0, w <= W, h > 0, h <= H {
                let top = draws.below(H - h + 1)
                let left = draws.below(W - w + 1)
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        let inRatio = Double(W) / Double(H)
        var w = W, h = H
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return CropBox(top: (H - h) / 2, left: (W - w) / 2, height: h, width: w)
    }
}

/// The validation geometry for training resolution S: resize to R = ⌊S·256/224⌋ (the reference's 256 for
/// 224; timm's `int(S / 0.875)`), then centre crop S, offset round((R − S)/2) half to even (torchvision
/// `CenterCrop`).
public func centerCropGeometry(imageSize S: Int) -> (resize: Int, offset: Int) {
    let R = S * 256 / 224
    return (R, Int((Double(R - S) / 2).rounded(.toNearestOrEven)))
}

/// PyTorch's source coordinate of bilinear interpolation without corner alignment
/// (`area_pixel_compute_source_index`, `UpSample.h`): src = scale·(dst + 0.5) − 0.5 with
/// scale = inSize/outSize in float32, clamped below at 0; i0 = ⌊src⌋, i1 = i0 + 1 unless i0 is the last
/// index, λ1 = src − i0, λ0 = 1 − λ1.
@inline(__always)
func bilinearTap(_ dst: Int, inSize: Int, outSize: Int) -> (i0: Int, i1: Int, l0: Float, l1: Float) {
    let scale = Float(inSize) / Float(outSize)
    let src = max(scale * (Float(dst) + 0.5) - 0.5, 0)
    let i0 = min(Int(src), inSize - 1)
    let i1 = i0 + (i0 < inSize - 1 ? 1 : 0)
    let l1 = min(max(src - Float(i0), 0), 1)
    return (i0, i1, 1 - l1, l1)
}

/// round(v) half to even for v in [0, 255] (a convex combination of bytes), as `v.rounded(.toNearestOrEven)`
/// without a libm call: adding 1.5·2²³ leaves a float whose unit is 1, so the addition itself rounds (to
/// nearest even, the default mode) and the low mantissa bits hold the integer.
@inline(__always)
func roundedByte(_ v: Float) -> Int {
    min(Int((v + 12_582_912).bitPattern & 0x3FF), 255)
}

/// One resized-crop sample through the normalisation LUT.
///
/// x: [C, H, W] bytes. The box `box` of x is resized bilinearly to [RH, RW] (`bilinearTap` per axis,
/// interpolating along the width first: v = λ0y·(λ0x·x00 + λ1x·x01) + λ1y·(λ0x·x10 + λ1x·x11), as PyTorch's
/// CPU kernel nests them), rounded half to even to uint8; y: [C, OH, OW] float receives the window at
/// (oy, ox) of that image, columns mirrored when `flip`, each value looked up in `lut` ([C, 256]).
/// `scratch`: box.height·OW floats.
public func resizedCropNormalizeImage(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<UInt8>, _ lut: UnsafePointer<Float>,
                                      _ C: Int, _ H: Int, _ W: Int, _ box: CropBox, _ RH: Int, _ RW: Int,
                                      _ oy: Int, _ ox: Int, _ OH: Int, _ OW: Int, _ flip: Bool,
                                      _ scratch: UnsafeMutablePointer<Float>) {
    precondition(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1
                 && box.top + box.height <= H && box.left + box.width <= W,
                 "crop \(box) outside the \(H)×\(W) image")
    precondition(oy >= 0 && ox >= 0 && oy + OH <= RH && ox + OW <= RW, "window \(OH)×\(OW) at (\(oy), \(ox)) outside \(RH)×\(RW)")
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * OW) { cols in
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * OW) { cw in
        // Output column j shows resized column ox + (flip ? OW−1−j : j).
        for j in 0..<OW {
            let t = bilinearTap(ox + (flip ? OW - 1 - j : j), inSize: box.width, outSize: RW)
            cols[2 * j] = box.left + t.i0
            cols[2 * j + 1] = box.left + t.i1
            cw[2 * j] = t.l0
            cw[2 * j + 1] = t.l1
        }
        for c in 0..<C {
            let xc = x + c * H * W, t = lut + c * 256, yc = y + c * OH * OW
            for r in 0..<box.height {
                let xr = xc + (box.top + r) * W, sr = scratch + r * OW
                for j in 0..<OW {
                    sr[j] = Float(xr[cols[2 * j]]) * cw[2 * j] + Float(xr[cols[2 * j + 1]]) * cw[2 * j + 1]
                }
            }
            for i in 0..<OH {
                let ty = bilinearTap(oy + i, inSize: box.height, outSize: RH)
                let r0 = scratch + ty.i0 * OW, r1 = scratch + ty.i1 * OW, yr = yc + i * OW
                for j in 0..<OW {
                    let v = r0[j] * ty.l0 + r1[j] * ty.l1
                    yr[j] = t[roundedByte(v)]
                }
            }
        }
    } }
}

/// Naive twin of `resizedCropNormalizeImage`, step by step as torchvision and PyTorch do it: crop the
/// bytes, resize to RH×RW (`resizeBilinearNaive`), round to uint8, take the window, mirror, then
/// ToTensor (/255) and Normalize in float32.
public func resizedCropNormalizeImageNaive(_ x: [UInt8], _ normalization: Normalization, _ C: Int, _ H: Int, _ W: Int,
                                           _ box: CropBox, _ RH: Int, _ RW: Int, _ oy: Int, _ ox: Int,
                                           _ OH: Int, _ OW: Int, _ flip: Bool) -> [Float] {
    var crop = [Float](repeating: 0, count: C * box.height * box.width)
    for c in 0..<C {
        for r in 0..<box.height {
            for q in 0..<box.width { crop[(c * box.height + r) * box.width + q] = Float(x[(c * H + box.top + r) * W + box.left + q]) }
        }
    }
    let resized = resizeBilinearNaive(crop, C, box.height, box.width, RH, RW)
    var y = [Float](repeating: 0, count: C * OH * OW)
    for c in 0..<C {
        for i in 0..<OH {
            for j in 0..<OW {
                let q = ox + (flip ? OW - 1 - j : j)
                let v = resized[(c * RH + oy + i) * RW + q].rounded(.toNearestOrEven)
                y[(c * OH + i) * OW + j] = (v / 255 - normalization.mean[c]) / normalization.std[c]
            }
        }
    }
    return y
}

/// `torch.nn.functional.interpolate(x, size=(OH, OW), mode='bilinear', align_corners=False,
/// antialias=False)` of one [C, H, W] float image, computed pixel by pixel (`bilinearTap` per axis).
public func resizeBilinearNaive(_ x: [Float], _ C: Int, _ H: Int, _ W: Int, _ OH: Int, _ OW: Int) -> [Float] {
    var y = [Float](repeating: 0, count: C * OH * OW)
    for c in 0..<C {
        for i in 0..<OH {
            let ty = bilinearTap(i, inSize: H, outSize: OH)
            for j in 0..<OW {
                let tx = bilinearTap(j, inSize: W, outSize: OW)
                let p = { (r: Int, q: Int) in x[(c * H + r) * W + q] }
                let top = p(ty.i0, tx.i0) * tx.l0 + p(ty.i0, tx.i1) * tx.l1
                let bottom = p(ty.i1, tx.i0) * tx.l0 + p(ty.i1, tx.i1) * tx.l1
                y[(c * OH + i) * OW + j] = top * ty.l0 + bottom * ty.l1
            }
        }
    }
    return y
}
