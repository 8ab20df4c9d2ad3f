import CPNG
import Foundation

/// An 8-bit RGB colour.
public struct Color: Equatable, Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    public static let white = Color(255, 255, 255)
    public static let black = Color(0, 0, 0)
    public static let gray = Color(128, 128, 128)
    public static let darkGray = Color(64, 64, 64)
    public static let lightGray = Color(225, 225, 225)
    /// A colour-blind-friendly cycle (Okabe–Ito) for series.
    public static let palette = [Color(0, 114, 178), Color(213, 94, 0), Color(0, 158, 115), Color(204, 121, 167),
                                 Color(230, 159, 0), Color(86, 180, 233), Color(240, 228, 66), Color(0, 0, 0)]

    /// `self` painted over `base` with opacity `alpha` (clamped to [0, 1]): base + alpha·(self − base) per
    /// channel, rounded to nearest.
    public func over(_ base: Color, alpha: Double) -> Color {
        let a = min(max(alpha, 0), 1)
        func mix(_ s: UInt8, _ d: UInt8) -> UInt8 { UInt8((Double(d) + a * (Double(s) - Double(d))).rounded()) }
        return Color(mix(r, base.r), mix(g, base.g), mix(b, base.b))
    }

    /// Mixed towards black (`amount` < 0) or white (`amount` > 0) by |amount| ∈ [0, 1].
    public func shaded(_ amount: Double) -> Color {
        amount < 0 ? Color.black.over(self, alpha: -amount) : Color.white.over(self, alpha: amount)
    }
}

