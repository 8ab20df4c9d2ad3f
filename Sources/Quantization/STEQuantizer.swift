import Kernels
import NN
import Tensors

/// A plain uniform quantizer with a straight-through estimator: a per-tensor range set once by calibration
/// and then frozen, nothing learned. The textbook baseline of QAT (Bengio et al., "Estimating or Propagating
/// Gradients Through Stochastic Neurons", 2013, for the STE; Jacob et al., "Quantization and Training of
/// Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018, for the grid). Not part of
/// the SQAKD paper's method list; added as the worked example of `docs/comparing-a-quantizer.md`.
///
/// Shapes: x any shape and layout (weights [K, C, k, k] plain, activations [N, C, H, W] in any layout)
/// → y same shape and layout. Bits b ∈ 2…8.
///
/// Grids (integer grid [qmin, qmax], step s, zero at 0):
///   signed:   [−Q, Q] with Q = 2^(b−1) − 1 (symmetric, 2^b − 1 levels: 2 bits {−1, 0, 1}, 4 bits −7…7)
///   unsigned: [0, 2^b − 1]                  (2 bits {0, 1, 2, 3})
/// Calibration (once, from the first tensor the quantizer sees: the first training batch, §2.2.3's
/// `calibrateQuantizers`, or the first forward):
///   weights:     signed grid,   s = max|w| / Q
///   activations: (lo, hi) = (min x, max x); lo ≥ 0 → unsigned grid, s = hi / (2^b − 1);
///                lo < 0 → signed grid, s = max(|lo|, |hi|) / Q
///   then s = max(s, 1.1920929e-07) (float32 eps; an all-zero tensor). Float32 arithmetic.
/// After calibration s and the grid are frozen: later batches and weight updates do not move them, and
/// no optimizer sees them (they are buffers).
/// Forward (train and eval): q = nearbyint(x / s) (x·(1/s) in float32, round half to even),
///   y = clamp(q, qmin, qmax)·s                      (`fakeQuantizeForward`, torch.fake_quantize_per_tensor_affine)
/// Backward (clipped STE): dx = dy·[qmin ≤ q ≤ qmax], i.e. dy/dx = 1 for x within half a step of the
///   range, [(qmin − ½)s, (qmax + ½)s] (the end points by the rounding), and 0 outside (`fakeQuantizeBackward`).
///   No parameter gradients.
/// State (under `weight_fake_quant.` / `input_fake_quant.` of the quantized layer): `scale` ([1], s; 0 until
///   calibrated) and `signed` ([1], integer: 1 for the signed grid). Loading a checkpoint restores both, so
///   a resumed run does not calibrate again.
/// 1 bit is not supported: the signed grid would be {0} alone.
public final class STEQuantizer: Quantizer {
    public let role: QuantizerRole
    public let bits: Int
    /// s ([1]); 0 until calibrated.
    public let scale: Buffer
    /// 1 for the signed grid [−Q, Q], 0 for the unsigned [0, 2^b − 1] ([1], integer).
    public let signed: Buffer

    /// The input, step and grid of the last training forward.
    private var savedInput: Tensor?
    private var savedScale: Float = 1
    private var savedGrid = (quantMin: 0, quantMax: 0)

    public init(role: QuantizerRole, bits: Int) {
        precondition((2...8).contains(bits), "STEQuantizer supports 2…8 bits, got \(bits)")
        self.role = role
        self.bits = bits
        scale = scalarBuffer(0)
        signed = scalarBuffer(role == .weight ? 1 : 0, isInteger: true)
    }

    public var isCalibrated: Bool { scaleValue > 0 }
    /// The current step s.
    public var scaleValue: Float { scale.value[0] }
    public var isSigned: Bool { signed.value[0] != 0 }
    /// [qmin, qmax] of the current grid.
    public var grid: (quantMin: Int, quantMax: Int) {
        isSigned ? (-Self.signedMax(bits), Self.signedMax(bits)) : (0, Self.unsignedMax(bits))
    }
    public var statePrefix: String? { mqbenchStatePrefix(role) }

    /// Q = 2^(b−1) − 1.
    static func signedMax(_ bits: Int) -> Int { (1 << (bits - 1)) - 1 }
    /// 2^b − 1.
    static func unsignedMax(_ bits: Int) -> Int { (1 << bits) - 1 }

    /// Range [−1, 1] for weights, [0, 1] for activations.
    public var curveDefaults: QuantizerCurveDefaults {
        switch role {
        case .weight:
            return QuantizerCurveDefaults(parameters: ["scale": 1 / Float(Self.signedMax(bits)), "signed": 1], from: -1.5, to: 1.5)
        case .activation:
            return QuantizerCurveDefaults(parameters: ["scale": 1 / Float(Self.unsignedMax(bits)), "signed": 0], from: -0.5, to: 1.5)
        }
    }

    public func calibrate(_ x: Tensor) {
        var lo: Float = 0, hi: Float = 0
        if x.count > 0 { (lo, hi) = tensorMinMax(x) }
        let isSigned = role == .weight || lo < 0
        let s = isSigned ? Swift.max(-lo, hi) / Float(Self.signedMax(bits)) : hi / Float(Self.unsignedMax(bits))
        scale.value[0] = Swift.max(s, float32Epsilon)
        signed.value[0] = isSigned ? 1 : 0
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        if !isCalibrated { calibrate(x) }
        let s = scaleValue
        let (qmin, qmax) = grid
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let count = x.count
        withUnsafeMutablePointers(y, x) { y, x in
            fakeQuantizeForward(y: y, x: x, count: count, scale: s, quantMin: qmin, quantMax: qmax)
        }
        if mode == .train {
            savedInput = x
            savedScale = s
            savedGrid = (qmin, qmax)
        } else {
            savedInput = nil
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("STEQuantizer backward without a training forward") }
        savedInput = nil
        precondition(dy.shape == x.shape, "STEQuantizer backward: dy \(dy.shape), input \(x.shape)")
        let (qmin, qmax) = savedGrid
        let g = dy.toLayout(x.layout)
        let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let count = x.count, s = savedScale
        withUnsafeMutablePointers(dx, g, x) { dx, g, x in
            fakeQuantizeBackward(dx: dx, dy: g, x: x, count: count, scale: s, quantMin: qmin, quantMax: qmax)
        }
        return dx
    }

    public func buffers() -> [(name: String, buffer: Buffer)] { [("scale", scale), ("signed", signed)] }
}

/// `ste`: `STEQuantizer` on the weight and on the input of every quantized conv (CIFAR style: the inner
/// convs), no output scale, nothing learned by the quantizers.
public struct STEScheme: QuantizationScheme {
    public init() {}
    public var name: String { "ste" }
    public var summary: String {
        "plain uniform quantizer: per-tensor range max|x| calibrated on the first batch and frozen, round-to-nearest, clipped straight-through gradient"
    }
    public var supportedBits: ClosedRange<Int> { 2...8 }
    public var settings: [String: Double] { [:] }
    public var usesOutputScale: Bool { false }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        return STEQuantizer(role: .weight, bits: bits)
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        return STEQuantizer(role: .activation, bits: bits)
    }
}
