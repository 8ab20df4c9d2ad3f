import CTurboJPEG
import Foundation

/// JPEG decoding through Debian's libjpeg-turbo (TurboJPEG API). One decoder per thread.
public final class JPEGDecoder {
    private let handle: tjhandle

    public init() {
        guard let h = tjInitDecompress() else { preconditionFailure("tjInitDecompress failed: \(String(cString: tjGetErrorStr2(nil)))") }
        handle = h
    }

    deinit { tjDestroy(handle) }

    /// Decodes `bytes` (the contents of `file`, named in errors) to interleaved RGB, [H, W, 3] bytes, with
    /// libjpeg-turbo's default (accurate integer) IDCT and fancy upsampling. Grayscale JPEGs come out with
    /// the grey value in all three channels (TurboJPEG converts; this is what PIL's `convert("RGB")` and
    /// DALI's RGB decode give). Any libjpeg warning (a truncated or damaged stream) is an error: a packed
    /// dataset must not hold a half-grey image.
    public func decodeRGB(_ bytes: [UInt8], file: String) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer { b in
            tjDecompressHeader3(handle, b.baseAddress, UInt(b.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw DatasetError.unreadable(file: file, reason: "not a valid JPEG: \(message)") }
        guard width > 0, height > 0, Int(width) * Int(height) <= 1 << 26 else {
            throw DatasetError.unreadable(file: file, reason: "not a valid JPEG: \(width)×\(height) pixels")
        }
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = bytes.withUnsafeBufferPointer { b in
            pixels.withUnsafeMutableBufferPointer { p in
                tjDecompress2(handle, b.baseAddress, UInt(b.count), p.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue), 0)
            }
        }
        guard status == 0 else { throw DatasetError.unreadable(file: file, reason: "corrupt JPEG: \(message)") }
        return (Int(width), Int(height), pixels)
    }

    private var message: String { tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown libjpeg error" }
}
