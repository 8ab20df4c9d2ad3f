import Foundation
import TestSupport
import Testing
import NN
import Tensors
@testable import Quantization

// The learned-α PACT quantizer against PyTorch 1.13 autograd (Golden/quirks.safetensors, written by
// scripts/make_quirks_golden.py: where(x < α, x, α).clamp(min=0) with a straight-through rounding).
// The same file's `ewgs_hessian` case is checked by Tests/TrainingTests/EWGSDeltaTests.swift.

private let regenerate = "regenerate with `/usr/bin/python3 scripts/make_quirks_golden.py` (repository root)"

@Suite("Golden: quirk variants vs PyTorch")
struct QuirkGoldenTests {
    @Test("pact-learnable, 3 bits, α = 2.5: y, dx, ∂α")
    func learnablePACT() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Golden").appendingPathComponent("quirks.safetensors")
        let file = try SafetensorsFile.read(url)
        func t(_ k: String) throws -> Tensor { try #require(file.tensors["pact_learnable." + k], "\(k): \(regenerate)") }
        let x = try t("x"), dy = try t("dy")
        let q = LearnablePACTQuantizer(bits: 3, alpha: try t("alpha")[0])
        let y = q.forward(x, mode: .train)
        let dx = q.backward(dy)
        // y: float32 division and round as PyTorch (y/s, s = α/7): exact.
        expectClose(y.array, try t("y").array, atol: 0, rtol: 0, "y", hint: regenerate)
        expectClose(dx.array, try t("dx").array, atol: 0, rtol: 0, "dx", hint: regenerate)
        expectClose([q.alpha.grad[0]], try t("dalpha").array, atol: 1e-6, rtol: 1e-6, "dalpha", hint: regenerate)
    }
}
