import NN
import Quantization
import Tensors

/// What a quantization policy does with one convolution or linear layer.
public enum LayerPrecision: Sendable, Equatable {
    /// Left in full precision.
    case full
    /// Quantized at the requested bit-width.
    case quantized
    /// The "32-bit" form of the same quantizer (MQBench's first and last layers, reference §2.3.1, §8.10);
    /// full precision when the scheme has none (`QuantizationScheme.quantizesFirstAndLastLayers` false).
    case edge
}

/// Which layers a whole-model transform quantizes: decides, per path, for every convolution and linear
/// layer of the model (`Conv2d`, `Linear`, in tree order).
public struct QuantizationPolicy: Sendable {
    /// What the policy sees beside the layer: the model's stem paths and the paths of all its convolution
    /// and linear layers in tree order (forward order for the zoo models).
    public struct Context: Sendable {
        public let stemPaths: [String]
        public let weightLayerPaths: [String]
        /// `Model.graphOutputLayerPaths`: MQBench's "last" layers.
        public let graphOutputLayerPaths: [String]

        /// Whether `path` is `prefix` or lies below it.
        public func path(_ path: String, isUnder prefix: String) -> Bool {
            path == prefix || path.hasPrefix(prefix + ".")
        }

        /// MQBench's first layer (the first weight layer, which reads the image) or one of its last.
        public func isEdge(_ path: String) -> Bool {
            path == weightLayerPaths.first || graphOutputLayerPaths.contains(path)
        }
    }

    public let decide: @Sendable (_ path: String, _ layer: Layer, _ context: Context) -> LayerPrecision

    public init(decide: @escaping @Sendable (_ path: String, _ layer: Layer, _ context: Context) -> LayerPrecision) {
        self.decide = decide
    }

    /// CIFAR (reference §2.2.4): every convolution outside the stem (the convs of the residual blocks /
    /// VGG groups 1–4); the stem (ResNet `conv1`, VGG's whole `layer0`) and the classifier stay FP.
    public static let cifar = QuantizationPolicy { path, layer, context in
        guard layer is Conv2d else { return .full }
        return context.stemPaths.contains { context.path(path, isUnder: $0) } ? .full : .quantized
    }

    /// Tiny-ImageNet / MQBench (reference §2.3.1, §8.10): every convolution and linear layer, the first
    /// (the one reading the image) and the last (`graphOutputLayerPaths`: none in SqueezeNet, whose
    /// classifier conv is therefore quantized at the low bit-width, §8 item 14) at "32 bits" of the same quantizer type.
    public static let tinyImageNet = QuantizationPolicy { path, _, context in
        context.isEdge(path) ? .edge : .quantized
    }

    /// `tinyImageNet` with the first and last layer truly in full precision (`fp_edge_layers`): no weight
    /// or input quantizer there at all, instead of the "32-bit" form of the same quantizer (which still
    /// clamps and rounds, and under DoReFa applies tanh to the input image, reference §8.10).
    public static let tinyImageNetFullPrecisionEdges = QuantizationPolicy { path, _, context in
        context.isEdge(path) ? .full : .quantized
    }
}

/// The two policies of the paper's recipes, by the name configs use.
public enum QuantizationStyle: String, Codable, Sendable, CaseIterable {
    /// `QuantizationPolicy.cifar`.
    case cifar
    /// `QuantizationPolicy.tinyImageNet`.
    case tinyImageNet = "tiny-imagenet"

    public var policy: QuantizationPolicy {
        switch self {
        case .cifar: return .cifar
        case .tinyImageNet: return .tinyImageNet
        }
    }

    /// The policy, with `tiny-imagenet`'s first and last layer in full precision when `fullPrecisionEdges`
    /// (`cifar` keeps its stem and classifier in full precision anyway).
    public func policy(fullPrecisionEdges: Bool) -> QuantizationPolicy {
        fullPrecisionEdges && self == .tinyImageNet ? .tinyImageNetFullPrecisionEdges : policy
    }
}

