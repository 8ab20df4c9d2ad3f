import NN
import Quantization
import Tensors

/// Which layers a whole-model transform quantizes.
public enum QuantizationStyle: String, Codable, Sendable, CaseIterable {
    /// CIFAR (reference §2.2.4): every conv of the residual blocks / VGG groups 1–4 (`Model.quantizableConvNames`);
    /// the stem (ResNet `conv1`, VGG's whole `layer0`) and the classifier stay FP.
    case cifar
    /// Tiny-ImageNet / MQBench (reference §2.3.1, §8.10): every conv and linear, the first and the last at
    /// "32 bits" of the same quantizer type.
    case tinyImageNet = "tiny-imagenet"
}

/// Replaces the layers `style` quantizes by quantized layers carrying `scheme`'s quantizers at `bits`
/// (settings merged over the scheme's defaults). Returns the names of the replaced layers, in forward order.
/// `fp` leaves the model untouched (the FP model is the teacher). The conv's weight and bias tensors are kept
/// (not copied), so FP weights loaded before the transform stay in place.
@discardableResult
public func quantize(model: any Model, scheme: any QuantizationScheme, bits: Int, settings: [String: Double] = [:],
                     style: QuantizationStyle = .cifar) throws -> [String] {
    try QuantizerRegistry.validate(scheme, bits: bits)
    let resolved = try QuantizerRegistry.resolve(scheme, settings: settings)
    if scheme is FPScheme { return [] }
    switch style {
    case .cifar:
        var names: [String] = []
        try model.replaceQuantizableConvs { name, layer in
            guard let conv = layer as? Conv2d else {
                throw QuantizationError.invalidArgument("\(name) is already quantized (\(type(of: layer)))")
            }
            names.append(name)
            return QConv2d(conv,
                           weightQuantizer: try scheme.makeWeightQuantizer(bits: bits, settings: resolved),
                           inputQuantizer: try scheme.makeActivationQuantizer(bits: bits, settings: resolved),
                           outputScale: scheme.usesOutputScale)
        }
        return names
    case .tinyImageNet:
        // Reference §2.3.1 / §8.10: every conv and linear; the first and the last get the same quantizer
        // classes at 32 bits (MQBench's academic backend as the authors modified it). A scheme without a
        // 32-bit form (EWGS) leaves them in full precision.
        var layers: [String] = []
        model.replaceWeightLayers { name, layer in layers.append(name); return layer }
        var names: [String] = []
        try model.replaceWeightLayers { name, layer in
            let edge = name == layers.first || name == layers.last
            if edge && !scheme.quantizesFirstAndLastLayers { return layer }
            let b = edge ? 32 : bits
            let wq = try scheme.makeWeightQuantizer(bits: b, settings: resolved)
            let aq = try scheme.makeActivationQuantizer(bits: b, settings: resolved)
            names.append(name)
            if let conv = layer as? Conv2d {
                return QConv2d(conv, weightQuantizer: wq, inputQuantizer: aq, outputScale: scheme.usesOutputScale)
            }
            if let linear = layer as? Linear {
                return QLinear(linear, weightQuantizer: wq, inputQuantizer: aq, outputScale: scheme.usesOutputScale)
            }
            throw QuantizationError.invalidArgument("\(name) is already quantized (\(type(of: layer)))")
        }
        return names
    }
}

/// The quantized layers of `model`, by state-dict prefix, in forward order.
public func quantizedLayers(in model: any Model) -> [(name: String, layer: QuantizedLayer)] {
    var list: [(name: String, layer: QuantizedLayer)] = []
    model.replaceWeightLayers { name, layer in
        if let q = layer as? QuantizedLayer { list.append((name, q)) }
        return layer
    }
    return list
}

/// The quantizer parameter group (reference §4.2 step 5: every QConv's `lW, uW, lA, uA, lA_t, uA_t,
/// output_scale`), with full state-dict names. Everything else in `model.parameters()` is the model group.
public func quantizerParameters(of model: any Model) -> [(name: String, parameter: Parameter)] {
    quantizedLayers(in: model).flatMap { prefixed($0.name, $0.layer.quantizerParameters()) }
}

/// Reference `init_quant_model` (§2.2.3): one training-mode forward of `firstBatch` (the first shuffled,
/// augmented training batch) during which every quantized layer, in network order, initialises its
/// quantizers from the input it receives — the output of the already initialised, quantized layers before
/// it. As in the reference, BatchNorm running statistics get one update from this pass; `init` buffers
/// read 1 during it and 0 afterwards. Returns the logits of that pass.
@discardableResult
public func calibrateQuantizers(model: any Model, firstBatch: Tensor) -> Tensor {
    let layers = quantizedLayers(in: model)
    for (_, layer) in layers {
        layer.calibrationPending = true
        setInitFlag(layer, 1)
    }
    let logits = model.forward(firstBatch, mode: .train)
    for (_, layer) in layers {
        layer.calibrationPending = false
        setInitFlag(layer, 0)
    }
    return logits
}

private func setInitFlag(_ layer: QuantizedLayer, _ value: Float) {
    if let q = layer as? QConv2d { q.initFlag?.value.fill(value) }
    if let q = layer as? QLinear { q.initFlag?.value.fill(value) }
}
