import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Models

// ResNet-20 (CIFAR, EWGS variant, 10 classes) in train mode against PyTorch 1.13, one batch of 4 images:
// Golden/resnet20_state.safetensors holds the PyTorch state dict (BN affine parameters and running
// statistics randomised, values rounded to bfloat16 precision), `input` [4, 3, 32, 32] and `labels` (int64);
// Golden/resnet20_result.safetensors holds `logits`, `loss` (mean cross-entropy), `grad.<parameter>` for
// every parameter and the BN running statistics after the forward. Both are written by
// scripts/make_golden.py with the model of scripts/reference_models.py.

let resnetGoldenHint = "regenerate the golden files with `/usr/bin/python3 scripts/make_golden.py` (repository root)"
let resnetMismatchHint = "If PyTorch semantics were meant to change, " + resnetGoldenHint

/// A golden file is missing or lacks a tensor; the message carries the regeneration hint.
struct ResNetGoldenError: Error, CustomStringConvertible {
    let description: String
}

func resnetGolden(_ name: String) throws -> SafetensorsFile {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden").appendingPathComponent(name + ".safetensors")
    do {
        return try SafetensorsFile.read(url)
    } catch {
        throw ResNetGoldenError(description: "cannot load golden file \(url.path): \(error); \(resnetGoldenHint)")
    }
}

extension SafetensorsFile {
    func golden(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else {
            throw ResNetGoldenError(description: "golden file has no tensor '\(key)'; \(resnetGoldenHint)")
        }
        return t
    }
}

@Suite("ResNet-20 golden")
struct ResNet20GoldenTests {
    /// Forward (train mode), mean cross-entropy, backward: logits, loss, every parameter gradient and the
    /// BN running statistics against PyTorch. Tolerances: logits and gradients atol 1e-4, rtol 1e-4 (the
    /// engine sums in a different order than PyTorch, through 19 convolutions and 20 batch norms);
    /// running statistics atol 1e-5, rtol 1e-5.
    @Test func forwardBackwardMatchPyTorch() throws {
        let before = try resnetGolden("resnet20_state")
        let after = try resnetGolden("resnet20_result")
        var rng = RNG(seed: 0)
        let model = ResNetCIFAR(blocksPerStage: 3, classes: 10, rng: &rng)

        var state = before.tensors
        let input = try before.golden("input"), labels = try before.golden("labels").array.map { Int($0) }
        state["input"] = nil
        state["labels"] = nil
        // The PyTorch state dict as is (num_batches_tracked 0-d int64): load(stateDict:) must accept it.
        try model.load(stateDict: state)

        let logits = model.forward(input, mode: .train)
        let (loss, dLogits) = CrossEntropyLoss()(logits, labels: labels)
        model.zeroGrad()
        _ = model.backward(dLogits)

        expectClose(logits, try after.golden("logits"), atol: 1e-4, rtol: 1e-4, "logits", hint: resnetMismatchHint)
        let goldenLoss = Double(try after.golden("loss").array[0])
        #expect(abs(loss - goldenLoss) <= 1e-5 + 1e-5 * abs(goldenLoss),
                "loss \(loss), golden \(goldenLoss); \(resnetGoldenHint)")
        let parameters = model.parameters()
        #expect(parameters.count == after.tensors.keys.filter { $0.hasPrefix("grad.") }.count,
                "parameter count differs from the golden gradients; \(resnetGoldenHint)")
        for (name, p) in parameters {
            expectClose(p.grad, try after.golden("grad." + name), atol: 1e-4, rtol: 1e-4, "grad.\(name)",
                        hint: resnetMismatchHint)
        }
        for (name, b) in model.buffers() {
            expectClose(b.value, try after.golden(name), atol: 1e-5, rtol: 1e-5, name, hint: resnetMismatchHint)
        }
    }
}