/// Replaces the layers `policy` picks by quantized layers carrying `scheme`'s quantizers at `bits` (at 32
/// bits for `.edge` layers; settings merged over the scheme's defaults). Returns the paths of the replaced
/// layers, in tree order. `fp` leaves the model untouched (the FP model is the teacher). The layer's weight
/// and bias tensors are kept (not copied), so FP weights loaded before the transform stay in place.
/// Throws, before changing anything, when the policy picks a layer that is already quantized.
@discardableResult
public func quantize(model: any Model, scheme: any QuantizationScheme, bits: Int, settings: [String: Double] = [:],
                     policy: QuantizationPolicy, sharedActivations: Bool = false) throws -> [String] {
    try QuantizerRegistry.validate(scheme, bits: bits)
    let resolved = try QuantizerRegistry.resolve(scheme, settings: settings)
    if scheme is FPScheme { return [] }
    var candidates: [(path: String, layer: Layer)] = []
    model.walk { path, layer in
        if layer is Conv2d || layer is Linear || layer is QuantizedLayer {
            candidates.append((path, layer))
            return false
        }
        return true
    }
    let context = QuantizationPolicy.Context(stemPaths: model.stemPaths, weightLayerPaths: candidates.map(\.path),
                                             graphOutputLayerPaths: model.graphOutputLayerPaths)
    var picked: [String: Int] = [:]
    var order: [String] = []
    for (path, layer) in candidates {
        let inner: Layer = (layer as? QConv2d)?.conv ?? (layer as? QLinear)?.linear ?? layer
        let precision = policy.decide(path, inner, context)
        if precision == .full || precision == .edge && !scheme.quantizesFirstAndLastLayers { continue }
        if layer is QuantizedLayer {
            throw QuantizationError.invalidArgument("\(path) is already quantized (\(type(of: layer)))")
        }
        picked[path] = precision == .edge ? 32 : bits
        order.append(path)
    }
    try model.replaceLayers { path, layer in
        guard let b = picked[path], layer is Conv2d || layer is Linear else { return nil }
        let wq = try scheme.makeWeightQuantizer(bits: b, settings: resolved)
        let aq = try scheme.makeActivationQuantizer(bits: b, settings: resolved)
        if let conv = layer as? Conv2d {
            return QConv2d(conv, weightQuantizer: wq, inputQuantizer: aq, outputScale: scheme.usesOutputScale)
        }
        return QLinear(layer as! Linear, weightQuantizer: wq, inputQuantizer: aq, outputScale: scheme.usesOutputScale)
    }
    // EWGS calibrates its output scale from the conv's own unquantized input (§2.2.3): it keeps one quantizer per layer.
    if sharedActivations && !scheme.usesOutputScale { try shareActivationQuantizers(in: model) }
    return order
}

/// `quantize(model:scheme:bits:settings:policy:sharedActivations:)` with `style`'s policy (`fullPrecisionEdges`:
/// see `QuantizationStyle.policy(fullPrecisionEdges:)`). Style `tiny-imagenet` places activation quantizers as
/// MQBench's graph does (`shareActivationQuantizers`) unless `perLayerActivations`.
@discardableResult
public func quantize(model: any Model, scheme: any QuantizationScheme, bits: Int, settings: [String: Double] = [:],
                     style: QuantizationStyle = .cifar, fullPrecisionEdges: Bool = false,
                     perLayerActivations: Bool = false) throws -> [String] {
    try quantize(model: model, scheme: scheme, bits: bits, settings: settings,
                 policy: style.policy(fullPrecisionEdges: fullPrecisionEdges),
                 sharedActivations: style == .tinyImageNet && !perLayerActivations)
}

/// The quantized layers of `model`, by path, in tree order.
public func quantizedLayers(in model: any Model) -> [(name: String, layer: QuantizedLayer)] {
    model.modules().compactMap { m in (m.layer as? QuantizedLayer).map { (m.path, $0) } }
}

/// The quantizer parameter group (reference §4.2 step 5: every QConv's `lW, uW, lA, uA, lA_t, uA_t,
/// output_scale`), with full state-dict names. Everything else in `model.parameters()` is the model group.
public func quantizerParameters(of model: any Model) -> [(name: String, parameter: Parameter)] {
    quantizedLayers(in: model).flatMap { prefixed($0.name, $0.layer.quantizerParameters()) }
}

/// The quantizers' parameters that the model optimizer trains with their own decay (`Quantizer.modelParameters`),
/// with full state-dict names, in tree order.
public func decayedQuantizerParameters(of model: any Model) -> [(name: String, parameter: Parameter, weightDecay: Double)] {
    let names = Dictionary(model.parameters().map { (ObjectIdentifier($0.parameter), $0.name) }, uniquingKeysWith: { a, _ in a })
    return quantizedLayers(in: model).flatMap { $0.layer.decayedParameters() }.map { p in
        (names[ObjectIdentifier(p.parameter)] ?? "", p.parameter, p.weightDecay)
    }
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
        layer.initFlag?.value.fill(1)
    }
    let logits = model.forward(firstBatch, mode: .train)
    for (_, layer) in layers {
        layer.calibrationPending = false
        layer.initFlag?.value.fill(0)
    }
    return logits
}
