import NN
import Tensors

/// The identity "quantizer": y = x, dy/dx = 1, no parameters. Used by `sqakd quantizer curve fp` and as a
/// stand-in quantizer in tests of the quantized layers.
public final class IdentityQuantizer: Quantizer {
    public let role: QuantizerRole
    public var bits: Int { 32 }
    public var isCalibrated: Bool { true }

    public init(role: QuantizerRole) { self.role = role }

    public func calibrate(_ x: Tensor) {}
    /// Returns `x` itself (no copy): the quantized layers never write into their operands.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor { x }
    public func backward(_ dy: Tensor) -> Tensor { dy }
}

/// `fp`: full precision, the teacher row of every table. Quantizing a model with it leaves the model as is
/// (plain convs, the reference's `*_fp` state dict); its quantizers are the identity.
public struct FPScheme: QuantizationScheme {
    public init() {}
    public var name: String { "fp" }
    public var summary: String { "full precision (identity); the teacher / FP baseline" }
    public var supportedBits: ClosedRange<Int> { 32...32 }
    public var settings: [String: Double] { [:] }
    public var usesOutputScale: Bool { false }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        IdentityQuantizer(role: .weight)
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        IdentityQuantizer(role: .activation)
    }
}
