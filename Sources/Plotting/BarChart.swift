import Foundation

/// One bar of a `BarChart`.
public struct Bar: Sendable {
    public var label: String
    public var value: Double
    /// Whisker ends in data units (e.g. value − std and value + std, or a confidence interval's bounds); nil =
    /// no whisker on that side.
    public var errorLow: Double?
    public var errorHigh: Double?
    /// nil: the first palette colour.
    public var color: Color?
    /// Short text set just beyond the bar's end (above it for values ≥ 0, below for negative ones), e.g. "+0.42*".
    public var annotation: String?

    public init(label: String, value: Double, errorLow: Double? = nil, errorHigh: Double? = nil,
                color: Color? = nil, annotation: String? = nil) {
        self.label = label
        self.value = value
        self.errorLow = errorLow
        self.errorHigh = errorHigh
        self.color = color
        self.annotation = annotation
    }
}

/// A vertical bar chart: bars grow from the (drawn) zero line, so negative values point down; optional
/// whiskers and per-bar annotations; category labels under the bars, set horizontally, wrapped onto up to
/// three lines, or turned 45° (and shrunk, then shortened with "…", as a last resort) when they do not fit;
/// nice y ticks, a title, axis labels and an optional legend row under the title. Antialiased like `LinePlot`.
public struct BarChart: Chart {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var bars: [Bar]
    /// Colour key shown under the title, e.g. [("SQAKD", blue), ("baseline", orange)]. Empty: no legend.
    public var legend: [(label: String, color: Color)]
    /// Dashed horizontal lines labelled at their right end; included in the automatic y range.
    public var referenceLines: [(y: Double, label: String, color: Color)]
    /// Fixed y range; nil = the data's range (always including 0) with room for whiskers and annotations.
    public var yRange: ClosedRange<Double>?

    public init(title: String = "", xLabel: String = "", yLabel: String = "", bars: [Bar] = [],
                legend: [(label: String, color: Color)] = [],
                referenceLines: [(y: Double, label: String, color: Color)] = [],
                yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.bars = bars
        self.legend = legend
        self.referenceLines = referenceLines
        self.yRange = yRange
    }

    /// Draws the chart into the rectangle (x, y, width, height) of `canvas`.
    public func draw(on canvas: inout Canvas, x: Int, y: Int, width: Int, height: Int) {
        PlotSurface.draw(on: &canvas, x: x, y: y, width: width, height: height, content: drawContent(on:width:height:))
    }

    /// How the category labels are set: `lines[i]` are bar i's lines, `angle` 0 or π/4, `size` the capital
    /// height, `height` the vertical space they take under the axis.
    struct CategoryLayout {
        var lines: [[String]]
        var angle: Double
        var size: Double
        var height: Double
    }

    /// Horizontal if every label fits its slot, else wrapped at spaces onto ≤ 3 lines, at the tick size and
    /// then one size smaller; else turned 45° (text ending under its bar; 90° when the slots are too narrow for
    /// 45°), shrunk down to 8 px and finally shortened with "…" so that the labels take at most `maxHeight`.
    static func layoutCategories(_ labels: [String], slot: Double, maxHeight: Double) -> CategoryLayout {
        let room = slot - 6
        for size in [PlotStyle.tickSize, PlotStyle.tickSize - 1.5] {
            if labels.allSatisfy({ PlotSurface.textWidth($0, size: size) <= room }) {
                return CategoryLayout(lines: labels.map { [$0] }, angle: 0, size: size, height: size * 1.3)
            }
            let wrapped = labels.map { wrap($0, width: room, size: size) }
            if wrapped.allSatisfy({ $0 != nil && $0!.count <= 3 }) {
                let n = Double(wrapped.map { $0!.count }.max() ?? 1)
                return CategoryLayout(lines: wrapped.map { $0! }, angle: 0, size: size,
                                      height: size * 1.3 + (n - 1) * size * 1.55)
            }
        }
        // Turned labels sit `slot`·sin(angle) apart across their lines: 45° while that leaves 1.5 line heights
        // at the tick size, else 90° with the size cut to the slot.
        let angle = slot * sin(Double.pi / 4) >= 1.5 * PlotStyle.tickSize ? Double.pi / 4 : Double.pi / 2
        var size = angle == .pi / 2 ? min(PlotStyle.tickSize, max(6, slot / 1.45)) : PlotStyle.tickSize
        func height(_ texts: [String], _ size: Double) -> Double {
            (texts.map { PlotSurface.textWidth($0, size: size) }.max() ?? 0) * sin(angle) + size * 1.6
        }
        while size > 8 && height(labels, size) > maxHeight { size -= 0.5 }
        let limit = (maxHeight - size * 1.6) / sin(angle)
        let texts = labels.map { shorten($0, width: limit, size: size) }
        return CategoryLayout(lines: texts.map { [$0] }, angle: angle, size: size, height: height(texts, size))
    }

