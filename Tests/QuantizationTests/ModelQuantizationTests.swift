import TestSupport
import Foundation
import Kernels
import Models
import NN
import Quantization
import Tensors
import Testing

@Suite struct ModelQuantizationTests {
    /// ResNet-20: the 18 block convs become QConv2d; the stem conv, BN1d and linear stay FP. State names
    /// equal the reference QConv keys (parameters then buffers, in registration order).
    @Test func resnet20Transform() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 1)
        let fpKeys = model.namedTensors().map(\.name)
        let names = try quantize(model: model, scheme: EWGSScheme(), bits: 2)
        let blockConvs = ["layer1", "layer2", "layer3"].flatMap { stage in
            (0..<3).flatMap { ["\(stage).\($0).conv1", "\(stage).\($0).conv2"] }
        }
        #expect(names == blockConvs)
        #expect(quantizedLayers(in: model).count == 18)
        let r = model as! ResNetCIFAR
        #expect(r.blocks.allSatisfy { $0.block.conv1 is QConv2d && $0.block.conv2 is QConv2d })
        let keys = model.namedTensors().map(\.name)
        let block = keys.filter { $0.hasPrefix("layer1.0.conv1.") }
        let expected = ["weight", "uW", "lW", "uA", "lA", "uA_t", "lA_t", "output_scale"].map { "layer1.0.conv1." + $0 }
        let expectedBuffers = ["bkwd_scaling_factorW", "bkwd_scaling_factorA", "init"].map { "layer1.0.conv1." + $0 }
        #expect(block == expected + expectedBuffers)
        #expect(!keys.contains { $0.hasPrefix("conv1.") && $0 != "conv1.weight" })
        #expect(Set(fpKeys).isSubset(of: Set(keys)))
        #expect(keys.count == fpKeys.count + 18 * 10)
        #expect(quantizerParameters(of: model).count == 18 * 7)
        #expect(model.namedTensors().first { $0.name == "layer1.0.conv1.init" }!.isInteger)
        // A second transform is refused.
        #expect(throws: QuantizationError.self) { try quantize(model: model, scheme: EWGSScheme(), bits: 2) }
    }

    /// VGG-13: the two convs of layer0 stay FP, the 8 convs of layers 1–4 are quantized (with bias).
    @Test func vgg13Transform() throws {
        let model = try ModelZoo.make("vgg13", classes: 100, seed: 1)
        let names = try quantize(model: model, scheme: EWGSScheme(), bits: 4)
        #expect(names == (1...4).flatMap { g in (0..<2).map { "layer\(g).\($0).conv2d" } })
        let keys = model.namedTensors().map(\.name)
        #expect(keys.filter { $0.hasPrefix("layer1.0.conv2d.") }.prefix(3) ==
                ["layer1.0.conv2d.weight", "layer1.0.conv2d.bias", "layer1.0.conv2d.uW"])
        #expect(!keys.contains { $0.hasPrefix("layer0") && $0.hasSuffix(".uW") })
    }

    @Test func fpAndErrors() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 1)
        #expect(try quantize(model: model, scheme: FPScheme(), bits: 32).isEmpty)
        #expect(quantizedLayers(in: model).isEmpty)
        #expect(throws: QuantizationError.self) { try quantize(model: model, scheme: EWGSScheme(), bits: 0) }
        #expect(throws: QuantizationError.self) { try quantize(model: model, scheme: FPScheme(), bits: 4) }
        #expect(throws: QuantizationError.self) { try quantize(model: model, scheme: EWGSScheme(), bits: 2, settings: ["detla": 1]) }
        #expect(throws: QuantizationError.self) { try QuantizerRegistry.scheme(named: "qil") }
        #expect(try QuantizerRegistry.scheme(named: "ewgs").name == "ewgs")
        let e = QuantizationError.unsupportedBits(scheme: "ewgs", bits: 0, supported: 1...16)
        #expect(e.description == "quantizer 'ewgs' supports 1…16 bits, got 0")
        // delta reaches every quantizer.
        try quantize(model: model, scheme: EWGSScheme(), bits: 2, settings: ["delta": 0.25])
        for (_, l) in quantizedLayers(in: model) { #expect((l.weightQuantizer as! EWGSQuantizer).delta == 0.25) }
    }

    /// The driver: one train-mode forward; every quantizer calibrated in network order, BN statistics updated
    /// once, `init` back to 0; post-ReLU inputs give lA = 0; uW = 3·std(W) of the layer's own weight.
    @Test func calibrationDriver() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 2)
        try quantize(model: model, scheme: EWGSScheme(), bits: 2)
        let batch = randomTensor([4, 3, 8, 8], seed: 3)
        calibrateQuantizers(model: model, firstBatch: batch)
        for (name, l) in quantizedLayers(in: model) {
            let q = l as! QConv2d
            let w = q.weightQuantizer as! EWGSQuantizer, a = q.inputQuantizer as! EWGSQuantizer
            #expect(w.isCalibrated && a.isCalibrated && q.initFlag!.value[0] == 0, "\(name)")
            #expect(a.lower.value[0] == 0, "\(name): lA \(a.lower.value[0])")
            let std = q.weight.value.withUnsafeMutablePointer { w in Float(tensorStatistics(w, count: q.weight.count).std) }
            #expect(w.upper.value[0] == std * 3)
            #expect(q.outputScale!.value[0] > 0 && q.outputScale!.value[0].isFinite)
        }
        let tracked = model.namedTensors().first { $0.name == "bn1.num_batches_tracked" }!.tensor[0]
        #expect(tracked == 1)
    }

    /// Save a calibrated QAT model through safetensors, load it into a fresh quantized model (other seed,
    /// never calibrated): identical eval outputs, and loading leaves it calibrated.
    @Test func checkpointRoundTrip() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 4)
        try quantize(model: model, scheme: EWGSScheme(), bits: 2)
        calibrateQuantizers(model: model, firstBatch: randomTensor([4, 3, 8, 8], seed: 5))
        let file = SafetensorsFile(tensors: Dictionary(uniqueKeysWithValues: model.namedTensors().map { ($0.name, $0.tensor) }),
                                   integerKeys: Set(model.namedTensors().filter(\.isInteger).map(\.name)))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qat-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try file.write(to: url)
        let fresh = try ModelZoo.make("resnet20", classes: 10, seed: 99)
        try quantize(model: fresh, scheme: EWGSScheme(), bits: 2)
        try fresh.load(stateDict: try SafetensorsFile.read(url).tensors, strict: true)
        #expect(quantizedLayers(in: fresh).allSatisfy { $0.layer.weightQuantizer!.isCalibrated && $0.layer.inputQuantizer!.isCalibrated })
        let x = randomTensor([3, 3, 8, 8], seed: 6)
        #expect(model.forward(x, mode: .eval).array == fresh.forward(x, mode: .eval).array)
    }
}
