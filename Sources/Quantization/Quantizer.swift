import NN
import Tensors

/// What a quantizer is attached to.
public enum QuantizerRole: String, Codable, Sendable {
    /// A conv / linear weight (quantized on every forward).
    case weight
    /// The input activation of a conv / linear.
    case activation
}

/// Fake-quantization of one tensor in float: `forward` returns Q(x) (values on the quantizer's grid, still
/// float32), `backward` returns the quantizer's *surrogate* gradient dL/dx and accumulates the gradients
/// of its own parameters (interval bounds, step sizes, ...).
///
/// Life cycle: a model's quantizers are calibrated once, from the first training batch, by
/// `calibrate(_:)` calls in network order (reference §2.2.3 and §2.3.3); afterwards `forward` quantizes.
/// `forward` on an uncalibrated quantizer calibrates first. Each quantizer file documents its formulas,
/// its source (paper and released code) and where the released code departs from the paper.
public protocol Quantizer: Layer {
    var role: QuantizerRole { get }
    var bits: Int { get }
    var isCalibrated: Bool { get }
    /// Sets the quantizer's data-dependent state from `x` (the tensor it will quantize).
    func calibrate(_ x: Tensor)
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
}