/// Why a PNG could not be written or read; `message` is one line naming the file.
public struct PNGError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// A raster image (row-major RGB, origin top-left) with the primitives plots need. Integer primitives
/// (`set`, `fillRect`, `drawLine`, `drawText`) draw hard pixels; the `Double` primitives (`fillPolygon`,
/// `strokePolyline`, `fillCircle`, `drawString`) cover the pixels whose centres (x + 0.5, y + 0.5) fall
/// inside the shape, with optional opacity. They are aliased on their own: plots draw on a canvas `k`
/// times larger and `downsampled(by: k)` it, which antialiases every primitive at once.
/// Written as PNG through libpng's simplified API.
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
        pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<(width * height) {
                p[3 * i] = background.r; p[3 * i + 1] = background.g; p[3 * i + 2] = background.b
            }
        }
    }

    /// Sets one pixel; coordinates outside the canvas are ignored.
    public mutating func set(_ x: Int, _ y: Int, _ c: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x)
        pixels[i] = c.r; pixels[i + 1] = c.g; pixels[i + 2] = c.b
    }

    /// Paints `c` over one pixel with opacity `alpha` ∈ [0, 1] (`Color.over`); outside the canvas: ignored.
    public mutating func blend(_ x: Int, _ y: Int, _ c: Color, alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        if alpha >= 1 { set(x, y, c); return }
        if alpha <= 0 { return }
        set(x, y, c.over(pixel(x, y), alpha: alpha))
    }

    public func pixel(_ x: Int, _ y: Int) -> Color {
        let i = 3 * (y * width + x)
        return Color(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ c: Color) {
        for yy in max(0, y)..<max(max(0, y), min(height, y + h)) where w > 0 {
            for xx in max(0, x)..<max(max(0, x), min(width, x + w)) { set(xx, yy, c) }
        }
    }

    /// Box filter: each output pixel is the rounded mean of a `factor`×`factor` block. Both sides must be
    /// multiples of `factor`.
    public func downsampled(by factor: Int) -> Canvas {
        precondition(factor >= 1 && width % factor == 0 && height % factor == 0,
                     "downsampled(by: \(factor)) of a \(width)×\(height) canvas")
        if factor == 1 { return self }
        let W = width / factor, H = height / factor, n = factor * factor
        var out = Canvas(width: W, height: H)
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for Y in 0..<H {
                    for X in 0..<W {
                        var r = 0, g = 0, b = 0
                        for dy in 0..<factor {
                            var i = 3 * ((Y * factor + dy) * width + X * factor)
                            for _ in 0..<factor {
                                r += Int(src[i]); g += Int(src[i + 1]); b += Int(src[i + 2])
                                i += 3
                            }
                        }
                        let o = 3 * (Y * W + X)
                        dst[o] = UInt8((r + n / 2) / n); dst[o + 1] = UInt8((g + n / 2) / n); dst[o + 2] = UInt8((b + n / 2) / n)
                    }
                }
            }
        }
        return out
    }

    /// Each pixel repeated into a `factor`×`factor` block (the inverse of `downsampled` on flat areas).
    public func upsampled(by factor: Int) -> Canvas {
        precondition(factor >= 1, "upsampled(by: \(factor))")
        var out = Canvas(width: width * factor, height: height * factor)
        for y in 0..<out.height {
            for x in 0..<out.width { out.set(x, y, pixel(x / factor, y / factor)) }
        }
        return out
    }

    /// Copies `image` with its top-left corner at (x, y); parts outside the canvas are dropped.
    public mutating func paste(_ image: Canvas, x: Int, y: Int) {
        for yy in 0..<image.height {
            for xx in 0..<image.width { set(x + xx, y + yy, image.pixel(xx, yy)) }
        }
    }

    /// The `width`×`height` block with its top-left corner at (x, y); pixels outside the canvas read white.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Canvas {
        var out = Canvas(width: w, height: h)
        for yy in 0..<h where y + yy >= 0 && y + yy < height {
            for xx in 0..<w where x + xx >= 0 && x + xx < width { out.set(xx, yy, pixel(x + xx, y + yy)) }
        }
        return out
    }

    // MARK: Area primitives (pixel-centre sampling; see the type's comment)

    /// Fills a polygon (even-odd rule; the last vertex joins the first), clipped to `clip` if given.
    public mutating func fillPolygon(_ points: [(x: Double, y: Double)], _ c: Color, alpha: Double = 1,
                                     clip: Rect? = nil) {
        var mask = SpanMask()
        mask.addPolygon(points)
        paint(mask, c, alpha: alpha, clip: clip)
    }

    /// Strokes a polyline `lineWidth` pixels wide with round joins and caps; `dash` = [on, off, …] lengths in
    /// pixels along the line (nil = solid). Overlaps are painted once, so translucent strokes stay even.
    public mutating func strokePolyline(_ points: [(x: Double, y: Double)], _ c: Color, lineWidth: Double,
                                        alpha: Double = 1, dash: [Double]? = nil, clip: Rect? = nil) {
        var mask = SpanMask()
        for piece in Self.dashed(points, dash) { mask.addPolyline(piece, radius: lineWidth / 2) }
        paint(mask, c, alpha: alpha, clip: clip)
    }

    public mutating func fillCircle(x: Double, y: Double, radius: Double, _ c: Color, alpha: Double = 1,
                                    clip: Rect? = nil) {
        var mask = SpanMask()
        mask.addCapsule(x, y, x, y, radius: radius)
        paint(mask, c, alpha: alpha, clip: clip)
    }

    public mutating func fillRect(x: Double, y: Double, width w: Double, height h: Double, _ c: Color,
                                  alpha: Double = 1, clip: Rect? = nil) {
        fillPolygon([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], c, alpha: alpha, clip: clip)
    }

    /// Draws `text` in the built-in stroke font (`StrokeFont`): `size` = capital height in pixels, `weight`
    /// = stroke width in pixels (nil: `StrokeFont.defaultWeight(size:)`). (x, y) is the anchor; `align.h`
    /// ∈ [0, 1] places it from the start to the end of the text, `align.v` from the capital top (0) to the
    /// baseline (1). `angle` in radians turns the text counter-clockwise about the anchor (π/2 reads upwards).
    public mutating func drawString(_ text: String, x: Double, y: Double, size: Double, _ c: Color,
                                    weight: Double? = nil, align: (h: Double, v: Double) = (0, 1),
                                    angle: Double = 0, alpha: Double = 1, clip: Rect? = nil) {
        let w = weight ?? StrokeFont.defaultWeight(size: size)
        var mask = SpanMask()
        for stroke in StrokeFont.layout(text, x: x, y: y, size: size, align: align, angle: angle) {
            mask.addPolyline(stroke, radius: w / 2)
        }
        paint(mask, c, alpha: alpha, clip: clip)
    }

    /// Advance width in pixels of `text` in the stroke font at capital height `size`.
    public static func stringWidth(_ text: String, size: Double) -> Double { StrokeFont.width(text, size: size) }

    /// An axis-aligned rectangle in pixel coordinates.
    public struct Rect: Sendable, Equatable {
        public var x0: Double, y0: Double, x1: Double, y1: Double
        public init(x0: Double, y0: Double, x1: Double, y1: Double) { self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1 }
    }

    mutating func paint(_ mask: SpanMask, _ c: Color, alpha: Double, clip: Rect?) {
        var lo = 0, hi = width, top = 0, bottom = height
        if let r = clip {
            lo = max(0, Int((r.x0 - 0.5).rounded(.up))); hi = min(width, Int((r.x1 - 0.5).rounded(.up)))
            top = max(0, Int((r.y0 - 0.5).rounded(.up))); bottom = min(height, Int((r.y1 - 0.5).rounded(.up)))
        }
        let opaque = alpha >= 1
        for (y, spans) in mask.merged() where y >= top && y < bottom {
            for (a, b) in spans {
                for x in max(a, lo)..<max(max(a, lo), min(b, hi)) {
                    if opaque { set(x, y, c) } else { blend(x, y, c, alpha: alpha) }
                }
            }
        }
    }

    /// Splits a polyline into its "on" pieces for a dash pattern (nil or empty: the whole line).
    static func dashed(_ points: [(x: Double, y: Double)], _ dash: [Double]?) -> [[(x: Double, y: Double)]] {
        guard let dash, !dash.isEmpty, dash.allSatisfy({ $0 > 0 }), points.count > 1 else { return [points] }
        var pieces: [[(x: Double, y: Double)]] = []
        var current: [(x: Double, y: Double)] = [points[0]]
        var k = 0, left = dash[0]
        for i in 1..<points.count {
            var p = points[i - 1]
            let q = points[i]
            var seg = hypot(q.x - p.x, q.y - p.y)
            while seg > left {
                let t = left / seg
                p = (p.x + t * (q.x - p.x), p.y + t * (q.y - p.y))
                seg -= left
                if k % 2 == 0 { current.append(p); pieces.append(current); current = [] } else { current = [p] }
                k += 1
                left = dash[k % dash.count]
            }
            left -= seg
            if k % 2 == 0 { current.append(q) }
        }
        if k % 2 == 0, current.count > 1 { pieces.append(current) }
        return pieces
    }

    // MARK: Bitmap text (5×7 font, hard pixels)

    /// Width in pixels of `text` at `scale` (6·scale per character, the last column blank).
    public static func textWidth(_ text: String, scale: Int = 1) -> Int { max(0, text.count * 6 * scale - scale) }
    public static func textHeight(scale: Int = 1) -> Int { 7 * scale }

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

    /// Draws `text` in the 5×7 bitmap font with its top-left corner at (x, y); characters outside printable
    /// ASCII draw as '?'.
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

    // MARK: PNG

    /// Writes the canvas as an 8-bit RGB PNG. The image goes to a temporary file in the same directory that
    /// is then renamed over `url`, so an interrupted write never leaves a truncated PNG at `url`.
    public func writePNG(to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        let ok = pixels.withUnsafeBufferPointer { buf in
            png_image_write_to_file(&image, tmp.path, 0, buf.baseAddress, Int32(width * 3), nil)
        }
        guard ok != 0 else {
            unlink(tmp.path)
            throw PNGError(message: "cannot write \(url.path): \(Self.message(&image))")
        }
        guard rename(tmp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp.path)
            throw PNGError(message: "cannot write \(url.path): rename from temporary file failed: \(reason)")
        }
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
        let text = withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return text.isEmpty ? "libpng failed" : text.replacingOccurrences(of: "\n", with: " ")
    }
}

