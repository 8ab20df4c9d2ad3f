import Foundation
import Testing
@testable import Plotting

/// A fresh empty directory under the system temporary directory.
func makeTempDir() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("plotting-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Pixel statistics of a decoded image.
struct ImageStats {
    var colours: [Color: Int] = [:]
    /// Distinct neutral levels strictly between near-black and near-white: antialiased edges of black text.
    var greyLevels: Set<UInt8> = []
    var nonWhite = 0

    init(_ image: Canvas) {
        for y in 0..<image.height {
            for x in 0..<image.width {
                let c = image.pixel(x, y)
                colours[c, default: 0] += 1
                if c != .white { nonWhite += 1 }
                if c.r == c.g && c.g == c.b && c.r > 40 && c.r < 215 { greyLevels.insert(c.r) }
            }
        }
    }

    func count(_ c: Color) -> Int { colours[c] ?? 0 }
}

/// Rows (y) of the pixels with exactly colour `c`.
func rows(of c: Color, in image: Canvas) -> [Int] {
    var out: [Int] = []
    for y in 0..<image.height { for x in 0..<image.width where image.pixel(x, y) == c { out.append(y) } }
    return out
}

@Suite struct CanvasTests {
    /// Box filter: each output pixel is the rounded mean of its block.
    @Test func downsampleAveragesBlocks() {
        var c = Canvas(width: 4, height: 2, background: .black)
        // Block (0, 0): 255, 255, 255, 0 in red → 765 / 4 = 191.25 → 191; green stays 0.
        c.set(0, 0, Color(255, 0, 10)); c.set(1, 0, Color(255, 0, 10)); c.set(0, 1, Color(255, 0, 10))
        // Block (1, 0): blue 1, 2, 2, 2 → 7 / 4 = 1.75 → 2; red 0, 0, 0, 2 → 0.5 → 1 (half rounds up).
        c.set(2, 0, Color(0, 0, 1)); c.set(3, 0, Color(0, 0, 2)); c.set(2, 1, Color(0, 0, 2)); c.set(3, 1, Color(2, 0, 2))
        let d = c.downsampled(by: 2)
        #expect(d.width == 2 && d.height == 1)
        #expect(d.pixel(0, 0) == Color(191, 0, 8))  // blue: 10·3 / 4 = 7.5 → 8
        #expect(d.pixel(1, 0) == Color(1, 0, 2))
        #expect(c.downsampled(by: 1).pixels == c.pixels)
        // Up then down is the identity.
        #expect(d.upsampled(by: 3).downsampled(by: 3).pixels == d.pixels)
    }

    @Test func blendMixesTowardsTheColour() {
        var c = Canvas(width: 2, height: 1)
        c.blend(0, 0, .black, alpha: 0.25)
        #expect(c.pixel(0, 0) == Color(191, 191, 191))  // 255·0.75 = 191.25
        c.blend(1, 0, Color(0, 114, 178), alpha: 0.2)
        #expect(c.pixel(1, 0) == Color(204, 227, 240))  // 255 + 0.2·(c − 255) = 204, 226.8, 239.6
        c.blend(1, 0, .black, alpha: 0)
        #expect(c.pixel(1, 0) == Color(204, 227, 240))
        c.blend(1, 0, Color(1, 2, 3), alpha: 7)
        #expect(c.pixel(1, 0) == Color(1, 2, 3))
        c.blend(5, 5, .black, alpha: 0.5)  // outside: ignored
        #expect(Color.black.over(.white, alpha: 0.5) == Color(128, 128, 128))
    }

    /// Pixel-centre sampling: the square [1, 3]² covers exactly the 4 pixels whose centres it contains.
    @Test func polygonCoversPixelCentres() {
        var c = Canvas(width: 5, height: 5)
        c.fillPolygon([(1, 1), (3, 1), (3, 3), (1, 3)], .black)
        var black: [[Int]] = []
        for y in 0..<5 { for x in 0..<5 where c.pixel(x, y) == .black { black.append([x, y]) } }
        #expect(black == [[1, 1], [2, 1], [1, 2], [2, 2]])
        // Translucent fill over the same square blends once per pixel.
        var t = Canvas(width: 5, height: 5)
        t.fillPolygon([(1, 1), (3, 1), (3, 3), (1, 3)], .black, alpha: 0.5)
        #expect(t.pixel(1, 1) == Color(128, 128, 128) && t.pixel(0, 0) == .white)
    }

    /// Supersampled and downsampled, a disk's total coverage approximates its area, with partial pixels.
    @Test func supersampledCircleIsAntialiased() {
        let k = 4
        var big = Canvas(width: 20 * k, height: 20 * k)
        big.fillCircle(x: 10.3 * Double(k), y: 9.6 * Double(k), radius: 5 * Double(k), .black)
        let small = big.downsampled(by: k)
        var coverage = 0.0
        var partial = 0
        for y in 0..<20 {
            for x in 0..<20 {
                let v = Double(small.pixel(x, y).r)
                coverage += (255 - v) / 255
                if v > 0 && v < 255 { partial += 1 }
            }
        }
        #expect(abs(coverage - Double.pi * 25) < 1.5)
        #expect(partial >= 20)
    }

    /// A polyline is painted once where its segments overlap, so translucent strokes stay even.
    @Test func translucentStrokeOverlapsPaintOnce() {
        var c = Canvas(width: 20, height: 20)
        c.strokePolyline([(2, 10), (18, 10), (2, 10.2)], .black, lineWidth: 3, alpha: 0.5)
        #expect(c.pixel(10, 10) == Color(128, 128, 128))
        // Dashes cover less than the solid line, about on/(on + off) of it.
        var solid = Canvas(width: 200, height: 10), dashed = Canvas(width: 200, height: 10)
        solid.strokePolyline([(0, 5), (200, 5)], .black, lineWidth: 2)
        dashed.strokePolyline([(0, 5), (200, 5)], .black, lineWidth: 2, dash: [10, 10])
        let a = ImageStats(solid).count(.black), b = ImageStats(dashed).count(.black)
        #expect(a == 400)
        #expect(Double(b) > 0.45 * Double(a) && Double(b) < 0.65 * Double(a))
    }

    @Test func strokeTextHasItsMeasuredExtent() {
        var c = Canvas(width: 200, height: 60)
        let w = Canvas.stringWidth("Accuracy 91.2%", size: 14)
        c.drawString("Accuracy 91.2%", x: 10, y: 40, size: 14, .black, align: (0, 1))
        var xs: [Int] = [], ys: [Int] = []
        for y in 0..<60 { for x in 0..<200 where c.pixel(x, y) != .white { xs.append(x); ys.append(y) } }
        #expect(xs.min()! >= 9 && xs.max()! <= Int(10 + w) + 2)
        #expect(Double(xs.max()! - xs.min()!) > w * 0.9)
        #expect(ys.min()! >= 40 - 14 - 2 && ys.max()! <= 40 + 5)  // capitals up to 14 px above the baseline, 'y' below
        // Turned a quarter, the same text is tall and narrow.
        var r = Canvas(width: 60, height: 200)
        r.drawString("Accuracy 91.2%", x: 30, y: 100, size: 14, .black, align: (0.5, 0.5), angle: .pi / 2)
        var rx: [Int] = [], ry: [Int] = []
        for y in 0..<200 { for x in 0..<60 where r.pixel(x, y) != .white { rx.append(x); ry.append(y) } }
        #expect(ry.max()! - ry.min()! > 4 * (rx.max()! - rx.min()!))
        // Every printable ASCII character has its own glyph.
        for code in 33...126 { #expect(StrokeFont.glyphs[Character(UnicodeScalar(code)!)] != nil) }
    }
}

@Suite struct PNGTests {
    @Test func atomicWriteLeavesOnlyTheTarget() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("plot.png")
        var c = Canvas(width: 7, height: 3)
        c.set(2, 1, Color(10, 20, 30))
        try c.writePNG(to: url)
        let inode = try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int
        c.set(3, 1, .black)
        try c.writePNG(to: url)
        // Replaced by a rename (a new file), not rewritten in place.
        let inode2 = try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int
        #expect(inode != nil && inode != inode2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["plot.png"])
        let back = try Canvas.readPNG(from: url)
        #expect(back.width == 7 && back.height == 3 && back.pixels == c.pixels)
    }

    @Test func failuresThrowOneLineNamingTheFile() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("missing-dir/plot.png")
        do {
            try Canvas(width: 2, height: 2).writePNG(to: url)
            Issue.record("writing into a missing directory did not throw")
        } catch let e as PNGError {
            #expect(e.message.contains(url.path) && !e.message.contains("\n"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let junk = dir.appendingPathComponent("junk.png")
        try Data("not a png".utf8).write(to: junk)
        #expect(throws: PNGError.self) { try Canvas.readPNG(from: junk) }
    }
}

@Suite struct ChartTests {
    @Test func linePlotWithBandsAndReferenceLine() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let blue = Color.palette[0], orange = Color.palette[1], teacher = Color(90, 90, 90)
        let a = (1...10).map { (x: Double($0), y: 70 + 2 * Double($0)) }
        let b = (1...10).map { (x: Double($0), y: 68 + 2.2 * Double($0)) }
        let plot = LinePlot(title: "Test accuracy (mean ± std)", xLabel: "epoch", yLabel: "top-1 accuracy (%)",
                            series: [Series(label: "EWGS", points: a, band: a.map { ($0.x, $0.y - 1.5, $0.y + 1.5) }),
                                     Series(label: "EWGS + SQAKD", points: b, band: b.map { ($0.x, $0.y - 1, $0.y + 1) },
                                            dashed: true, marker: .square)],
                            referenceLines: [(y: 95, label: "FP teacher", color: teacher)])
        let url = dir.appendingPathComponent("line.png")
        try plot.writePNG(to: url, width: 900, height: 560)
        let image = try Canvas.readPNG(from: url)
        #expect(image.width == 900 && image.height == 560)
        let stats = ImageStats(image)
        #expect(stats.colours.count > 300)
        #expect(stats.count(blue) > 100 && stats.count(orange) > 100)
        #expect(stats.count(blue.over(.white, alpha: 0.2)) > 1000)  // the band's interior
        #expect(stats.greyLevels.count >= 30)  // antialiased text and lines
        #expect(plot.ranges().1.upperBound > 95)
        // The reference line is part of the y range: with it the data's top (y = 90) sits well below the plot's
        // top (row ≈ 77 of 300); without it, at the top margin (row ≈ 27).
        let bare = LinePlot(series: [Series(label: "", points: a)], referenceLines: [(y: 95, label: "", color: teacher)])
        #expect(rows(of: blue, in: bare.render(width: 400, height: 300)).min()! > 50)
    }

    /// The top chart fills the first `topFraction` of the height and the bottom one the rest: each panel's
    /// only series colour appears in its own band of rows and nowhere else.
    @Test func stackedChartsSplitTheCanvas() {
        let blue = Color.palette[0], orange = Color.palette[1]
        let line = (0...10).map { (x: Double($0), y: Double($0 % 3)) }
        let stacked = StackedCharts(top: LinePlot(title: "top", series: [Series(label: "a", points: line, color: blue)]),
                                    bottom: LinePlot(xLabel: "x", series: [Series(label: "b", points: line, color: orange)]),
                                    topFraction: 0.55)
        let image = stacked.render(width: 640, height: 480)
        #expect(image.width == 640 && image.height == 480)
        let split = 264
        let blueRows = rows(of: blue, in: image), orangeRows = rows(of: orange, in: image)
        #expect(!blueRows.isEmpty && !orangeRows.isEmpty)
        #expect(blueRows.max()! < split && orangeRows.min()! >= split, "blue \(blueRows.min()!)…\(blueRows.max()!), orange \(orangeRows.min()!)…")
        #expect(Canvas.textWidth("ab") == 11)
    }

    /// A single point still shows (as a marker), and a plot drawn into part of a canvas keeps the rest.
    @Test func drawIntoRegionAndSinglePoints() {
        var c = Canvas(width: 400, height: 300, background: Color(250, 240, 230))
        LinePlot(series: [Series(label: "one", points: [(1, 1)])]).draw(on: &c, x: 0, y: 150, width: 400, height: 150)
        #expect(c.pixel(200, 20) == Color(250, 240, 230))
        var found = 0
        for y in 150..<300 { for x in 0..<400 where c.pixel(x, y) == Color.palette[0] { found += 1 } }
        #expect(found > 10)
    }

    @Test func barChartWithNegativeValuesAndErrorBars() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let up = Color.palette[0], down = Color.palette[1]
        var bars: [Bar] = []
        for i in 0..<12 {
            let v = i % 3 == 1 ? -0.5 - 0.1 * Double(i) : 0.3 + 0.1 * Double(i)
            bars.append(Bar(label: "resnet20 ewgs W\(i % 4 + 1)A\(i % 4 + 1)", value: v, errorLow: v - 0.2, errorHigh: v + 0.2,
                            color: v < 0 ? down : up, annotation: String(format: "%+.2f*", v)))
        }
        let chart = BarChart(title: "SQAKD gain", xLabel: "run", yLabel: "Δ accuracy (points)", bars: bars,
                             legend: [("better", up), ("worse", down)])
        let url = dir.appendingPathComponent("bars.png")
        try chart.writePNG(to: url, width: 900, height: 560)
        let image = try Canvas.readPNG(from: url)
        #expect(image.width == 900 && image.height == 560)
        let stats = ImageStats(image)
        #expect(stats.colours.count > 100 && stats.greyLevels.count >= 25)
        #expect(stats.count(up) > 2000 && stats.count(down) > 2000)
        // Negative bars hang below the positive ones' bases.
        let upRows = rows(of: up, in: image), downRows = rows(of: down, in: image)
        let upBase = upRows.filter { $0 > 60 }.max()!  // below the legend row
        #expect(downRows.filter { $0 > 60 }.min()! >= upBase - 1)
        // A whisker: dark pixels above the first bar's top, within its column.
        var x0 = 0
        while x0 < 900 && image.pixel(x0, upBase) != up { x0 += 1 }
        var x1 = x0
        while x1 < 900 && image.pixel(x1, upBase) == up { x1 += 1 }
        let mid = (x0 + x1) / 2
        var barTop = upBase
        while image.pixel(x0 + 3, barTop - 1) == up { barTop -= 1 }
        var dark = 0
        for y in barTop - 40..<barTop - 4 {
            for x in mid - 2...mid + 2 {
                let c = image.pixel(x, y)
                if Int(c.r) + Int(c.g) + Int(c.b) < 400 { dark += 1 }
            }
        }
        #expect(dark >= 8)
    }

    /// Labels go horizontal, wrapped or turned depending on the room, and shrink only as a last resort.
    @Test func categoryLabelLayout() {
        let short = BarChart.layoutCategories(["EWGS", "PACT"], slot: 200, maxHeight: 200)
        #expect(short.angle == 0 && short.lines == [["EWGS"], ["PACT"]])
        let wrapped = BarChart.layoutCategories(["resnet20 ewgs W2A2"], slot: 70, maxHeight: 200)
        #expect(wrapped.angle == 0 && wrapped.lines[0].count >= 2 && wrapped.lines[0].joined(separator: " ") == "resnet20 ewgs W2A2")
        let turned = BarChart.layoutCategories(Array(repeating: "resnet20 ewgs W2A2 +SQAKD", count: 15), slot: 50, maxHeight: 200)
        #expect(turned.angle > 0 && turned.size == PlotStyle.tickSize && turned.lines[0] == ["resnet20 ewgs W2A2 +SQAKD"])
        let cramped = BarChart.layoutCategories(["a very long label that cannot fit anywhere at all"], slot: 20, maxHeight: 60)
        #expect(cramped.lines[0][0].hasSuffix("…") && cramped.height <= 60 + 1e-9)
    }

    @Test func ticks() {
        #expect(LinePlot.niceTicks(0...1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(LinePlot.niceTicks(-1.05...1.86) == [-1, -0.5, 0, 0.5, 1, 1.5])
        #expect(Ticks.nice(0.95...2.05, minStep: 1).ticks == [1, 2])
        #expect(Ticks.labels([0.5, 1, 1.5], step: 0.5) == ["0.5", "1.0", "1.5"])
        #expect(Ticks.labels([-0.0, 20, 40], step: 20) == ["0", "20", "40"])
    }
}
