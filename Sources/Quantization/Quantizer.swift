import NN
import Tensors

/// What a quantizer is attached to.
public enum QuantizerRole: String, Codable, Sendable, CaseIterable {
    /// A conv / linear weight (quantized on every forward).
    case weight
    /// The input activation of a conv / linear.
    case activation
}

/// Fake-quantization of one tensor in float: `forward` returns Q(x) (values on the quantizer's grid, still
/// float32), `backward` returns the quantizer's *surrogate* gradient dL/dx as a new tensor and accumulates
/// (`+=`) the gradients of its own parameters (interval bounds, step sizes, ...).
///
/// Life cycle: a model's quantizers are calibrated once, from the first training batch, by
/// `calibrate(_:)` calls in network order (reference §2.2.3 and §2.3.3; driver:
/// `calibrateQuantizers(model:firstBatch:)`); afterwards `forward` quantizes. `forward` on an uncalibrated
/// quantizer calibrates first. Each quantizer file documents its formulas, its source (paper and released
/// code) and where the released code departs from the paper.
///
/// Inputs may come in any layout (plain or nChw{b}c): elementwise quantizers ignore it, and the output has
/// the input's shape and layout.
public protocol Quantizer: Layer {
    var role: QuantizerRole { get }
    var bits: Int { get }
    var isCalibrated: Bool { get }
    /// Sets the quantizer's data-dependent state from `x` (the tensor it will quantize).
    func calibrate(_ x: Tensor)
    /// The calibration pass: calibrates from `x` and returns what the layer computes with during that pass.
    /// Default: the quantized x (EWGS, reference QConv.initialize). MQBench quantizers return their input
    /// with fake-quant off (PACT: clipped at ±α; DoReFa: tanh-normalised; LSQ: unchanged), §2.3.3.
    func calibrationForward(_ x: Tensor) -> Tensor
    /// The quantizer's child name inside the owning quantized layer: nil merges its state beside `weight`
    /// (EWGS's QConv keys, `layer1.0.conv1.lW`); a name nests it (`conv.weight_fake_quant.scale`).
    /// Default nil.
    var statePrefix: String? { get }
    /// Parameter values and x range `sqakd quantizer curve` uses unless the user overrides them.
    var curveDefaults: QuantizerCurveDefaults { get }
    /// Parameters trained like model weights — by the model optimizer at the model learning rate — each
    /// with its own coupled L2 decay instead of its group's (PACT's learned α with λ_α). They are not in
    /// the quantizer group (`QuantizedLayer.quantizerParameters()`). Default none.
    var modelParameters: [(parameter: Parameter, weightDecay: Double)] { get }
}

/// Defaults for inspecting a quantizer's transfer curve (see `QuantizerCurve`).
public struct QuantizerCurveDefaults: Sendable {
    /// Parameter or buffer name (as in `parameters()` / `buffers()`) → value.
    public var parameters: [String: Float]
    public var from: Float
    public var to: Float

    public init(parameters: [String: Float] = [:], from: Float = -2, to: Float = 2) {
        self.parameters = parameters
        self.from = from
        self.to = to
    }
}

extension Quantizer {
    public func calibrationForward(_ x: Tensor) -> Tensor {
        calibrate(x)
        return forward(x, mode: .eval)
    }

    public var statePrefix: String? { nil }
    public var curveDefaults: QuantizerCurveDefaults { QuantizerCurveDefaults() }
    public var modelParameters: [(parameter: Parameter, weightDecay: Double)] { [] }

    /// The quantizer's parameters named as they appear inside the owning layer.
    public func ownerParameters() -> [(name: String, parameter: Parameter)] {
        if let p = statePrefix { return prefixed(p, parameters()) }
        return parameters()
    }

    /// The quantizer's buffers named as they appear inside the owning layer.
    public func ownerBuffers() -> [(name: String, buffer: Buffer)] {
        if let p = statePrefix { return prefixed(p, buffers()) }
        return buffers()
    }
}

/// A registered quantization method: which quantizer goes on weights and on activations at a
/// bit-width, and how layers use them. One entry = one line in `QuantizerRegistry.schemes`.
public protocol QuantizationScheme: Sendable {
    /// Registry name, as on the command line (`ewgs`, `pact`, `lsq`, `dorefa`, `fp`).
    var name: String { get }
    /// One line for `sqakd quantizer list`.
    var summary: String { get }
    /// Bit-widths the method supports (others are rejected with a message).
    var supportedBits: ClosedRange<Int> { get }
    /// Parameters a user may set with `--set key=value` (e.g. EWGS's `delta`), with their defaults.
    var settings: [String: Double] { get }
    func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer?
    func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer?
    /// EWGS multiplies the conv output by a learnable |output_scale| (reference §2.2.1).
    var usesOutputScale: Bool { get }
    /// MQBench-style schemes (Tiny-ImageNet) also fake-quantize the first and last layers at "32 bits"
    /// with the same quantizer type (reference §2.3, §8.10). Default false.
    var quantizesFirstAndLastLayers: Bool { get }
}

extension QuantizationScheme {
    public var quantizesFirstAndLastLayers: Bool { false }
}

/// A conv / linear layer that fake-quantizes its weight and input (`QConv2d`, `QLinear`).
public protocol QuantizedLayer: Layer {
    var weightQuantizer: Quantizer? { get }
    var inputQuantizer: Quantizer? { get }
    /// EWGS's learnable |output_scale| multiplying the output (reference §2.2.1); nil for other schemes.
    var outputScale: Parameter? { get }
    /// Initialises the quantizers (and the output scale) from the layer's input `x` (reference §2.2.3).
    func calibrate(_ x: Tensor)
    /// When true, the next forward calls `calibrate` with its input first, then clears the flag.
    var calibrationPending: Bool { get set }
    /// The reference QConv's `init` buffer (int64 [1]): 1 only during `calibrateQuantizers`; nil without one.
    var initFlag: Buffer? { get }
}

extension QuantizedLayer {
    /// The quantizers' parameters and the layer's own quantization parameter (`output_scale`), named as
    /// in `parameters()`: the reference's quantizer optimizer group (§4.2 step 5).
    public func quantizerParameters() -> [(name: String, parameter: Parameter)] {
        let model = Set(decayedParameters().map { ObjectIdentifier($0.parameter) })
        var list = ((weightQuantizer?.ownerParameters() ?? []) + (inputQuantizer?.ownerParameters() ?? []))
            .filter { !model.contains(ObjectIdentifier($0.parameter)) }
        if let outputScale { list.append((name: "output_scale", parameter: outputScale)) }
        return list
    }

    /// The quantizers' `modelParameters` (weight quantizer first).
    public func decayedParameters() -> [(parameter: Parameter, weightDecay: Double)] {
        (weightQuantizer?.modelParameters ?? []) + (inputQuantizer?.modelParameters ?? [])
    }

    /// The weight and input quantizers as children, named by their `statePrefix` (empty: merged).
    public var quantizerChildren: [Child] {
        var list: [Child] = []
        if let weightQuantizer { list.append(Child(weightQuantizer.statePrefix ?? "", weightQuantizer)) }
        if let inputQuantizer { list.append(Child(inputQuantizer.statePrefix ?? "", inputQuantizer)) }
        return list
    }
}
