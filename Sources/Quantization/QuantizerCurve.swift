import Foundation
import NN
import Tensors

/// The transfer function of one quantizer sampled on an x grid: y = Q(x), the surrogate dy/dx for an
/// upstream gradient of 1, and ∂y/∂θ for each of the quantizer's parameters θ. Each row runs the
/// quantizer's own `forward(.train)` / `backward` on a 1-element tensor, so the table shows exactly what
/// training uses (`sqakd quantizer curve`).
public struct QuantizerCurve: Sendable {
    public struct Row: Sendable, Equatable {
        public var x: Float
        public var y: Float
        public var dydx: Float
        /// In `parameterNames` order.
        public var parameterGradients: [Float]
    }

    public var scheme: String
    public var role: QuantizerRole
    public var bits: Int
    public var parameterNames: [String]
    /// Parameter and buffer values the curve was computed with.
    public var values: [(name: String, value: Float)]
    public var rows: [Row]

    /// Evaluates `quantizer` at `steps` evenly spaced x in [from, to] (both included).
    /// Precondition: steps ≥ 2 (the CLI validates).
    public static func compute(_ quantizer: Quantizer, scheme: String, from: Float, to: Float, steps: Int) -> QuantizerCurve {
        precondition(steps >= 2, "a curve needs at least 2 points")
        let params = quantizer.parameters()
        var rows: [Row] = []
        rows.reserveCapacity(steps)
        for k in 0..<steps {
            let x = from + (to - from) * Float(k) / Float(steps - 1)
            let input = Tensor(shape: [1], values: [x])
            quantizer.zeroGrad()
            let y = quantizer.forward(input, mode: .train)
            let dx = quantizer.backward(Tensor(shape: [1], values: [1]))
            rows.append(Row(x: x, y: y[0], dydx: dx[0], parameterGradients: params.map { $0.parameter.grad[0] }))
        }
        quantizer.zeroGrad()
        let values = params.map { ($0.name, $0.parameter.value[0]) } + quantizer.buffers().map { ($0.name, $0.buffer.value[0]) }
        return QuantizerCurve(scheme: scheme, role: quantizer.role, bits: quantizer.bits,
                              parameterNames: params.map(\.name), values: values, rows: rows)
    }

    /// Builds `scheme`'s quantizer for `role` at `bits` and evaluates it. `set` holds scheme settings
    /// (e.g. `delta`) and quantizer parameter / buffer values (e.g. `lA`, `uA`); the quantizer's
    /// `curveDefaults` fill the parameters not given, and an uncalibrated quantizer is calibrated on the grid.
    public static func compute(scheme: any QuantizationScheme, role: QuantizerRole, bits: Int, set: [String: Double] = [:],
                               from: Float? = nil, to: Float? = nil, steps: Int = 401) throws -> QuantizerCurve {
        try QuantizerRegistry.validate(scheme, bits: bits)
        let settings = try QuantizerRegistry.resolve(scheme, settings: set.filter { scheme.settings[$0.key] != nil })
        let made = role == .weight ? try scheme.makeWeightQuantizer(bits: bits, settings: settings)
                                   : try scheme.makeActivationQuantizer(bits: bits, settings: settings)
        guard let q = made else {
            throw QuantizationError.invalidArgument("quantizer '\(scheme.name)' has no \(role.rawValue) quantizer")
        }
        var state: [String: Tensor] = [:]
        for p in q.parameters() where p.parameter.count == 1 { state[p.name] = p.parameter.value }
        for b in q.buffers() where b.buffer.value.count == 1 { state[b.name] = b.buffer.value }
        for key in set.keys.sorted() where scheme.settings[key] == nil {
            guard state[key] != nil else {
                let valid = (scheme.settings.keys.sorted() + state.keys.sorted())
                throw QuantizationError.invalidArgument(
                    "'\(key)' is neither a setting nor a scalar parameter of the \(scheme.name) \(role.rawValue) quantizer; " +
                    "valid: \(valid.joined(separator: ", "))")
            }
        }
        let defaults = q.curveDefaults
        for (key, value) in defaults.parameters where set[key] == nil { state[key]?[0] = value }
        for (key, value) in set where scheme.settings[key] == nil { state[key]?[0] = Float(value) }
        let lo = from ?? defaults.from, hi = to ?? defaults.to
        guard lo.isFinite, hi.isFinite, lo < hi else {
            throw QuantizationError.invalidArgument("--from must be below --to (got \(lo) and \(hi))")
        }
        guard steps >= 2, steps <= 1_000_000 else {
            throw QuantizationError.invalidArgument("--steps must be in 2…1000000, got \(steps)")
        }
        if !q.isCalibrated {
            let grid = Tensor(shape: [steps], values: (0..<steps).map { lo + (hi - lo) * Float($0) / Float(steps - 1) })
            q.calibrate(grid)
        }
        return compute(q, scheme: scheme.name, from: lo, to: hi, steps: steps)
    }

    /// Column names: `x`, `y`, `dy_dx`, then `d_<parameter>` for each quantizer parameter.
    public var columns: [String] { ["x", "y", "dy_dx"] + parameterNames.map { "d_" + $0 } }

    /// CSV with a header row; values printed with 9 significant digits (float32 round-trips).
    public func csv() -> String {
        var out = columns.joined(separator: ",") + "\n"
        for r in rows {
            out += ([r.x, r.y, r.dydx] + r.parameterGradients).map { Self.format($0) }.joined(separator: ",") + "\n"
        }
        return out
    }

    /// A value as the CSV prints it: 9 significant digits, zero as "0".
    public static func format(_ v: Float) -> String {
        if v == 0 { return "0" }
        return String(format: "%.9g", Double(v))
    }
}
