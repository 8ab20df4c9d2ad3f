import Kernels
import NN
import Tensors

/// DoReFa quantizer exactly as the released Tiny-ImageNet code runs it: MQBench's `DoReFaFakeQuantize`
/// (`MQBench/mqbench/fake_quantize/dorefa.py:13-35`) with a MinMax observer, symmetric per-tensor scheme,
/// calibrated once on the first training batch (reference §2.3.3, §2.3.4, §8.9, §8.10). Used for weights
/// in the "PACT" and "DoReFa" configs and for activations in the "DoReFa" config.
///
/// Grid: signed symmetric, [qmin, qmax] = [−2^(b−1), 2^(b−1) − 1], z = 0 (`SignedGrid`).
/// Shapes: x any shape and layout → y same shape and layout.
///
/// Forward (every pass, calibration included):
///   t = tanh(x),  M = max|t| over the WHOLE tensor (all elements; for activations the whole batch),
///   d = M + 1e-5,  Y = t/d
/// Calibration (once, step 0): s = max(−min(min Y, 0), max(max Y, 0))/((qmax − qmin)/2) = max|Y|/((qmax−qmin)/2)
///   (≈ 1/7.5 at 4 bits, ≈ 1/127.5 at 8), z = 0, frozen afterwards. MQBench's calibration pass outputs Y
///   (fake-quant off; `calibrationForward`).
/// Then:  y = clamp(nearbyint(Y·(1/s)), qmin, qmax)·s   (round half to even). Y = −max|Y| → −(qmax−qmin)/2
///   = −7.5 at 4 bits → −8; Y = +max|Y| → 7.5 → 8 → clamped to 7 (and its fake-quant gradient is 0).
/// Backward (autograd through the fake-quant mask, the division, the max and tanh; the max is NOT detached):
///   g  = dy·[qmin ≤ q ≤ qmax],  ∂d = Σ −g·t/d²,
///   ∂t = g/d + [|t| = M]·sign(t)·∂d/#{|t| = M}   (PyTorch's max() shares the gradient among tied maxima),
///   dx = ∂t·(1 − t²).
/// No learnable parameters.
///
/// Facts of this implementation that the reference code shares (reference §2.3.4):
/// * For activations the per-tensor max makes every output depend on the whole batch, at eval too
///   (§8.9): the same image quantizes differently in different batches. The reference evaluates with the
///   training batch size.
/// * At 32 bits (first/last layers) the tanh normalisation still applies, to the input image, the stem
///   weights, the FC input and the FC weights: those layers are not floating point (§8.10). There
///   max|Y|/2^31 < eps, so s = eps = 2^−23 (the observer's floor): Y is rounded to multiples of 1.19e-7.
///
/// Where this departs from the DoReFa paper (Zhou et al., "DoReFa-Net: Training Low Bitwidth Convolutional
/// Neural Networks with Low Bitwidth Gradients", 2016) — by design, to replicate the released code:
/// * Paper weights: w_q = 2·quantize_k(tanh(w)/(2·max|tanh w|) + 0.5) − 1, 2^k − 1 levels symmetric about 0
///   in [−1, 1]; here a signed two's-complement grid with 2^k levels k·s, k ∈ [qmin, qmax], which is
///   asymmetric (−8…7 at 4 bits), the max normaliser has +1e-5 and the gradient flows through the max.
/// * Paper activations: clip(x, 0, 1) quantized on 2^k − 1 unsigned levels; here activations get the same
///   tanh normalisation as weights and the signed grid, so post-ReLU activations use 2^(b−1) levels
///   (effectively b−1 bits, §8.11).
/// The textbook variants are not implemented. Bits: 2…32 (at 1 bit qmax = 0 and every Y rounds to 0).
///
/// Opt-in variant `unsignedActivations` (`quantizer_settings.unsigned_activations=1`): an activation
/// quantizer whose calibration input has min ≥ 0 (then Y ∈ [0, 1)) uses the unsigned grid [0, 2^b − 1]
/// with s = max(max Y/(2^b − 1), eps) (MinMax, affine, min_val = 0), i.e. 2^b levels on [0, max Y] as the
/// DoReFa paper's k-bit activations; inputs with negative values keep the signed grid. The choice is the
/// buffer `signed` (int [1], only with the variant). The tanh normalisation stays (it is MQBench's).
///
/// tanh is glibc's `tanhf`; PyTorch's vectorised tanh may differ by an ulp, which can move an element that
/// sits on a rounding tie by one level (golden tests allow for it).
public final class DoReFaQuantizer: Quantizer {
    public let role: QuantizerRole
    public let bits: Int
    public let grid: SignedGrid
    /// s ([1]), set by calibration, frozen afterwards.
    public let scale: Buffer
    /// z ([1], int, always 0).
    public let zeroPoint: Buffer
    /// MQBench's `observer_enabled` (int [1]): 1 until calibrated.
    public let observerEnabled: Buffer
    /// `unsigned_activations` only: 1 signed grid, 0 unsigned (int [1]); nil in the released form.
    public let signed: Buffer?

    /// Saved by a training forward: t = tanh(x), M, d, s and the grid.
    private var savedRange = GridRange(quantMin: 0, quantMax: 0)
    private var savedTanh: Tensor?
    private var savedMax: Float = 0
    private var savedDivisor: Float = 1
    private var savedScale: Float = 1

    /// The constant added to max|tanh x| (`dorefa.py`: `X.abs().max() + 1e-5`, a float32 add).
    public static let epsilon = Float(1e-5)