/// The pixels covered by a set of shapes, as half-open [x0, x1) spans per row; a pixel is covered when its
/// centre (x + 0.5, y + 0.5) lies inside a shape. Shapes are unioned, so overlaps are painted once.
struct SpanMask {
    var rows: [Int: [(Int, Int)]] = [:]

    /// Covers the centres with x ∈ [a, b] on row y.
    mutating func add(row y: Int, from a: Double, to b: Double) {
        let x0 = Int((a - 0.5).rounded(.up)), x1 = Int((b - 0.5).rounded(.down)) + 1
        if x1 > x0 { rows[y, default: []].append((x0, x1)) }
    }

    /// The points within `radius` of the segment (ax, ay)–(bx, by): a capsule (a disk when a = b). The
    /// capsule is convex, so each row meets it in one interval: the hull of the row's intervals through the
    /// two end disks and the rectangle between them.
    mutating func addCapsule(_ ax: Double, _ ay: Double, _ bx: Double, _ by: Double, radius r: Double) {
        guard r > 0, ax.isFinite, ay.isFinite, bx.isFinite, by.isFinite else { return }
        let len = hypot(bx - ax, by - ay)
        let ux = len > 1e-12 ? (bx - ax) / len : 0, uy = len > 1e-12 ? (by - ay) / len : 0
        let yTop = Int((min(ay, by) - r - 0.5).rounded(.up)), yBottom = Int((max(ay, by) + r - 0.5).rounded(.down))
        guard yBottom >= yTop else { return }
        for y in yTop...yBottom {
            let yc = Double(y) + 0.5
            var lo = Double.infinity, hi = -Double.infinity
            for (cx, cy) in [(ax, ay), (bx, by)] where abs(yc - cy) <= r {
                let dx = (r * r - (yc - cy) * (yc - cy)).squareRoot()
                lo = min(lo, cx - dx); hi = max(hi, cx + dx)
            }
            if len > 1e-12 {
                // |−uy·(x − ax) + ux·(yc − ay)| ≤ r and 0 ≤ ux·(x − ax) + uy·(yc − ay) ≤ len, each linear in x.
                var iLo = -Double.infinity, iHi = Double.infinity
                func within(_ a: Double, _ b: Double, _ l: Double, _ h: Double) {
                    if abs(a) < 1e-12 {
                        if b < l || b > h { iLo = .infinity; iHi = -.infinity }
                    } else {
                        let p = (l - b) / a, q = (h - b) / a
                        iLo = max(iLo, min(p, q)); iHi = min(iHi, max(p, q))
                    }
                }
                within(-uy, uy * ax + ux * (yc - ay), -r, r)
                within(ux, -ux * ax + uy * (yc - ay), 0, len)
                if iLo <= iHi { lo = min(lo, iLo); hi = max(hi, iHi) }
            }
            if lo <= hi { add(row: y, from: lo, to: hi) }
        }
    }

