import Foundation

/// One polyline of a plot. Non-finite points break the line.
public struct Series: Sendable {
    public var label: String
    public var points: [(x: Double, y: Double)]
    public var color: Color?
    public init(label: String, points: [(x: Double, y: Double)], color: Color? = nil) {
        self.label = label
        self.points = points
        self.color = color
    }
}

/// A line chart: axes with "nice" ticks and numeric labels, a title, axis labels and a legend, drawn into a
/// rectangle of a `Canvas` (several plots can share one canvas) or rendered to a PNG on its own.
public struct LinePlot: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Fixed axis ranges; nil = the data's range with 5% margins.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?

    public init(title: String = "", xLabel: String = "", yLabel: String = "", series: [Series] = [],
                xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.xRange = xRange
        self.yRange = yRange
    }

    /// Renders alone on a `width`×`height` canvas.
    public func render(width: Int = 800, height: Int = 500) -> Canvas {
        var canvas = Canvas(width: width, height: height)
        draw(on: &canvas, x: 0, y: 0, width: width, height: height)
        return canvas
    }

    public func writePNG(to url: URL, width: Int = 800, height: Int = 500) throws {
        try render(width: width, height: height).writePNG(to: url)
    }

    /// Draws the plot into the rectangle (x, y, width, height) of `canvas`.
    public func draw(on canvas: inout Canvas, x: Int, y: Int, width: Int, height: Int) {
        let th = Canvas.textHeight()
        let (xr, yr) = ranges()
        let xTicks = Self.niceTicks(xr), yTicks = Self.niceTicks(yr)
        let yTickWidth = yTicks.map { Canvas.textWidth(Self.label($0)) }.max() ?? 0
        let left = x + 12 + yTickWidth + (yLabel.isEmpty ? 0 : th + 8)
        let top = y + 10 + (title.isEmpty ? 0 : 2 * th + 8)
        let right = x + width - 16
        let bottom = y + height - 14 - th - (xLabel.isEmpty ? 0 : th + 8)
        guard right - left > 10, bottom - top > 10 else { return }
        func px(_ v: Double) -> Int { left + Int(((v - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * Double(right - left)).rounded()) }
        func py(_ v: Double) -> Int { bottom - Int(((v - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * Double(bottom - top)).rounded()) }

        if !title.isEmpty {
            canvas.drawText(title, x: x + (width - Canvas.textWidth(title, scale: 2)) / 2, y: y + 8, .black, scale: 2)
        }
        // Grid, ticks and tick labels.
        for t in xTicks {
            let p = px(t)
            canvas.drawLine(p, top, p, bottom, .lightGray)
            canvas.drawLine(p, bottom, p, bottom + 4, .black)
            let s = Self.label(t)
            canvas.drawText(s, x: p - Canvas.textWidth(s) / 2, y: bottom + 7, .black)
        }
        for t in yTicks {
            let p = py(t)
            canvas.drawLine(left, p, right, p, .lightGray)
            canvas.drawLine(left - 4, p, left, p, .black)
            let s = Self.label(t)
            canvas.drawText(s, x: left - 7 - Canvas.textWidth(s), y: p - th / 2, .black)
        }
        if xr.contains(0) { canvas.drawLine(px(0), top, px(0), bottom, .gray) }
        if yr.contains(0) { canvas.drawLine(left, py(0), right, py(0), .gray) }
        canvas.drawLine(left, top, left, bottom, .black)
        canvas.drawLine(left, bottom, right, bottom, .black)
        if !xLabel.isEmpty {
            canvas.drawText(xLabel, x: (left + right - Canvas.textWidth(xLabel)) / 2, y: bottom + 10 + th + 6, .black)
        }
        if !yLabel.isEmpty {
            // Vertical text: one character per line.
            let chars = Array(yLabel)
            let y0 = (top + bottom) / 2 - chars.count * (th + 2) / 2
            for (i, ch) in chars.enumerated() { canvas.drawText(String(ch), x: x + 6, y: y0 + i * (th + 2), .black) }
        }
        // Series, clipped to the plot area.
        for (k, s) in series.enumerated() {
            let color = s.color ?? Color.palette[k % Color.palette.count]
            var last: (Int, Int)?
            for p in s.points {
                guard p.x.isFinite, p.y.isFinite else { last = nil; continue }
                let q = (px(p.x), min(max(py(p.y), top - 2), bottom + 2))
                if let l = last { canvas.drawLine(l.0, l.1, q.0, q.1, color, thickness: 2) } else { canvas.set(q.0, q.1, color) }
                last = q
            }
        }
        // Legend, top-right inside the plot area.
        let labelled = series.enumerated().filter { !$0.element.label.isEmpty }
        if !labelled.isEmpty {
            let w = (labelled.map { Canvas.textWidth($0.element.label) }.max() ?? 0) + 34
            let h = labelled.count * (th + 6) + 6
            let lx = right - w - 6, ly = top + 6
            canvas.fillRect(x: lx, y: ly, width: w, height: h, .white)
            canvas.drawLine(lx, ly, lx + w, ly, .gray); canvas.drawLine(lx, ly + h, lx + w, ly + h, .gray)
            canvas.drawLine(lx, ly, lx, ly + h, .gray); canvas.drawLine(lx + w, ly, lx + w, ly + h, .gray)
            for (row, (k, s)) in labelled.enumerated() {
                let color = s.color ?? Color.palette[k % Color.palette.count]
                let yy = ly + 6 + row * (th + 6)
                canvas.drawLine(lx + 6, yy + th / 2, lx + 24, yy + th / 2, color, thickness: 2)
                canvas.drawText(s.label, x: lx + 30, y: yy, .black)
            }
        }
    }

    func ranges() -> (ClosedRange<Double>, ClosedRange<Double>) {
        let pts = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        func span(_ v: [Double]) -> ClosedRange<Double> {
            guard var lo = v.min(), var hi = v.max() else { return 0...1 }
            if lo == hi { lo -= 0.5; hi += 0.5 }
            let m = (hi - lo) * 0.05
            return (lo - m)...(hi + m)
        }
        return (xRange ?? span(pts.map(\.x)), yRange ?? span(pts.map(\.y)))
    }

    /// Ticks at multiples of 1, 2 or 5 × 10^k, about 5 of them, inside `r`.
    public static func niceTicks(_ r: ClosedRange<Double>) -> [Double] {
        let span = r.upperBound - r.lowerBound
        guard span > 0, span.isFinite else { return [r.lowerBound] }
        let raw = span / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = (r.lowerBound / step).rounded(.up) * step
        var out: [Double] = []
        while t <= r.upperBound + step * 1e-9 && out.count < 50 {
            out.append(abs(t) < step * 1e-9 ? 0 : Double(String(format: "%.12g", t))!)
            t += step
        }
        return out
    }

    /// Up to 4 significant digits, no trailing zeros.
    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        var s = String(format: "%.4g", v)
        if s.contains("."), !s.contains("e") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }
}