    public init(role: QuantizerRole, bits: Int, unsignedActivations: Bool = false) {
        precondition((2...32).contains(bits), "DoReFaQuantizer supports 2…32 bits, got \(bits)")
        self.role = role
        self.bits = bits
        grid = SignedGrid(bits: bits)
        scale = scalarBuffer(1)
        zeroPoint = scalarBuffer(0, isInteger: true)
        observerEnabled = observerFlag()
        signed = unsignedActivations && role == .activation ? signedFlag() : nil
    }

    /// The grid in use: the signed `grid`, or [0, 2^b − 1] when the variant chose it.
    public var range: GridRange { signed.map { $0.value[0] == 0 } == true ? .unsigned(bits: bits) : grid.range }

    public var isCalibrated: Bool { observerEnabled.value[0] == 0 }
    /// The current step size s.
    public var scaleValue: Float { scale.value[0] }
    public var statePrefix: String? { mqbenchStatePrefix(role) }
    public var curveDefaults: QuantizerCurveDefaults { QuantizerCurveDefaults(from: -2, to: 2) }

    /// The tanh normalisation: returns (t = tanh x, Y = t/(max|t| + 1e-5), max|t|, divisor).
    private func normalise(_ x: Tensor) -> (t: Tensor, y: Tensor, max: Float, divisor: Float) {
        let t = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let m = withUnsafeMutablePointers(t, x) { [n = x.count] t, x in tanhAbsMaxForward(t: t, x: x, count: n) }
        let d = m + DoReFaQuantizer.epsilon
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, t) { [n = x.count] y, t in divideByScalar(y: y, x: t, divisor: d, count: n) }
        return (t, y, m, d)
    }

    /// Sets s from the normalised tensor Y (MinMax observer, symmetric).
    private func observe(_ y: Tensor) {
        let (lo, hi) = y.count == 0 ? (0, 0) : tensorMinMax(y)
        if let signed { signed.value[0] = lo >= 0 ? 0 : 1 }
        scale.value[0] = range.quantMin == 0
            ? minMaxUnsignedScale(max: hi, range: range)
            : minMaxSymmetricScale(min: lo, max: hi, grid: grid)
        zeroPoint.value[0] = 0
        observerEnabled.value[0] = 0
    }

    public func calibrate(_ x: Tensor) { _ = calibrationForward(x) }

    /// MQBench's calibration pass (observer on, fake-quant off): sets s from Y and returns Y (tanh-normalised,
    /// not fake-quantized).
    public func calibrationForward(_ x: Tensor) -> Tensor {
        let n = normalise(x)
        observe(n.y)
        return n.y
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let n = normalise(x)
        if !isCalibrated { observe(n.y) }
        let s = scaleValue, r = range
        let out = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(out, n.y) { [count = x.count] out, y in
            fakeQuantizeForward(y: out, x: y, count: count, scale: s, quantMin: r.quantMin, quantMax: r.quantMax)
        }
        if mode == .train {
            savedRange = r
            savedTanh = n.t
            savedMax = n.max
            savedDivisor = n.divisor
            savedScale = s
        } else {
            savedTanh = nil
        }
        return out
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let t = savedTanh else { preconditionFailure("DoReFaQuantizer backward without a training forward") }
        savedTanh = nil
        precondition(dy.shape == t.shape, "DoReFaQuantizer backward: dy \(dy.shape), input \(t.shape)")
        let g = dy.toLayout(t.layout)
        let dx = Tensor(shape: t.shape, layout: t.layout, zeroed: false)
        withUnsafeMutablePointers(dx, g, t) { [count = t.count] dx, g, t in
            doReFaBackward(dx: dx, dy: g, t: t, count: count, maxAbs: savedMax, divisor: savedDivisor,
                           scale: savedScale, quantMin: savedRange.quantMin, quantMax: savedRange.quantMax)
        }
        return dx
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        [("scale", scale), ("zero_point", zeroPoint), ("observer_enabled", observerEnabled)]
            + (signed.map { [("signed", $0)] } ?? [])
    }
}

/// `dorefa`: MQBench's "DoReFa" config of the Tiny-ImageNet experiments (`get_config.py:63-85`, the one
/// Python keeps, reference §2.3.2, §8.7): `DoReFaQuantizer` (MinMax observer) on weights and activations,
/// signed symmetric per-tensor grids; the first and last layers use the same class at 32 bits.
/// `unsigned_activations` = 1 gives never-negative activation inputs the unsigned grid (see
/// `DoReFaQuantizer`; default 0, as released).
public struct DoReFaScheme: QuantizationScheme {
    public init() {}
    public var name: String { "dorefa" }
    public var summary: String {
        "MQBench DoReFa config (Tiny-ImageNet): tanh(x)/max|tanh x| then signed per-tensor MinMax fake-quant, weights and activations (reference §2.3.4)"
    }
    public var supportedBits: ClosedRange<Int> { 2...32 }
    public var settings: [String: Double] { ["unsigned_activations": 0] }
    public var usesOutputScale: Bool { false }
    public var quantizesFirstAndLastLayers: Bool { true }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        _ = try flagSetting(settings, "unsigned_activations", scheme: name)
        return DoReFaQuantizer(role: .weight, bits: bits)
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        return DoReFaQuantizer(role: .activation, bits: bits,
                               unsignedActivations: try flagSetting(settings, "unsigned_activations", scheme: name))
    }
}
