import Plotting
import Quantization

extension QuantizerCurve {
    /// Two stacked panels: the staircase y(x) on top; the surrogate dy/dx and the parameter gradients below.
    /// The x-axis label of the top panel lists the quantizer's parameter and buffer values.
    var plot: StackedCharts {
        let setting = values.map { "\($0.name)=\(QuantizerCurve.format($0.value))" }.joined(separator: " ")
        let top = LinePlot(title: "\(scheme) \(role.rawValue) quantizer, \(bits) bits",
                           xLabel: setting, yLabel: "y",
                           series: [Series(label: "y = Q(x)", points: rows.map { (Double($0.x), Double($0.y)) })])
        var grads = [Series(label: "dy/dx", points: rows.map { (Double($0.x), Double($0.dydx)) })]
        for (k, name) in parameterNames.enumerated() {
            grads.append(Series(label: "dy/d" + name, points: rows.map { (Double($0.x), Double($0.parameterGradients[k])) }))
        }
        return StackedCharts(top: top, bottom: LinePlot(xLabel: "x", yLabel: "grad", series: grads), topFraction: 0.55)
    }
}