    /// Greedy word wrap; nil when a single word is wider than `width`.
    static func wrap(_ text: String, width: Double, size: Double) -> [String]? {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ").map(String.init) {
            let candidate = current.isEmpty ? word : current + " " + word
            if PlotSurface.textWidth(candidate, size: size) <= width { current = candidate; continue }
            guard PlotSurface.textWidth(word, size: size) <= width else { return nil }
            lines.append(current)
            current = word
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }

    /// `text`, or its longest prefix plus "…" that fits `width`.
    static func shorten(_ text: String, width: Double, size: Double) -> String {
        if PlotSurface.textWidth(text, size: size) <= width { return text }
        var chars = Array(text)
        while !chars.isEmpty && PlotSurface.textWidth(String(chars) + "…", size: size) > width { chars.removeLast() }
        return String(chars) + "…"
    }

    func barColor(_ b: Bar) -> Color { b.color ?? Color.palette[0] }

    func drawContent(on s: inout PlotSurface, width W: Double, height H: Double) {
        let pad = PlotStyle.pad, T = PlotStyle.titleSize, L = PlotStyle.labelSize, F = PlotStyle.tickSize
        let tickLen = 4.0, tickGap = 4.0

        // Vertical layout: title, legend row, plot, category labels, x label.
        var top = pad + (title.isEmpty ? F / 2 : T * 2.05)
        let legendEntries = legend.map { LegendEntry(label: $0.label, color: $0.color, line: false, patch: true) }
        let legendTop = top - (title.isEmpty ? F / 2 : T * 0.4)
        if !legendEntries.isEmpty { top = legendTop + Legend.rowHeight + 8 }
        let xLabelSpace = xLabel.isEmpty ? 0 : L * 1.3 + 10
        let n = max(1, bars.count)

        // The y tick labels' width depends on the range, which depends on the plot height (annotation room),
        // which depends on the category labels; the labels depend on the slot width. Three passes settle it.
        var left = pad + (yLabel.isEmpty ? 0 : L * 1.35 + 8)
        let right = W - pad - 6
        var layout = CategoryLayout(lines: [], angle: 0, size: F, height: F)
        var yr = 0.0...1.0, ticks: (ticks: [Double], step: Double) = ([0, 1], 1), tickLabels: [String] = []
        var plotLeft = left
        for _ in 0..<3 {
            let slot = (right - plotLeft) / Double(n)
            layout = Self.layoutCategories(bars.map(\.label), slot: slot, maxHeight: (H - top) * 0.4)
            let bottom = H - pad - xLabelSpace - layout.height - tickGap
            yr = range(plotHeight: max(20, bottom - top))
            ticks = Ticks.nice(yr)
            tickLabels = Ticks.labels(ticks.ticks, step: ticks.step)
            plotLeft = left + (tickLabels.map { PlotSurface.textWidth($0, size: F) }.max() ?? 0) + tickGap + tickLen
            if layout.angle != 0 {
                // Turned labels reach left of their bar by width·cos(angle): keep the first ones on the canvas.
                for (i, lines) in layout.lines.enumerated() {
                    let reach = PlotSurface.textWidth(lines.first ?? "", size: layout.size) * cos(layout.angle)
                    plotLeft = max(plotLeft, pad + reach - (Double(i) + 0.5) * slot)
                }
            }
        }
        left = plotLeft
        let bottom = H - pad - xLabelSpace - layout.height - tickGap
        guard right - left > 20, bottom - top > 20 else { return }
        let clip = Canvas.Rect(x0: left, y0: top, x1: right, y1: bottom)
        func py(_ v: Double) -> Double { bottom - (v - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * (bottom - top) }
        let slot = (right - left) / Double(n)
        func cx(_ i: Int) -> Double { left + (Double(i) + 0.5) * slot }

        for t in ticks.ticks { let p = PlotSurface.crisp(py(t)); s.line([(left, p), (right, p)], PlotStyle.grid, width: 1) }

        let base = min(max(0, yr.lowerBound), yr.upperBound)
        let barWidth = min(slot * 0.66, 80)
        for (i, b) in bars.enumerated() where b.value.isFinite {
            let c = barColor(b)
            let y0 = py(base), y1 = py(b.value)
            let (ya, yb) = (min(y0, y1), max(y0, y1))
            s.rect(x: cx(i) - barWidth / 2, y: ya, width: barWidth, height: yb - ya, c, clip: clip)
            s.line([(cx(i) - barWidth / 2 + 0.5, ya + 0.5), (cx(i) + barWidth / 2 - 0.5, ya + 0.5),
                    (cx(i) + barWidth / 2 - 0.5, yb - 0.5), (cx(i) - barWidth / 2 + 0.5, yb - 0.5),
                    (cx(i) - barWidth / 2 + 0.5, ya + 0.5)], c.shaded(-0.3), width: 1, clip: clip)
        }
        if yr.contains(0) { let p = py(0); s.line([(left, p), (right, p)], PlotStyle.ink, width: 1.3) }
        for ref in referenceLines where ref.y.isFinite {
            let p = py(ref.y)
            s.line([(left, p), (right, p)], ref.color, width: 1.5, dash: [7, 4], clip: clip)
            if !ref.label.isEmpty {
                s.text(ref.label, x: right - 8, y: p - 5, size: F, ref.color.shaded(-0.25), align: (1, 1), halo: true)
            }
        }
        let whisker = Color(40, 40, 40), cap = min(barWidth * 0.3, 10)
        // Annotations shrink (to 7 px at least) rather than run into their neighbours.
        let widest = bars.map { PlotSurface.textWidth($0.annotation ?? "", size: F) }.max() ?? 0
        let A = widest > slot - 3 ? max(7, F * (slot - 3) / widest) : F
        for (i, b) in bars.enumerated() where b.value.isFinite {
            let lo = b.errorLow.flatMap { $0.isFinite ? $0 : nil }, hi = b.errorHigh.flatMap { $0.isFinite ? $0 : nil }
            if lo != nil || hi != nil {
                let a = py(lo ?? b.value), z = py(hi ?? b.value)
                s.line([(cx(i), a), (cx(i), z)], whisker, width: 1.4, clip: clip)
                if lo != nil { s.line([(cx(i) - cap, a), (cx(i) + cap, a)], whisker, width: 1.4, clip: clip) }
                if hi != nil { s.line([(cx(i) - cap, z), (cx(i) + cap, z)], whisker, width: 1.4, clip: clip) }
            }
            if let text = b.annotation, !text.isEmpty {
                if b.value >= 0 {
                    let end = max(b.value, hi ?? b.value, base)
                    s.text(text, x: cx(i), y: max(top + A + 2, py(end) - 6), size: A, align: (0.5, 1), halo: true)
                } else {
                    let end = min(b.value, lo ?? b.value)
                    s.text(text, x: cx(i), y: min(bottom - A - 2, py(end) + 6), size: A, align: (0.5, 0), halo: true)
                }
            }
        }

        s.frame(x0: left, y0: top, x1: right, y1: bottom, PlotStyle.frame)
        let l = PlotSurface.crisp(left)
        for (t, label) in zip(ticks.ticks, tickLabels) {
            let p = PlotSurface.crisp(py(t))
            s.line([(l - tickLen, p), (l, p)], PlotStyle.frame, width: 1)
            s.text(label, x: l - tickLen - tickGap, y: p, size: F, align: (1, 0.5))
        }
        let b = PlotSurface.crisp(bottom)
        for i in bars.indices {
            s.line([(cx(i), b), (cx(i), b + 3)], PlotStyle.frame, width: 1)
            if layout.angle == 0 {
                for (j, line) in layout.lines[i].enumerated() {
                    s.text(line, x: cx(i), y: b + tickGap + 2 + Double(j) * layout.size * 1.55, size: layout.size,
                           align: (0.5, 0))
                }
            } else if layout.angle < .pi / 2 {
                s.text(layout.lines[i].first ?? "", x: cx(i) + layout.size * 0.35, y: b + tickGap + 3, size: layout.size,
                       align: (1, 0), angle: layout.angle)
            } else {
                s.text(layout.lines[i].first ?? "", x: cx(i), y: b + tickGap + 2, size: layout.size,
                       align: (1, 0.5), angle: layout.angle)
            }
        }
        if !title.isEmpty {
            s.text(title, x: W / 2, y: pad, size: T, weight: StrokeFont.defaultWeight(size: T) + 0.35, align: (0.5, 0))
        }
        if !legendEntries.isEmpty {
            let widths = legendEntries.map { Legend.swatch + 6 + PlotSurface.textWidth($0.label, size: PlotStyle.legendSize) }
            var x = (left + right - widths.reduce(0, +) - Double(widths.count - 1) * 18) / 2
            let cy = legendTop + Legend.rowHeight / 2
            for (e, w) in zip(legendEntries, widths) {
                Legend.drawSwatch(e, on: &s, x: x, cy: cy)
                s.text(e.label, x: x + Legend.swatch + 6, y: cy, size: PlotStyle.legendSize, align: (0, 0.5))
                x += w + 18
            }
        }
        if !xLabel.isEmpty { s.text(xLabel, x: (left + right) / 2, y: H - pad, size: L, align: (0.5, 1)) }
        if !yLabel.isEmpty {
            // Beside the tick labels: capitals reach L/2 left of the anchor, descenders 0.79·L right of it.
            let tickW = tickLabels.map { PlotSurface.textWidth($0, size: F) }.max() ?? 0
            let x = max(pad + L / 2, left - tickLen - tickGap - tickW - 8 - 0.79 * L)
            s.text(yLabel, x: x, y: (top + bottom) / 2, size: L, align: (0.5, 0.5), angle: .pi / 2)
        }
    }

    /// The y range: data, whiskers, reference lines and 0, with 6% margins, widened on each side that carries
    /// annotations by their height in data units at `plotHeight` pixels.
    func range(plotHeight: Double) -> ClosedRange<Double> {
        if let yRange { return yRange }
        var lo = 0.0, hi = 0.0
        for b in bars where b.value.isFinite {
            for v in [b.value, b.errorLow ?? b.value, b.errorHigh ?? b.value] where v.isFinite {
                lo = min(lo, v); hi = max(hi, v)
            }
        }
        for r in referenceLines where r.y.isFinite { lo = min(lo, r.y); hi = max(hi, r.y) }
        if lo == hi { hi = lo + 1 }
        let span = hi - lo
        let room = (PlotStyle.tickSize + 9) / plotHeight
        let upRoom = bars.contains { $0.value >= 0 && !($0.annotation ?? "").isEmpty } ? room : 0
        let downRoom = bars.contains { $0.value < 0 && !($0.annotation ?? "").isEmpty } ? room : 0
        // Solve for the full span S: the margins are fractions of S, the data take the rest.
        let upFrac = (hi > 0 ? 0.06 : 0) + upRoom, downFrac = (lo < 0 ? 0.06 : 0) + downRoom
        let S = span / max(0.3, 1 - upFrac - downFrac)
        return (lo - downFrac * S)...(hi + upFrac * S)
    }
}
