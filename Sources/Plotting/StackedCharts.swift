/// Two charts stacked vertically in one rectangle: `top` over the first `topFraction` of the height,
/// `bottom` below it (the quantizer-curve figure: the staircase y(x) above its gradients).
public struct StackedCharts: Chart {
    public var top: any Chart
    public var bottom: any Chart
    public var topFraction: Double

    public init(top: any Chart, bottom: any Chart, topFraction: Double = 0.55) {
        self.top = top
        self.bottom = bottom
        self.topFraction = topFraction
    }

    public func draw(on canvas: inout Canvas, x: Int, y: Int, width: Int, height: Int) {
        let split = Int(Double(height) * topFraction)
        top.draw(on: &canvas, x: x, y: y, width: width, height: split)
        bottom.draw(on: &canvas, x: x, y: y + split, width: width, height: height - split)
    }
}
