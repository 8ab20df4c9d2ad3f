import Foundation
import Kernels
import Models
import NN
import Quantization
import Tensors
import Testing

/// The Tiny-ImageNet / MQBench transform (reference §2.3.1, §8.10): every conv and linear quantized, the
/// first and the last with the same quantizer classes at 32 bits; the calibration pass runs with
/// fake-quant off (§2.3.3).
@Suite(.serialized) struct TinyImageNetStyleTests {
    init() { Threads.set(2) }

    @Test func everyConvAndLinearFirstAndLastAt32Bits() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 4)
        let names = try quantize(model: model, scheme: LSQScheme(), bits: 4, style: .tinyImageNet)
        #expect(names.count == 20)
        #expect(names.first == "conv1" && names.last == "linear")
        let layers = quantizedLayers(in: model)
        // Each block's input quantizer sits in the block, shared by conv1 and the identity (MQBench's graph).
        #expect(layers.filter { !($0.layer is QuantizedActivation) }.map(\.name) == names)
        #expect(layers.filter { $0.layer is QuantizedActivation }.count == 9)
        for (name, l) in layers {
            let expected = name == "conv1" || name == "linear" ? 32 : 4
            if !(l is QuantizedActivation) { #expect(l.weightQuantizer?.bits == expected, "\(name) weight bits") }
            if !name.hasSuffix(".conv1") { #expect(l.inputQuantizer?.bits == expected, "\(name) input bits") }
        }
        #expect(layers.last?.layer is QLinear)
        let keys = model.namedTensors().map(\.name)
        #expect(keys.contains("conv1.weight_fake_quant.scale"))
        #expect(keys.contains("linear.input_fake_quant.scale"))
        // VGG-13: 10 convs + the classifier; layer0 is quantized too in this style.
        let vgg = try ModelZoo.make("vgg13", classes: 100, seed: 4)
        let vggNames = try quantize(model: vgg, scheme: DoReFaScheme(), bits: 4, style: .tinyImageNet)
        #expect(vggNames.count == 11 && vggNames.first == "layer0.0.conv2d" && vggNames.last == "classifier")
    }

    /// EWGS has no 32-bit form: in this style its first and last layers stay FP.
    @Test func ewgsKeepsEdgesFP() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 4)
        let names = try quantize(model: model, scheme: EWGSScheme(), bits: 2, style: .tinyImageNet)
        #expect(names.count == 18 && !names.contains("conv1") && !names.contains("linear"))
    }

    /// LSQ's calibration pass returns its input unchanged (fake-quant off), so the calibration forward of a
    /// quantized model equals the FP model's train-mode forward on the same batch; afterwards the model
    /// quantizes and its outputs differ.
    @Test func calibrationPassRunsWithFakeQuantOff() throws {
        let fp = try ModelZoo.make("resnet20", classes: 10, seed: 6)
        let q = try ModelZoo.make("resnet20", classes: 10, seed: 6)
        try quantize(model: q, scheme: LSQScheme(), bits: 3, style: .tinyImageNet)
        var rng = RNG(seed: 8)
        let x = Tensor(shape: [8, 3, 16, 16])
        for i in 0..<x.count { x[i] = rng.normal() }
        let reference = fp.forward(x, mode: .train).array
        let calibration = calibrateQuantizers(model: q, firstBatch: x).array
        #expect(calibration == reference)
        let after = q.forward(x, mode: .eval).array
        #expect(after != fp.forward(x, mode: .eval).array)
        // And a training step runs end to end through the quantized stem and classifier.
        let y = q.forward(x, mode: .train)
        let dy = Tensor(shape: y.shape)
        dy.fill(0.1)
        _ = q.backward(dy)
        let stem = quantizedLayers(in: q).first!.layer
        #expect(stem.parameters().first { $0.name == "weight" }!.parameter.grad.array.contains { $0 != 0 })
    }
}
