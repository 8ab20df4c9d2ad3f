import CPNG
import Foundation

/// An 8-bit RGB colour.
public struct Color: Equatable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    public static let white = Color(255, 255, 255)
    public static let black = Color(0, 0, 0)
    public static let gray = Color(128, 128, 128)
    public static let lightGray = Color(225, 225, 225)
    /// A colour-blind-friendly cycle (Okabe–Ito) for series.
    public static let palette = [Color(0, 114, 178), Color(213, 94, 0), Color(0, 158, 115), Color(204, 121, 167),
                                 Color(230, 159, 0), Color(86, 180, 233), Color(240, 228, 66), Color(0, 0, 0)]
}

/// Why a PNG could not be written or read.
public struct PNGError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A raster image (row-major RGB, origin top-left) with the primitives plots need: pixels, lines, filled
/// rectangles and text in a built-in 5×7 bitmap font. Written as PNG through libpng's simplified API.
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    /// width·height·3 bytes, row-major RGB.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, background: Color = .white) {
        precondition(width > 0 && height > 0, "canvas \(width)×\(height)")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            pixels[3 * i] = background.r; pixels[3 * i + 1] = background.g; pixels[3 * i + 2] = background.b
        }
    }

    /// Sets one pixel; coordinates outside the canvas are ignored.
    public mutating func set(_ x: Int, _ y: Int, _ c: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x)
        pixels[i] = c.r; pixels[i + 1] = c.g; pixels[i + 2] = c.b
    }

    public func pixel(_ x: Int, _ y: Int) -> Color {
        let i = 3 * (y * width + x)
        return Color(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ c: Color) {
        for yy in max(0, y)..<min(height, y + h) where w > 0 {
            for xx in max(0, x)..<min(width, x + w) { set(xx, yy, c) }
        }
    }

    /// A line from (x0, y0) to (x1, y1) (Bresenham), `thickness` pixels wide.
    public mutating func drawLine(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: Color, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        let lo = -(thickness - 1) / 2, hi = thickness / 2
        while true {
            for oy in lo...hi { for ox in lo...hi { set(x + ox, y + oy, c) } }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Width in pixels of `text` at `scale` (6·scale per character, the last column blank).
    public static func textWidth(_ text: String, scale: Int = 1) -> Int { max(0, text.count * 6 * scale - scale) }
    public static func textHeight(scale: Int = 1) -> Int { 7 * scale }

    /// Draws `text` with its top-left corner at (x, y); characters outside printable ASCII draw as '?'.
    public mutating func drawText(_ text: String, x: Int, y: Int, _ c: Color, scale: Int = 1) {
        var cx = x
        for ch in text.unicodeScalars {
            var code = Int(ch.value)
            if code < 32 || code > 126 { code = 63 }
            for col in 0..<5 {
                let bits = BitmapFont.glyphs[(code - 32) * 5 + col]
                for row in 0..<7 where bits & (1 << row) != 0 {
                    fillRect(x: cx + col * scale, y: y + row * scale, width: scale, height: scale, c)
                }
            }
            cx += 6 * scale
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    public func writePNG(to url: URL) throws {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        let ok = pixels.withUnsafeBufferPointer { buf in
            png_image_write_to_file(&image, url.path, 0, buf.baseAddress, Int32(width * 3), nil)
        }
        guard ok != 0 else { throw PNGError(message: "cannot write \(url.path): \(Self.message(&image))") }
    }

    /// Reads an image file (any PNG libpng understands) into an RGB canvas.
    public static func readPNG(from url: URL) throws -> Canvas {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, url.path) != 0 else {
            throw PNGError(message: "cannot read \(url.path): \(message(&image))")
        }
        image.format = UInt32(PNG_FORMAT_RGB)
        var canvas = Canvas(width: Int(image.width), height: Int(image.height))
        let ok = canvas.pixels.withUnsafeMutableBufferPointer { buf in
            png_image_finish_read(&image, nil, buf.baseAddress, Int32(canvas.width * 3), nil)
        }
        guard ok != 0 else { throw PNGError(message: "cannot decode \(url.path): \(message(&image))") }
        return canvas
    }

    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
