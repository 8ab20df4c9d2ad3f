import Foundation

/// A chart that draws itself into a rectangle of a `Canvas` (several charts can share one canvas); rendering
/// on a canvas of its own and writing a PNG come with it.
public protocol Chart: Sendable {
    /// Draws the chart into the rectangle (x, y, width, height) of `canvas`.
    func draw(on canvas: inout Canvas, x: Int, y: Int, width: Int, height: Int)
}

extension Chart {
    /// Renders alone on a `width`×`height` canvas.
    public func render(width: Int = 900, height: Int = 560) -> Canvas {
        var canvas = Canvas(width: width, height: height)
        draw(on: &canvas, x: 0, y: 0, width: width, height: height)
        return canvas
    }

    /// Writes `render(width:height:)` atomically (`Canvas.writePNG(to:)`).
    public func writePNG(to url: URL, width: Int = 900, height: Int = 560) throws {
        try render(width: width, height: height).writePNG(to: url)
    }
}
