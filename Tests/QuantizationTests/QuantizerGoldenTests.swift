import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Quantization

// The four quantizers against PyTorch 1.13 (CPU, float32): Golden/quantizers.safetensors, written by
// scripts/make_quantizer_golden.py (keys `<case>.<tensor>`; the file's docstring lists them). Each case
// calibrates on `calib`, then runs one training forward on `x` and a backward with `dy`.
//
// Tolerances:
// * The integer fake-quant, its mask, MinMax scales and PACT's clip are the same float32 operations as
//   PyTorch's: exact equality (y, dx, calibrated s, calibration outputs).
// * LSQ's calibrated s: PyTorch's float32 mean uses a cascade sum, ours a double sum: rtol 1e-6. The forward
//   and backward then run from PyTorch's s (loaded): y and dx exact; ∂s and ∂z are sums in another order:
//   atol 1e-6, rtol 1e-5.
// * DoReFa: tanh is glibc's here and SLEEF's (vectorised) in PyTorch, which differ by an ulp now and then:
//   Y and s to rtol 2e-6; y to 1e-6 absolute except that an element sitting on a rounding tie (|Y/s − k − 0.5|
//   < 1e-4) may land one step s away; dx rtol 1e-4 (atol 1e-5) — the divisor's gradient is a sum.
// * EWGS: y exact up to 1 float ulp-level (atol 1e-6); l, u from std / min to rtol 1e-6; gradients rtol 1e-5.

private let regenerate = "regenerate with `/usr/bin/python3 scripts/make_quantizer_golden.py` (repository root)"

private struct QuantizerGolden {
    let file: SafetensorsFile

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Golden").appendingPathComponent("quantizers.safetensors")
        do { file = try SafetensorsFile.read(url) } catch {
            throw GoldenFailure(description: "cannot load \(url.path): \(error); \(regenerate)")
        }
    }

    func tensor(_ key: String) throws -> Tensor {
        guard let t = file.tensors[key] else { throw GoldenFailure(description: "no tensor '\(key)'; \(regenerate)") }
        return t
    }

    func value(_ key: String) throws -> Float { try tensor(key)[0] }
}

private struct GoldenFailure: Error, CustomStringConvertible { let description: String }

/// |a − e| ≤ atol + rtol·|e| elementwise; one issue naming the worst element.
private func expectExact(_ actual: [Float], _ expected: [Float], _ what: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(actual, expected, atol: 0, rtol: 0, what, hint: regenerate, sourceLocation: sourceLocation)
}

@Suite("Golden: quantizers vs PyTorch")
struct QuantizerGoldenTests {
    static let pactCases: [(String, Int)] = [("pact_b3", 3), ("pact_b4", 4), ("pact_b8", 8), ("pact_b32", 32), ("pact_b4_signed", 4)]
    static let lsqCases: [(String, Int)] = [("lsq_b3", 3), ("lsq_b4", 4), ("lsq_b8", 8), ("lsq_b32", 32), ("lsq_b4_negative_scale", 4)]
    static let doReFaCases: [(String, Int)] = [("dorefa_b3", 3), ("dorefa_b4", 4), ("dorefa_b8", 8), ("dorefa_b32", 32),
                                               ("dorefa_b4_saturated", 4)]

    @Test("PACT: calibration (s, clipped output), y and dx exact", arguments: pactCases)
    func pact(_ name: String, _ bits: Int) throws {
        let g = try QuantizerGolden()
        let q = PACTQuantizer(bits: bits)
        let calibOut = q.calibrationForward(try g.tensor("\(name).calib"))
        expectExact(calibOut.array, try g.tensor("\(name).calib_out").array, "\(name) calib_out")
        expectExact([q.scaleValue], [try g.value("\(name).scale")], "\(name) scale")
        let y = q.forward(try g.tensor("\(name).x"), mode: .train)
        expectExact(y.array, try g.tensor("\(name).y").array, "\(name) y")
        let dx = q.backward(try g.tensor("\(name).dy"))
        expectExact(dx.array, try g.tensor("\(name).dx").array, "\(name) dx")
    }

    @Test("LSQ: calibration s (rtol 1e-6); y, dx exact from PyTorch's s; ∂s, ∂z", arguments: lsqCases)
    func lsq(_ name: String, _ bits: Int) throws {
        let g = try QuantizerGolden()
        let q = LSQQuantizer(role: .activation, bits: bits)
        q.calibrate(try g.tensor("\(name).calib"))
        expectClose([q.scaleValue], [try g.value("\(name).calib_scale")], atol: 0, rtol: 1e-6, "\(name) calibrated scale",
                    hint: regenerate)
        // Continue from PyTorch's s (its sign flipped in the negative-scale case: the forward takes |s|).
        let s = try g.value("\(name).calib_scale")
        q.scale.value[0] = name.hasSuffix("negative_scale") ? -s : s
        let y = q.forward(try g.tensor("\(name).x"), mode: .train)
        expectExact([q.scaleValue], [try g.value("\(name).scale")], "\(name) scale after |s|, eps")
        expectExact(y.array, try g.tensor("\(name).y").array, "\(name) y")
        let dx = q.backward(try g.tensor("\(name).dy"))
        expectExact(dx.array, try g.tensor("\(name).dx").array, "\(name) dx")
        expectClose(q.scale.grad.array, try g.tensor("\(name).dscale").array, atol: 1e-6, rtol: 1e-5, "\(name) dscale",
                    hint: regenerate)
        expectClose(q.zeroPoint.grad.array, try g.tensor("\(name).dzero_point").array, atol: 1e-6, rtol: 1e-5,
                    "\(name) dzero_point", hint: regenerate)
    }

