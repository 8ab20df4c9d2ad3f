import Foundation

/// Point markers drawn at a series' data points.
public enum Marker: Sendable, CaseIterable {
    case circle, square, diamond, triangle
}

/// Text sizes (capital heights) and colours shared by the charts, in output pixels.
enum PlotStyle {
    static let titleSize = 14.0
    static let labelSize = 11.5
    static let tickSize = 10.0
    static let legendSize = 10.5
    static let ink = Color(25, 25, 25)
    static let frame = Color(90, 90, 90)
    static let grid = Color(233, 233, 233)
    static let pad = 10.0
}

/// A supersampled drawing surface addressed in output pixels: everything is drawn `factor` times larger on
/// `canvas` and box-filtered down by `result()`, which antialiases lines, fills and text alike.
struct PlotSurface {
    /// Supersampling factor per axis (4: 17 coverage levels per edge pixel).
    static let factor = 4
    var canvas: Canvas
    let k: Double

    /// Starts from `base` (the output-size pixels already under the plot), enlarged.
    init(base: Canvas) {
        canvas = base.isBlank ? Canvas(width: base.width * Self.factor, height: base.height * Self.factor)
                              : base.upsampled(by: Self.factor)
        k = Double(Self.factor)
    }

    func result() -> Canvas { canvas.downsampled(by: Self.factor) }

    /// Runs `content` on a surface over the rectangle (x, y, width, height) of `canvas` (given its size in
    /// output pixels) and pastes the antialiased result back: how every `Chart` draws.
    static func draw(on canvas: inout Canvas, x: Int, y: Int, width: Int, height: Int,
                     content: (inout PlotSurface, Double, Double) -> Void) {
        guard width > 0, height > 0 else { return }
        var s = PlotSurface(base: canvas.cropped(x: x, y: y, width: width, height: height))
        content(&s, Double(width), Double(height))
        canvas.paste(s.result(), x: x, y: y)
    }

    /// Centre of the output pixel row/column containing `v`: a 1-px line there covers exactly one pixel.
    static func crisp(_ v: Double) -> Double { v.rounded(.down) + 0.5 }

    func scaled(_ r: Canvas.Rect?) -> Canvas.Rect? {
        r.map { Canvas.Rect(x0: $0.x0 * k, y0: $0.y0 * k, x1: $0.x1 * k, y1: $0.y1 * k) }
    }

    mutating func line(_ points: [(x: Double, y: Double)], _ c: Color, width: Double, dash: [Double]? = nil,
                       alpha: Double = 1, clip: Canvas.Rect? = nil) {
        canvas.strokePolyline(points.map { ($0.x * k, $0.y * k) }, c, lineWidth: width * k, alpha: alpha,
                              dash: dash?.map { $0 * k }, clip: scaled(clip))
    }

    mutating func polygon(_ points: [(x: Double, y: Double)], _ c: Color, alpha: Double = 1, clip: Canvas.Rect? = nil) {
        canvas.fillPolygon(points.map { ($0.x * k, $0.y * k) }, c, alpha: alpha, clip: scaled(clip))
    }

    mutating func rect(x: Double, y: Double, width w: Double, height h: Double, _ c: Color, alpha: Double = 1,
                       clip: Canvas.Rect? = nil) {
        canvas.fillRect(x: x * k, y: y * k, width: w * k, height: h * k, c, alpha: alpha, clip: scaled(clip))
    }

    /// A 1-px outline whose edges fall on whole output pixels.
    mutating func frame(x0: Double, y0: Double, x1: Double, y1: Double, _ c: Color, width: Double = 1) {
        let a = Self.crisp(x0), b = Self.crisp(x1), t = Self.crisp(y0), u = Self.crisp(y1)
        line([(a, t), (b, t), (b, u), (a, u), (a, t)], c, width: width)
    }

    mutating func circle(x: Double, y: Double, radius: Double, _ c: Color, alpha: Double = 1, clip: Canvas.Rect? = nil) {
        canvas.fillCircle(x: x * k, y: y * k, radius: radius * k, c, alpha: alpha, clip: scaled(clip))
    }

    /// `halo`: a white outline under the text keeps it legible where it crosses lines or fills.
    mutating func text(_ s: String, x: Double, y: Double, size: Double, _ c: Color = PlotStyle.ink,
                       weight: Double? = nil, align: (h: Double, v: Double) = (0, 1), angle: Double = 0,
                       halo: Bool = false) {
        let w = weight ?? StrokeFont.defaultWeight(size: size)
        if halo {
            canvas.drawString(s, x: x * k, y: y * k, size: size * k, .white, weight: (w + 3) * k, align: align,
                              angle: angle, alpha: 0.9)
        }
        canvas.drawString(s, x: x * k, y: y * k, size: size * k, c, weight: w * k, align: align, angle: angle)
    }

    static func textWidth(_ s: String, size: Double) -> Double { StrokeFont.width(s, size: size) }

