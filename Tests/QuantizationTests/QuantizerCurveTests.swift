import Foundation
import Quantization
import Testing

@Suite struct QuantizerCurveTests {
    /// Columns are x, y, dy_dx and one d_<name> per parameter; values from the quantizer's own backward.
    /// EWGS activation, 2 bits, defaults lA = 0, uA = 1, x ∈ [−0.5, 1.5] in 9 steps (0.25 apart):
    /// x = 0.25 → 0.75 → 1 → y = 1/3, dy/dx = 1, d_uA = −n = −0.25, d_lA = n − 1 = −0.75.
    @Test func ewgsCurveColumnsAndValues() throws {
        let curve = try QuantizerCurve.compute(scheme: EWGSScheme(), role: .activation, bits: 2, steps: 9)
        #expect(curve.columns == ["x", "y", "dy_dx", "d_uA", "d_lA", "d_uA_t", "d_lA_t"])
        let r = curve.rows[3]
        #expect(r.x == 0.25 && abs(r.y - 1.0 / 3) < 1e-7 && r.dydx == 1 && r.parameterGradients == [-0.25, -0.75, 0, 0])
        #expect(curve.rows[0].dydx == 0 && curve.rows[8].y == 1)
        let lines = curve.csv().split(separator: "\n")
        #expect(lines.count == 10 && lines[0] == "x,y,dy_dx,d_uA,d_lA,d_uA_t,d_lA_t")
        #expect(lines[4] == "0.25,0.333333343,1,-0.25,-0.75,0,0")

        let w = try QuantizerCurve.compute(scheme: EWGSScheme(), role: .weight, bits: 1, set: ["lW": -2, "uW": 2, "delta": 0.5],
                                           from: -3, to: 3, steps: 7)
        #expect(w.columns == ["x", "y", "dy_dx", "d_uW", "d_lW"])
        #expect(w.rows.map(\.y) == [-1, -1, -1, -1, 1, 1, 1])
        let fp = try QuantizerCurve.compute(scheme: FPScheme(), role: .weight, bits: 32, steps: 5)
        #expect(fp.columns == ["x", "y", "dy_dx"] && fp.rows.allSatisfy { $0.y == $0.x && $0.dydx == 1 })
    }

    @Test func curveErrors() {
        #expect(throws: QuantizationError.self) { try QuantizerCurve.compute(scheme: EWGSScheme(), role: .weight, bits: 17) }
        #expect(throws: QuantizationError.self) { try QuantizerCurve.compute(scheme: EWGSScheme(), role: .weight, bits: 2, set: ["lA": 0]) }
        #expect(throws: QuantizationError.self) { try QuantizerCurve.compute(scheme: EWGSScheme(), role: .weight, bits: 2, from: 1, to: 0) }
        #expect(throws: QuantizationError.self) { try QuantizerCurve.compute(scheme: EWGSScheme(), role: .weight, bits: 2, steps: 1) }
    }
}