    @Test("DoReFa: normalisation, calibration, y, dx", arguments: doReFaCases)
    func doReFa(_ name: String, _ bits: Int) throws {
        let g = try QuantizerGolden()
        let q = DoReFaQuantizer(role: .activation, bits: bits)
        let calibOut = q.calibrationForward(try g.tensor("\(name).calib"))
        expectClose(calibOut.array, try g.tensor("\(name).calib_out").array, atol: 0, rtol: 2e-6, "\(name) calib_out",
                    hint: regenerate)
        expectClose([q.scaleValue], [try g.value("\(name).scale")], atol: 0, rtol: 2e-6, "\(name) scale", hint: regenerate)
        let s = try g.value("\(name).scale")
        q.scale.value[0] = s
        let x = try g.tensor("\(name).x")
        let normalised = DoReFaQuantizer(role: .activation, bits: bits).calibrationForward(x)
        let yN = try g.tensor("\(name).normalised").array
        expectClose(normalised.array, yN, atol: 0, rtol: 2e-6, "\(name) normalised", hint: regenerate)
        let y = q.forward(x, mode: .train).array
        let yG = try g.tensor("\(name).y").array
        let inv = 1 / s
        var offTie = [Float](), offTieGolden = [Float]()
        for i in 0..<y.count {
            let v = yN[i] * inv
            let nearTie = abs(v - v.rounded(.down) - 0.5) < 1e-4
            if nearTie {
                #expect(abs(y[i] - yG[i]) <= s * 1.0001 + 1e-6, "\(name) y[\(i)] on a tie: \(y[i]) vs \(yG[i])")
            } else {
                offTie.append(y[i]); offTieGolden.append(yG[i])
            }
        }
        expectClose(offTie, offTieGolden, atol: 1e-6, rtol: 0, "\(name) y (off ties)", hint: regenerate)
        let dx = q.backward(try g.tensor("\(name).dy"))
        expectClose(dx.array, try g.tensor("\(name).dx").array, atol: 1e-5, rtol: 1e-4, "\(name) dx", hint: regenerate)
    }

    static let ewgsCases: [(String, QuantizerRole, Int, Float)] = [
        ("ewgs_weight_b1", .weight, 1, 0), ("ewgs_weight_b2", .weight, 2, 0), ("ewgs_weight_b4", .weight, 4, 0),
        ("ewgs_weight_b2_delta", .weight, 2, 0.3),
        ("ewgs_activation_b1", .activation, 1, 0), ("ewgs_activation_b2", .activation, 2, 0),
        ("ewgs_activation_b4", .activation, 4, 0), ("ewgs_activation_b2_delta", .activation, 2, 0.3),
    ]

    @Test("EWGS: initialisation, y, dx, ∂l, ∂u (δ = 0 and 0.3)", arguments: ewgsCases)
    func ewgs(_ name: String, _ role: QuantizerRole, _ bits: Int, _ delta: Float) throws {
        let g = try QuantizerGolden()
        let q = EWGSQuantizer(role: role, bits: bits, delta: delta)
        q.calibrate(try g.tensor("\(name).calib"))
        expectClose(q.lower.value.array, try g.tensor("\(name).l").array, atol: 1e-7, rtol: 1e-6, "\(name) l",
                    hint: regenerate)
        expectClose(q.upper.value.array, try g.tensor("\(name).u").array, atol: 1e-7, rtol: 1e-6, "\(name) u",
                    hint: regenerate)
        // Continue from PyTorch's interval.
        q.lower.value[0] = try g.value("\(name).l")
        q.upper.value[0] = try g.value("\(name).u")
        let y = q.forward(try g.tensor("\(name).x"), mode: .train)
        expectClose(y.array, try g.tensor("\(name).y").array, atol: 1e-6, rtol: 0, "\(name) y", hint: regenerate)
        let dx = q.backward(try g.tensor("\(name).dy"))
        expectClose(dx.array, try g.tensor("\(name).dx").array, atol: 1e-5, rtol: 1e-5, "\(name) dx", hint: regenerate)
        expectClose(q.lower.grad.array, try g.tensor("\(name).dl").array, atol: 1e-5, rtol: 1e-5, "\(name) dl",
                    hint: regenerate)
        expectClose(q.upper.grad.array, try g.tensor("\(name).du").array, atol: 1e-5, rtol: 1e-5, "\(name) du",
                    hint: regenerate)
    }
}
