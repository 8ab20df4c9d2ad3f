import Foundation
import TestSupport
import Testing
import Models
import NN
import Tensors
@testable import Quantization

// The released-code quirks as opt-in variants (issue 13): the unsigned activation grid
// (`quantizer_settings.unsigned_activations`), the learned-α PACT (`pact-learnable`) and truly FP first/last
// layers (`QuantizationStyle.policy(fullPrecisionEdges:)`). Hand-derived cases; goldens in QuirkGoldenTests.

@Suite("Quirk variants: unsigned grids, learned-α PACT, FP edge layers")
struct QuirkVariantTests {
    typealias K = MQBenchTestKit

    @Test("PACT unsigned: post-ReLU input → [0, 15], s = 6/15 = 0.4 at 4 bits; signed input keeps s = 0.8")
    func pactUnsigned() {
        let q = PACTQuantizer(bits: 4, unsignedActivations: true)
        _ = q.calibrationForward(K.tensor([0, 1, 7]))
        #expect(q.range == GridRange(quantMin: 0, quantMax: 15))
        #expect(q.scaleValue == Float(6) / Float(15))
        #expect(q.signed?.value[0] == 0)
        // x/s (1/0.4f = 2.5):  0.9 → 2.25 → 2 → 0.8;  3.1 → 7.75 → 8 → 3.2;  5.9 → 14.75 → 15 → 6;  7 → 17.5 → 15, dx 0.
        let r = K.run(q, K.tensor([0, 0.9, 3.1, 5.9, 7]))
        expectClose(r.y, [0, 0.8, 3.2, 6, 6], atol: 1e-6, rtol: 1e-6, "y")
        #expect(r.dx == [1, 1, 1, 1, 0])
        // The released grid would stop at qmax·s = 7·0.8 = 5.6.
        let released = PACTQuantizer(bits: 4)
        released.calibrate(K.tensor([0, 1, 7]))
        #expect(K.run(released, K.tensor([5.9])).y == [Float(7) * (Float(6) / Float(7.5))])
        #expect(released.signed == nil && !released.buffers().map(\.name).contains("signed"))

        let s = PACTQuantizer(bits: 4, unsignedActivations: true)
        _ = s.calibrationForward(K.tensor([-1, 2]))
        #expect(s.range == SignedGrid(bits: 4).range)
        #expect(s.scaleValue == Float(6) / Float(7.5))
        #expect(s.signed?.value[0] == 1)
        #expect(s.buffers().map(\.name) == ["alpha", "scale", "zero_point", "observer_enabled", "signed"])
    }

    @Test("LSQ unsigned: Q_P = 15 in s = 2·mean|x|/√Q_P and in the grad factor 1/√(N·Q_P)")
    func lsqUnsigned() {
        let q = LSQQuantizer(role: .activation, bits: 4, unsignedActivations: true)
        _ = q.calibrationForward(K.tensor([0, 1, 2, 3]))
        #expect(q.range.quantMax == 15 && q.range.quantMin == 0)
        #expect(q.scaleValue == Float(3) / Float(Double(15).squareRoot()))
        #expect(q.gradFactor(count: 4) == Float(1 / (4.0 * 15).squareRoot()))
        let s = LSQQuantizer(role: .activation, bits: 4, unsignedActivations: true)
        _ = s.calibrationForward(K.tensor([-1, 1, 2, 4]))
        #expect(s.range == SignedGrid(bits: 4).range)
        #expect(s.scaleValue == Float(4) / Float(Double(7).squareRoot()))
        // Weights never get the variant.
        #expect(LSQQuantizer(role: .weight, bits: 4, unsignedActivations: true).signed == nil)
    }

