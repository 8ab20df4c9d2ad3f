import Foundation

/// One polyline of a plot. Non-finite points break the line; a point with no finite neighbour is drawn as a
/// marker so that it stays visible.
public struct Series: Sendable {
    public var label: String
    public var points: [(x: Double, y: Double)]
    public var color: Color?
    /// A shaded range drawn under the line in the same hue (e.g. mean ± std over seeds); non-finite entries
    /// break it. Empty: none.
    public var band: [(x: Double, lower: Double, upper: Double)]
    public var dashed: Bool
    /// Drawn at every point (useful when a series has only a few).
    public var marker: Marker?

    public init(label: String, points: [(x: Double, y: Double)], color: Color? = nil,
                band: [(x: Double, lower: Double, upper: Double)] = [], dashed: Bool = false, marker: Marker? = nil) {
        self.label = label
        self.points = points
        self.color = color
        self.band = band
        self.dashed = dashed
        self.marker = marker
    }
}

/// A line chart: axes with "nice" ticks and numeric labels, a title, axis labels (the y label turned to read
/// upwards), series with optional bands, dashes and markers, labelled horizontal reference lines, and a
/// legend placed where it hides the least data (a corner or an edge centre of the plot area). Drawn into a
/// rectangle of a `Canvas` (several plots can share one canvas) or rendered to a PNG on its own; antialiased by 4×
/// supersampling (`PlotSurface`).
public struct LinePlot: Chart {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Dashed horizontal lines labelled at their right end (e.g. a teacher's accuracy); included in the
    /// automatic y range.
    public var referenceLines: [(y: Double, label: String, color: Color)]
    /// Fixed axis ranges; nil = the data's range with 5% margins.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?

    public init(title: String = "", xLabel: String = "", yLabel: String = "", series: [Series] = [],
                referenceLines: [(y: Double, label: String, color: Color)] = [],
                xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.referenceLines = referenceLines
        self.xRange = xRange
        self.yRange = yRange
    }

    /// Draws the plot into the rectangle (x, y, width, height) of `canvas`.
    public func draw(on canvas: inout Canvas, x: Int, y: Int, width: Int, height: Int) {
        PlotSurface.draw(on: &canvas, x: x, y: y, width: width, height: height, content: drawContent(on:width:height:))
    }

    func color(_ k: Int) -> Color { series[k].color ?? Color.palette[k % Color.palette.count] }

    func drawContent(on s: inout PlotSurface, width W: Double, height H: Double) {
        let pad = PlotStyle.pad, T = PlotStyle.titleSize, L = PlotStyle.labelSize, F = PlotStyle.tickSize
        let (xr, yr) = ranges()
        let integerX = series.allSatisfy { $0.points.allSatisfy { !$0.x.isFinite || $0.x == $0.x.rounded() } }
        let (xTicks, xStep) = Ticks.nice(xr, minStep: integerX ? 1 : 0)
        let (yTicks, yStep) = Ticks.nice(yr)
        let xLabels = Ticks.labels(xTicks, step: xStep), yLabels = Ticks.labels(yTicks, step: yStep)
        let tickLen = 4.0, tickGap = 4.0

        let top = pad + (title.isEmpty ? F / 2 : T * 2.05)
        var left = pad
        let yLabelX = left + L / 2
        if !yLabel.isEmpty { left += L * 1.35 + 8 }
        left += (yLabels.map { PlotSurface.textWidth($0, size: F) }.max() ?? 0) + tickGap + tickLen
        let right = W - pad - max(6, (PlotSurface.textWidth(xLabels.last ?? "", size: F) / 2) - 4)
        let bottom = H - pad - (xLabel.isEmpty ? 0 : L * 1.3 + 8) - (tickLen + tickGap + F + 2)
        guard right - left > 20, bottom - top > 20 else { return }
        let clip = Canvas.Rect(x0: left, y0: top, x1: right, y1: bottom)
        func px(_ v: Double) -> Double { left + (v - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * (bottom - top) }

        // Grid.
        for t in xTicks { let p = PlotSurface.crisp(px(t)); s.line([(p, top), (p, bottom)], PlotStyle.grid, width: 1) }
        for t in yTicks { let p = PlotSurface.crisp(py(t)); s.line([(left, p), (right, p)], PlotStyle.grid, width: 1) }
        if xr.lowerBound < 0 && xr.upperBound > 0 {
            let p = PlotSurface.crisp(px(0)); s.line([(p, top), (p, bottom)], Color(170, 170, 170), width: 1)
        }
        if yr.lowerBound < 0 && yr.upperBound > 0 {
            let p = PlotSurface.crisp(py(0)); s.line([(left, p), (right, p)], Color(170, 170, 170), width: 1)
        }

        // Bands, then reference lines, then lines and markers, so that lines stay on top.
        for k in series.indices {
            for piece in Self.finiteRuns(series[k].band.map { ($0.x, $0.lower, $0.upper) }) {
                let upper = piece.map { (px($0.0), py($0.2)) }, lower = piece.reversed().map { (px($0.0), py($0.1)) }
                s.polygon(upper + lower, color(k), alpha: 0.2, clip: clip)
            }
        }
        var referenceLabels: [Canvas.Rect] = []
        for ref in referenceLines where ref.y.isFinite {
            let p = py(ref.y)
            s.line([(left, p), (right, p)], ref.color, width: 1.5, dash: [7, 4], clip: clip)
            guard !ref.label.isEmpty else { continue }
            let w = PlotSurface.textWidth(ref.label, size: F)
            let above = p - F - 8 > top
            let ty = above ? p - 5 : p + 5 + F
            let box = Canvas.Rect(x0: right - 8 - w - 3, y0: ty - F - 3, x1: right - 5, y1: ty + 4)
            s.text(ref.label, x: right - 8, y: ty, size: F, ref.color.shaded(-0.25), align: (1, 1), halo: true)
            referenceLabels.append(box)
        }
        for k in series.indices {
            let runs = Self.finiteRuns(series[k].points.map { ($0.x, $0.y, 0) })
            for run in runs where run.count > 1 {
                s.line(run.map { (px($0.0), py($0.1)) }, color(k), width: 2, dash: series[k].dashed ? [7, 4] : nil,
                       clip: clip)
            }
            for run in runs where series[k].marker != nil || run.count == 1 {
                for p in run { s.marker(series[k].marker ?? .circle, x: px(p.0), y: py(p.1), r: 3.2, color(k), clip: clip) }
            }
        }

        // Frame, ticks, labels.
        s.frame(x0: left, y0: top, x1: right, y1: bottom, PlotStyle.frame)
        let b = PlotSurface.crisp(bottom), l = PlotSurface.crisp(left)
        for (t, label) in zip(xTicks, xLabels) {
            let p = PlotSurface.crisp(px(t))
            s.line([(p, b), (p, b + tickLen)], PlotStyle.frame, width: 1)
            s.text(label, x: p, y: b + tickLen + tickGap, size: F, align: (0.5, 0))
        }
        for (t, label) in zip(yTicks, yLabels) {
            let p = PlotSurface.crisp(py(t))
            s.line([(l - tickLen, p), (l, p)], PlotStyle.frame, width: 1)
            s.text(label, x: l - tickLen - tickGap, y: p, size: F, align: (1, 0.5))
        }
        if !title.isEmpty {
            s.text(title, x: W / 2, y: pad, size: T, weight: StrokeFont.defaultWeight(size: T) + 0.35, align: (0.5, 0))
        }
        if !xLabel.isEmpty { s.text(xLabel, x: (left + right) / 2, y: H - pad, size: L, align: (0.5, 1)) }
        if !yLabel.isEmpty {
            s.text(yLabel, x: yLabelX, y: (top + bottom) / 2, size: L, align: (0.5, 0.5), angle: .pi / 2)
        }

        // Legend in the candidate position that covers the fewest samples of lines, bands and labels.
        let entries = series.indices.filter { !series[$0].label.isEmpty }.map { k in
            LegendEntry(label: series[k].label, color: color(k), line: series[k].points.count > 1,
                        dashed: series[k].dashed, band: !series[k].band.isEmpty,
                        marker: series[k].marker ?? (series[k].points.count == 1 ? .circle : nil))
        }
        guard !entries.isEmpty else { return }
        let (lw, lh) = Legend.size(entries)
        var samples: [(x: Double, y: Double, weight: Double)] = []
        for k in series.indices {
            for run in Self.finiteRuns(series[k].points.map { ($0.x, $0.y, 0) }) {
                let pts = run.map { (px($0.0), py($0.1)) }
                samples.append((pts[0].0, pts[0].1, 1))
                for i in pts.indices.dropFirst() {
                    let n = max(1, Int(hypot(pts[i].0 - pts[i - 1].0, pts[i].1 - pts[i - 1].1) / 3))
                    for j in 1...n {
                        let t = Double(j) / Double(n)
                        samples.append((pts[i - 1].0 + t * (pts[i].0 - pts[i - 1].0), pts[i - 1].1 + t * (pts[i].1 - pts[i - 1].1), 1))
                    }
                }
            }
            for e in series[k].band where e.x.isFinite && e.lower.isFinite && e.upper.isFinite {
                let n = max(1, Int(abs(py(e.lower) - py(e.upper)) / 6))
                for j in 0...n { samples.append((px(e.x), py(e.lower) + Double(j) / Double(n) * (py(e.upper) - py(e.lower)), 0.3)) }
            }
        }
        for ref in referenceLines where ref.y.isFinite {
            for xx in stride(from: left, through: right, by: 6) { samples.append((xx, py(ref.y), 0.5)) }
        }
        let inset = 8.0
        let candidates = [(right - inset - lw, top + inset), (left + inset, top + inset),
                          (right - inset - lw, bottom - inset - lh), (left + inset, bottom - inset - lh),
                          ((left + right - lw) / 2, top + inset), ((left + right - lw) / 2, bottom - inset - lh)]
        func cost(_ c: (Double, Double)) -> Double {
            let (x0, y0, x1, y1) = (c.0 - 3, c.1 - 3, c.0 + lw + 3, c.1 + lh + 3)
            var total = 0.0
            for p in samples where p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1 { total += p.weight }
            for r in referenceLabels where r.x0 < x1 && r.x1 > x0 && r.y0 < y1 && r.y1 > y0 { total += 1000 }
            return total
        }
        var best = candidates[0], bestCost = cost(best)
        for c in candidates.dropFirst() {
            let v = cost(c)
            if v < bestCost { best = c; bestCost = v }
        }
        Legend.draw(entries, on: &s, x: best.0.rounded(), y: best.1.rounded())
    }

    /// Maximal runs of consecutive entries whose three values are all finite.
    static func finiteRuns(_ v: [(Double, Double, Double)]) -> [[(Double, Double, Double)]] {
        var out: [[(Double, Double, Double)]] = [], run: [(Double, Double, Double)] = []
        for e in v {
            if e.0.isFinite && e.1.isFinite && e.2.isFinite { run.append(e) } else if !run.isEmpty { out.append(run); run = [] }
        }
        if !run.isEmpty { out.append(run) }
        return out
    }

    func ranges() -> (ClosedRange<Double>, ClosedRange<Double>) {
        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for p in s.points where p.x.isFinite && p.y.isFinite { xs.append(p.x); ys.append(p.y) }
            for b in s.band where b.x.isFinite && b.lower.isFinite && b.upper.isFinite {
                xs.append(b.x); ys.append(b.lower); ys.append(b.upper)
            }
        }
        ys += referenceLines.map(\.y).filter(\.isFinite)
        func span(_ v: [Double]) -> ClosedRange<Double> {
            guard var lo = v.min(), var hi = v.max() else { return 0...1 }
            if lo == hi { lo -= 0.5; hi += 0.5 }
            let m = (hi - lo) * 0.05
            return (lo - m)...(hi + m)
        }
        return (xRange ?? span(xs), yRange ?? span(ys))
    }

    /// Ticks at multiples of 1, 2 or 5 × 10^k, about 5 of them, inside `r`.
    public static func niceTicks(_ r: ClosedRange<Double>) -> [Double] { Ticks.nice(r).ticks }

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
