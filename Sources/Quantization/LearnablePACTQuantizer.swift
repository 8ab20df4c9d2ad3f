import NN
import Tensors

/// PACT activation quantizer in the PACT paper's form, with a learned clipping level α (Choi et al., "PACT:
/// Parameterized Clipping Activation for Quantized Neural Networks", 2018, §2, Eq. 1–3). An opt-in variant
/// of the released code, whose `pact` freezes α at 6 and uses the signed MQBench grid (`PACTQuantizer`).
///
/// Shapes: x any shape and layout → y same shape and layout. α: `alpha` ([1], a trainable parameter).
/// Forward (n = 2^b − 1 levels above 0, step s = α/n; float32, round half to even):
///   y  = clamp(x, 0, α)
///   y_q = round(y / s)·s                         ∈ {0, s, …, n·s = α}
/// Backward (the paper's STE through the rounding, Eq. 3):
///   dx  = dy·1[0 ≤ x < α]
///   ∂α  = Σ dy·1[x ≥ α]                          (the dependence of s on α is not differentiated)
/// No calibration: α starts at `alpha` (the paper initialises it to 10). Its L2 regulariser λ_α·α²/2
/// (gradient λ_α·α, the weight-decay convention) is applied as the coupled weight decay of α's own group
/// in the model optimizer (`modelParameters`), so α trains at the model learning rate like a weight and
/// is not decayed by the model group's weight decay. The paper's CIFAR-10 ResNet-20 setting uses
/// λ_α = 0.0002, equal to its weight decay (PACT paper, appendix training settings; as transcribed by the
/// reproduction `App0lyon/PACT` `configs/cifar10_resnet20.yaml`).
///
/// Only for inputs that are never negative (post-ReLU): the clip at 0 would erase the negative half of
/// anything else. `LearnablePACTScheme` therefore keeps the released 32-bit `PACTQuantizer` on the first
/// and last layers (the input image is signed).
public final class LearnablePACTQuantizer: Quantizer {
    public let role: QuantizerRole = .activation
    public let bits: Int
    /// n = 2^b − 1.
    public let levels: Int
    /// α ([1]).
    public let alpha: Parameter
    /// λ_α.
    public let alphaDecay: Double

    private var savedInput: Tensor?
    private var savedAlpha: Float = 0

    public init(bits: Int, alpha: Float = 10, alphaDecay: Double = 2e-4) {
        precondition((2...16).contains(bits), "LearnablePACTQuantizer supports 2…16 bits, got \(bits)")
        precondition(alpha > 0 && alpha.isFinite, "PACT alpha must be positive and finite, got \(alpha)")
        self.bits = bits
        levels = (1 << bits) - 1
        self.alpha = Parameter(Tensor(shape: [1], values: [alpha]))
        self.alphaDecay = alphaDecay
    }

    public var isCalibrated: Bool { true }
    public func calibrate(_ x: Tensor) {}
    public var statePrefix: String? { "input_fake_quant" }
    public var curveDefaults: QuantizerCurveDefaults { QuantizerCurveDefaults(parameters: ["alpha": 6], from: -2, to: 8) }
    public var modelParameters: [(parameter: Parameter, weightDecay: Double)] { [(alpha, alphaDecay)] }

    /// The step s = α/n of the current α (float32).
    public var step: Float { alpha.value[0] / Float(levels) }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let a = alpha.value[0], s = a / Float(levels)
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { [n = x.count] y, x in
            for i in 0..<n {
                let c = Swift.min(Swift.max(x[i], 0), a)
                y[i] = (c / s).rounded(.toNearestOrEven) * s
            }
        }
        if mode == .train {
            savedInput = x
            savedAlpha = a
        } else {
            savedInput = nil
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("LearnablePACTQuantizer backward without a training forward") }
        savedInput = nil
        precondition(dy.shape == x.shape, "LearnablePACTQuantizer backward: dy \(dy.shape), input \(x.shape)")
        let g = dy.toLayout(x.layout)
        let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let a = savedAlpha
        var dAlpha = 0.0
        withUnsafeMutablePointers(dx, g, x) { [n = x.count] dx, g, x in
            for i in 0..<n {
                let v = x[i]
                dx[i] = v >= 0 && v < a ? g[i] : 0
                if v >= a { dAlpha += Double(g[i]) }
            }
        }
        alpha.grad[0] += Float(dAlpha)
        return dx
    }

    public func parameters() -> [(name: String, parameter: Parameter)] { [("alpha", alpha)] }
}

/// `pact-learnable`: the `pact` config with the PACT paper's activation quantizer (`LearnablePACTQuantizer`:
/// learned α, unsigned grid of 2^b levels on [0, α], L2 on α) on every quantized layer. Weights keep
/// `pact`'s MQBench `DoReFaQuantizer`; the first and last layers keep `pact`'s 32-bit quantizers (released
/// α = 6), so only the low-bit activation quantizers differ from `pact`.
/// Settings: `alpha` (initial α, default 10 as the paper), `alpha_decay` (λ_α, default 0.0002 as the paper).
public struct LearnablePACTScheme: QuantizationScheme {
    public init() {}
    public var name: String { "pact-learnable" }
    public var summary: String {
        "PACT paper's activations: learned clip alpha (init 10, L2 2e-4), unsigned 2^b levels on [0, alpha], STE; DoReFa weights as pact (variant of the released pact)"
    }
    public var supportedBits: ClosedRange<Int> { 2...32 }
    public var settings: [String: Double] { ["alpha": 10, "alpha_decay": 2e-4] }
    public var usesOutputScale: Bool { false }
    public var quantizesFirstAndLastLayers: Bool { true }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        return DoReFaQuantizer(role: .weight, bits: bits)
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        let alpha = settings["alpha"] ?? 10, decay = settings["alpha_decay"] ?? 2e-4
        guard alpha > 0, Float(alpha).isFinite else {
            throw QuantizationError.invalidArgument("setting 'alpha' of '\(name)' must be positive, got \(alpha)")
        }
        guard decay >= 0 else {
            throw QuantizationError.invalidArgument("setting 'alpha_decay' of '\(name)' must be ≥ 0, got \(decay)")
        }
        if bits > 16 { return PACTQuantizer(role: .activation, bits: bits) }
        return LearnablePACTQuantizer(bits: bits, alpha: Float(alpha), alphaDecay: decay)
    }
}