    /// A marker of radius `r` centred on (x, y), with a thin white rim that separates it from lines.
    mutating func marker(_ m: Marker, x: Double, y: Double, r: Double, _ c: Color, clip: Canvas.Rect? = nil) {
        func shape(_ r: Double) -> [(x: Double, y: Double)] {
            switch m {
            case .circle: return (0..<24).map { i in let a = Double(i) * .pi / 12; return (x + r * cos(a), y + r * sin(a)) }
            case .square: let h = r * 0.88; return [(x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h)]
            case .diamond: let h = r * 1.25; return [(x, y - h), (x + h, y), (x, y + h), (x - h, y)]
            case .triangle: let h = r * 1.3; return [(x, y - h), (x + h * 0.87, y + h * 0.5), (x - h * 0.87, y + h * 0.5)]
            }
        }
        polygon(shape(r + 1), .white, clip: clip)
        polygon(shape(r), c, clip: clip)
    }
}

extension Canvas {
    /// True when every pixel is white.
    var isBlank: Bool { pixels.allSatisfy { $0 == 255 } }
}

/// One row of a legend: a swatch (line, band, marker or bar patch) and its label.
struct LegendEntry {
    var label: String
    var color: Color
    var line = true
    var dashed = false
    var band = false
    var marker: Marker? = nil
    var patch = false
}

enum Legend {
    static let swatch = 26.0
    static var rowHeight: Double { PlotStyle.legendSize * 1.9 }

    static func size(_ entries: [LegendEntry]) -> (w: Double, h: Double) {
        let textW = entries.map { PlotSurface.textWidth($0.label, size: PlotStyle.legendSize) }.max() ?? 0
        return (8 + swatch + 8 + textW + 10, Double(entries.count) * rowHeight + 8)
    }

    /// Draws the boxed legend with its top-left corner at (x, y).
    static func draw(_ entries: [LegendEntry], on s: inout PlotSurface, x: Double, y: Double) {
        let (w, h) = size(entries)
        s.rect(x: x, y: y, width: w, height: h, .white, alpha: 0.88)
        s.frame(x0: x, y0: y, x1: x + w, y1: y + h, Color(200, 200, 200))
        for (i, e) in entries.enumerated() {
            let cy = y + 4 + (Double(i) + 0.5) * rowHeight
            drawSwatch(e, on: &s, x: x + 8, cy: cy)
            s.text(e.label, x: x + 8 + swatch + 8, y: cy, size: PlotStyle.legendSize, align: (0, 0.5))
        }
    }

    static func drawSwatch(_ e: LegendEntry, on s: inout PlotSurface, x: Double, cy: Double) {
        if e.patch {
            s.rect(x: x + 4, y: cy - 6, width: swatch - 8, height: 12, e.color)
            s.frame(x0: x + 4, y0: cy - 6, x1: x + swatch - 4, y1: cy + 6, e.color.shaded(-0.3))
            return
        }
        if e.band { s.rect(x: x, y: cy - 6, width: swatch, height: 12, e.color, alpha: 0.2) }
        if e.line {
            s.line([(x, cy), (x + swatch, cy)], e.color, width: 2, dash: e.dashed ? [5, 3] : nil)
        }
        if let m = e.marker { s.marker(m, x: x + swatch / 2, y: cy, r: 3.2, e.color) }
    }
}

/// Axis ticks and their labels.
enum Ticks {
    /// Ticks at multiples of 1, 2 or 5 × 10^k (and of at least `minStep`) inside `r`: the step whose tick
    /// count is nearest 6 (ties: the larger step), at most 50 ticks.
    static func nice(_ r: ClosedRange<Double>, minStep: Double = 0) -> (ticks: [Double], step: Double) {
        let span = r.upperBound - r.lowerBound
        guard span > 0, span.isFinite else { return ([r.lowerBound], 1) }
        let mag = pow(10, floor(log10(span)))
        var best = (step: Double.infinity, score: Double.infinity)
        for e in [-2.0, -1, 0] {
            for m in [1.0, 2, 5] {
                let step = m * mag * pow(10, e)
                guard step >= minStep else { continue }
                let count = floor(r.upperBound / step + 1e-9) - ceil(r.lowerBound / step - 1e-9) + 1
                let score = abs(count - 6)
                if score < best.score || (score == best.score && step > best.step) { best = (step, score) }
            }
        }
        if !best.step.isFinite { best.step = max(minStep, mag) }
        let step = best.step
        let first = (r.lowerBound / step - 1e-9).rounded(.up)
        var out: [Double] = []
        var t = first * step
        while t <= r.upperBound + step * 1e-9 && out.count < 50 {
            out.append(abs(t) < step * 1e-9 ? 0 : Double(String(format: "%.12g", t))!)
            t = (first + Double(out.count)) * step
        }
        return (out, step)
    }

    /// Labels with the same number of decimals, as many as the step needs ("0.5", "1.0", "1.5").
    static func labels(_ ticks: [Double], step: Double) -> [String] {
        let big = ticks.map(abs).max() ?? 0
        if big >= 1e6 || (step < 1e-4 && step > 0) { return ticks.map { LinePlot.label($0) } }
        let decimals = step > 0 ? max(0, Int((-log10(step) + 0.999).rounded(.down))) : 0
        return ticks.map { v in
            let s = String(format: "%.\(decimals)f", v)
            return s.hasPrefix("-") && Double(s) == 0 ? String(s.dropFirst()) : s
        }
    }
}