    mutating func addPolyline(_ points: [(x: Double, y: Double)], radius: Double) {
        guard let first = points.first else { return }
        if points.count == 1 { addCapsule(first.x, first.y, first.x, first.y, radius: radius); return }
        for i in 1..<points.count {
            addCapsule(points[i - 1].x, points[i - 1].y, points[i].x, points[i].y, radius: radius)
        }
    }

    /// Even-odd fill of a closed polygon, sampled at pixel-centre rows.
    mutating func addPolygon(_ points: [(x: Double, y: Double)]) {
        let pts = points.filter { $0.x.isFinite && $0.y.isFinite }
        guard pts.count >= 3 else { return }
        let ys = pts.map(\.y)
        let yTop = Int((ys.min()! - 0.5).rounded(.up)), yBottom = Int((ys.max()! - 0.5).rounded(.down))
        guard yBottom >= yTop else { return }
        var xs: [Double] = []
        for y in yTop...yBottom {
            let yc = Double(y) + 0.5
            xs.removeAll(keepingCapacity: true)
            for i in 0..<pts.count {
                let p = pts[i], q = pts[(i + 1) % pts.count]
                if (p.y <= yc) != (q.y <= yc) { xs.append(p.x + (yc - p.y) * (q.x - p.x) / (q.y - p.y)) }
            }
            xs.sort()
            var k = 0
            while k + 1 < xs.count {
                // Centres in [xs[k], xs[k+1]): half-open so that polygons sharing an edge do not overlap.
                let x0 = Int((xs[k] - 0.5).rounded(.up)), x1 = Int((xs[k + 1] - 0.5).rounded(.up))
                if x1 > x0 { rows[y, default: []].append((x0, x1)) }
                k += 2
            }
        }
    }

    /// Rows with their spans sorted and overlapping spans joined.
    func merged() -> [(Int, [(Int, Int)])] {
        rows.map { y, spans in
            let sorted = spans.sorted { $0.0 < $1.0 }
            var out: [(Int, Int)] = []
            for s in sorted {
                if let last = out.last, s.0 <= last.1 { out[out.count - 1].1 = max(last.1, s.1) } else { out.append(s) }
            }
            return (y, out)
        }
    }
}