    @Test("DoReFa unsigned: Y ∈ [0, 1) on [0, 15] with s = max Y/15; signed input keeps the symmetric s")
    func dorefaUnsigned() {
        let x = K.tensor([0, 0.5, 1, 2])
        let q = DoReFaQuantizer(role: .activation, bits: 4, unsignedActivations: true)
        let y = q.calibrationForward(x).array
        let maxY = y.max()!
        #expect(q.range == GridRange(quantMin: 0, quantMax: 15))
        #expect(q.scaleValue == maxY / 15)
        let out = q.forward(x, mode: .eval).array
        for (o, v) in zip(out, y) {
            let expected = (v * (1 / q.scaleValue)).rounded(.toNearestOrEven) * q.scaleValue
            #expect(abs(o - expected) <= 1e-7, "Y \(v) → \(o), expected \(expected)")
        }
        let s = DoReFaQuantizer(role: .activation, bits: 4, unsignedActivations: true)
        let ys = s.calibrationForward(K.tensor([-2, 0.5, 1, 2])).array
        #expect(s.range == SignedGrid(bits: 4).range)
        #expect(s.scaleValue == ys.map(abs).max()! / 7.5)
    }

    @Test("unsigned_activations is a 0/1 setting of pact, lsq and dorefa; other values are errors")
    func unsignedSetting() throws {
        for name in ["pact", "lsq", "dorefa"] {
            let scheme = try QuantizerRegistry.scheme(named: name)
            #expect(scheme.settings["unsigned_activations"] == 0, "\(name)")
            let a = try scheme.makeActivationQuantizer(bits: 4, settings: ["unsigned_activations": 1])
            #expect(a!.buffers().map(\.name).contains("signed"), "\(name)")
            #expect(throws: QuantizationError.self) {
                try scheme.makeActivationQuantizer(bits: 4, settings: ["unsigned_activations": 2])
            }
        }
    }

    @Test("ResNet-20 tiny-imagenet with unsigned grids: the image and the classifier input (after BatchNorm1d) stay signed, every block input goes unsigned")
    func unsignedInModel() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 1)
        _ = try quantize(model: model, scheme: LSQScheme(), bits: 4, settings: ["unsigned_activations": 1], style: .tinyImageNet)
        calibrateQuantizers(model: model, firstBatch: K.randomTensor([2, 3, 32, 32], seed: 4))
        // Block inputs are read through the block's shared quantizer (`input_quant`); the blocks' conv1 have none.
        let layers = quantizedLayers(in: model).filter { $0.layer.inputQuantizer != nil }
        #expect(layers.count == 20)
        for (path, layer) in layers {
            let q = try #require(layer.inputQuantizer as? LSQQuantizer)
            // conv1 reads the normalised image, linear reads bn2(pool(·)) (ResNetCIFAR's BatchNorm1d): both negative.
            let expectSigned: Float = path == "conv1" || path == "linear" ? 1 : 0
            #expect(q.signed?.value[0] == expectSigned, "\(path)")
        }
    }

    @Test("fp_edge_layers: first and last layer stay Conv2d / Linear with no quantizer; the 32-bit form otherwise")
    func fullPrecisionEdges() throws {
        for scheme in [DoReFaScheme(), PACTScheme(), LSQScheme()] as [any QuantizationScheme] {
            let fp = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 1)
            let paths = try quantize(model: fp, scheme: scheme, bits: 4, style: .tinyImageNet, fullPrecisionEdges: true)
            #expect(paths.count == 18 && !paths.contains("conv1") && !paths.contains("linear"), "\(scheme.name)")
            #expect(fp.layer(at: "conv1") is Conv2d && fp.layer(at: "linear") is Linear)
            let released = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 1)
            let all = try quantize(model: released, scheme: scheme, bits: 4, style: .tinyImageNet)
            #expect(all.count == 20 && all.first == "conv1" && all.last == "linear")
            #expect((released.layer(at: "conv1") as? QConv2d)?.inputQuantizer?.bits == 32)
            // Same quantized layers in between, same bits.
            #expect(Array(all.dropFirst().dropLast()) == paths)
        }
        // cifar ignores it: its stem and classifier are FP anyway.
        let a = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 1)
        let b = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 1)
        #expect(try quantize(model: a, scheme: EWGSScheme(), bits: 2, style: .cifar, fullPrecisionEdges: true)
                == quantize(model: b, scheme: EWGSScheme(), bits: 2, style: .cifar))
    }

    @Test("learned-α PACT, 2 bits, α = 3 (s = 1): clip, round, dx = dy·[0 ≤ x < α], ∂α = Σ dy·[x ≥ α]")
    func learnablePACTHandDerived() {
        let q = LearnablePACTQuantizer(bits: 2, alpha: 3)
        //  x    -1   0   0.4  0.6  2.9  3    5
        //  y     0   0   0    1    3    3    3
        //  dx    0   1   1    1    1    0    0      (dy = 1, 2, …, 7)
        let r = K.run(q, K.tensor([-1, 0, 0.4, 0.6, 2.9, 3, 5]), dy: [1, 2, 3, 4, 5, 6, 7])
        #expect(r.y == [0, 0, 0, 1, 3, 3, 3])
        #expect(r.dx == [0, 2, 3, 4, 5, 0, 0])
        #expect(q.alpha.grad[0] == 13)
        #expect(q.parameters().map(\.name) == ["alpha"] && q.statePrefix == "input_fake_quant")
        #expect(q.modelParameters.count == 1 && q.modelParameters[0].weightDecay == 2e-4)
    }

    @Test("learned-α PACT against finite differences where its surrogate is the derivative")
    func learnablePACTFiniteDifferences() {
        // Clipped elements: y_q = α exactly, so ∂y_q/∂α = 1 = the surrogate; negative elements: 0.
        let q = LearnablePACTQuantizer(bits: 4, alpha: 2)
        let x = K.tensor([3, 2.5, 4, -1, -0.5, 5])
        let r = K.tensor([0.3, -1.2, 0.7, 2, -0.4, 1.1])
        _ = q.forward(x, mode: .train)
        _ = q.backward(r)
        let fd = K.centralDifference(q, x: x, r: r, value: q.alpha.value, index: 0, h: 1e-2)
        #expect(abs(Double(q.alpha.grad[0]) - fd) < 1e-5, "∂α \(q.alpha.grad[0]) vs FD \(fd)")
        // In range at 16 bits (step α/65535 ≈ 3e-5): the rounding is invisible to a 1e-2 difference, ∂y/∂x ≈ 1.
        let fine = LearnablePACTQuantizer(bits: 16, alpha: 2)
        let xs = K.tensor([0.31, 0.77, 1.2, 1.9])
        for i in 0..<xs.count {
            var e = [Float](repeating: 0, count: xs.count); e[i] = 1
            let fdx = K.centralDifference(fine, x: xs, r: K.tensor(e), value: xs, index: i, h: 1e-2)
            #expect(abs(fdx - 1) < 1e-2, "∂y/∂x[\(i)] FD \(fdx)")
        }
        let dx = K.run(fine, xs).dx
        #expect(dx == [1, 1, 1, 1])
    }

    @Test("pact-learnable: DoReFa weights, learned α below 32 bits, the released 32-bit PACT on the edges; α not in the quantizer group")
    func learnablePACTScheme() throws {
        let scheme = try QuantizerRegistry.scheme(named: "pact-learnable")
        #expect(scheme.settings == ["alpha": 10, "alpha_decay": 2e-4])
        #expect(try scheme.makeWeightQuantizer(bits: 4, settings: scheme.settings) is DoReFaQuantizer)
        let a = try #require(try scheme.makeActivationQuantizer(bits: 4, settings: scheme.settings) as? LearnablePACTQuantizer)
        #expect(a.alpha.value[0] == 10 && a.alphaDecay == 2e-4)
        #expect(try scheme.makeActivationQuantizer(bits: 32, settings: scheme.settings) is PACTQuantizer)
        #expect(throws: QuantizationError.self) { try scheme.makeActivationQuantizer(bits: 4, settings: ["alpha": -1, "alpha_decay": 0]) }

        let model = try ModelZoo.make("resnet20", classes: 10, inputChannels: 3, seed: 1)
        _ = try quantize(model: model, scheme: scheme, bits: 4, settings: ["alpha": 6], style: .tinyImageNet)
        let decayed = decayedQuantizerParameters(of: model)
        #expect(decayed.count == 18)
        #expect(decayed.first?.name == "layer1.0.input_quant.input_fake_quant.alpha" && decayed.allSatisfy { $0.weightDecay == 2e-4 })
        #expect(!quantizerParameters(of: model).contains { $0.name.hasSuffix(".alpha") })
    }
}
