import Kernels
import NN
import Tensors

/// PACT activation quantizer exactly as the released Tiny-ImageNet code runs it: MQBench's
/// `PACTFakeQuantize` (`MQBench/mqbench/fake_quantize/pact.py:26-50`) with a MinMax observer, symmetric
/// per-tensor scheme, calibrated once on the first training batch (reference §2.3.3, §2.3.5, §8.8).
///
/// Grid: signed symmetric, [qmin, qmax] = [−2^(b−1), 2^(b−1) − 1], z = 0 (`SignedGrid`).
/// Shapes: x any shape and layout → y same shape and layout.
///
/// Calibration (observer branch; runs once, at step 0, under `no_grad`):
///   X' = where(X > α, α, X);  if min(X') < 0: X' = where(X' < −α, −α, X'), min_val = −α  else min_val = 0
///   max_val = α;  s = max(|min_val|, max_val)/((qmax − qmin)/2) = α/((2^b − 1)/2) = 2α/(2^b − 1),  z = 0
///   then s = max(s, eps = 1.1920929e-07) (the MinMax observer's floor) — the same s for signed and unsigned
///   inputs: 3 bits 1.714, 4 bits 0.8, 8 bits 0.04706; 32 bits: 6/2^31 = 2.8e-9 < eps, so s = eps = 2^−23.
///   MQBench's calibration pass then outputs X' with fake-quant off (`calibrationForward`).
/// Forward (every later step, train and eval):  y = (clamp(nearbyint(x·(1/s)), qmin, qmax))·s
///   (`torch.fake_quantize_per_tensor_affine`; round half to even). Post-ReLU inputs land on 0, s, …, qmax·s
///   (4 bits: 0…5.6); negative inputs reach qmin·s.
/// Backward: dx = dy·[qmin ≤ nearbyint(x/s) ≤ qmax] (masked STE). No parameter gradients.
///
/// α = 6 is fixed and never trained. In MQBench α is an `nn.Parameter`, but it appears only in the
/// observer branch, which runs only on the calibration step (under `no_grad`, §2.3.3) and is then disabled:
/// α never receives a gradient (its `.grad` stays None, so SGD skips it, weight decay included). Here α is
/// therefore a buffer, so no optimizer can touch it; it stays in the state dict as `alpha`.
///
/// Where this departs from the PACT paper (Choi et al., "PACT: Parameterized Clipping Activation for
/// Quantized Neural Networks", 2018) — by design, to replicate the released code:
/// * The paper learns the clipping level α per layer (with L2 regularisation) by the gradient
///   ∂y/∂α = 1[x ≥ α]; here α is frozen at 6 and "PACT" is a fixed uniform quantizer with clip ±6.
/// * The paper quantizes the clipped activation y = clip(x, 0, α) on 2^b − 1 unsigned levels of step
///   α/(2^b − 1); here the grid is signed, so post-ReLU activations use only 2^(b−1) levels (0…qmax) with
///   step 2α/(2^b − 1), effectively b−1 bits (reference §8.11), and the clip is the fake-quant clamp at
///   qmax·s (< α) and qmin·s.
/// * The paper's weights use DoReFa-style quantization; the "PACT" config quantizes weights with MQBench's
///   `DoReFaQuantizer` (not textbook DoReFa either, see there).
/// The textbook variants are not implemented.
///
/// 32 bits (first/last layers, §8.10): the same class with the 32-bit grid. Because of the eps floor
/// s = 2^−23, so the input image and the FC input are clamped to qmin·s … qmax·s = ±256 (not ±6 as the
/// reference text §2.3.5 / §8.10 says; its own formula s = max(s, eps) gives this) and rounded to multiples
/// of 1.19e-7 (≈ 1 ulp near 1).
/// Bits: 2…32 here (1 bit gives qmax = 0: every non-negative input rounds to 0).
///
/// Opt-in variant `unsignedActivations` (`quantizer_settings.unsigned_activations=1`; the paper's grid):
/// when the calibration input is never negative (min X' ≥ 0, the observer's own unsigned branch above),
/// the grid is [0, 2^b − 1] with s = max(α/(2^b − 1), eps) (MinMax, affine, min_val = 0: the PACT paper's
/// step α/(2^b − 1)), so 4 bits give 16 levels 0, 0.4, …, 6.0 instead of 8 levels 0, 0.8, …, 5.6; inputs
/// with negative values keep the signed grid. The choice is the buffer `signed` (int [1], only with the
/// variant). α stays fixed (the learnable α is `pact-learnable`).
public final class PACTQuantizer: Quantizer {
    public let role: QuantizerRole
    public let bits: Int
    public let grid: SignedGrid
    /// α ([1], 6 by default): the calibration clip. Never trained (see above).
    public let alpha: Buffer
    /// s ([1]), set by calibration, frozen afterwards.
    public let scale: Buffer
    /// z ([1], int, always 0).
    public let zeroPoint: Buffer
    /// MQBench's `observer_enabled` (int [1]): 1 until calibrated.
    public let observerEnabled: Buffer
    /// `unsigned_activations` only: 1 signed grid, 0 unsigned (int [1]); nil in the released form.
    public let signed: Buffer?

    private var savedInput: Tensor?
    private var savedScale: Float = 1
    private var savedRange = GridRange(quantMin: 0, quantMax: 0)

    public init(role: QuantizerRole = .activation, bits: Int, alpha: Float = 6, unsignedActivations: Bool = false) {
        precondition((2...32).contains(bits), "PACTQuantizer supports 2…32 bits, got \(bits)")
        precondition(alpha > 0 && alpha.isFinite, "PACT alpha must be positive and finite, got \(alpha)")
        self.role = role
        self.bits = bits
        grid = SignedGrid(bits: bits)
        self.alpha = scalarBuffer(alpha)
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
    public var curveDefaults: QuantizerCurveDefaults { QuantizerCurveDefaults(from: -8, to: 8) }

    public func calibrate(_ x: Tensor) { _ = calibrationForward(x) }

    /// MQBench's calibration pass (observer on, fake-quant off): sets s and z from α and the sign of x, and
    /// returns x clipped at α (and at −α when the clipped x has negative values), not fake-quantized.
    public func calibrationForward(_ x: Tensor) -> Tensor {
        let a = alpha.value[0]
        let clippedMin = x.count == 0 ? 0 : Swift.min(tensorMinMax(x).min, a)
        let symmetric = clippedMin < 0
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let count = x.count
        withUnsafeMutablePointers(y, x) { y, x in pactClipForward(y: y, x: x, count: count, alpha: a, symmetric: symmetric) }
        if let signed {
            signed.value[0] = symmetric ? 1 : 0
        }
        scale.value[0] = range.quantMin == 0
            ? minMaxUnsignedScale(max: a, range: range)
            : minMaxSymmetricScale(min: symmetric ? -a : 0, max: a, grid: grid)
        zeroPoint.value[0] = 0
        observerEnabled.value[0] = 0
        return y
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        if !isCalibrated { calibrate(x) }
        let s = scaleValue, r = range
        let y = fakeQuantized(x, scale: s, range: r)
        if mode == .train {
            savedInput = x
            savedScale = s
            savedRange = r
        } else {
            savedInput = nil
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("PACTQuantizer backward without a training forward") }
        savedInput = nil
        return fakeQuantizeGradient(dy, x: x, scale: savedScale, range: savedRange)
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        [("alpha", alpha), ("scale", scale), ("zero_point", zeroPoint), ("observer_enabled", observerEnabled)]
            + (signed.map { [("signed", $0)] } ?? [])
    }
}

/// `pact`: MQBench's "PACT" config of the Tiny-ImageNet experiments (`get_config.py:4-27`, reference §2.3.2):
/// weights `DoReFaQuantizer` (MinMax observer), activations `PACTQuantizer` (α = 6, fixed), signed symmetric
/// per-tensor grids; the first and last layers use the same classes at 32 bits. Setting `alpha` changes the
/// fixed clip (default 6, as released); `unsigned_activations` = 1 gives never-negative activation inputs
/// the unsigned grid (see `PACTQuantizer`; default 0, as released).
public struct PACTScheme: QuantizationScheme {
    public init() {}
    public var name: String { "pact" }
    public var summary: String {
        "MQBench PACT config (Tiny-ImageNet): DoReFa weights, PACT activations with fixed alpha=6 (s=12/(2^b-1)), signed per-tensor grid (reference §2.3.5)"
    }
    public var supportedBits: ClosedRange<Int> { 2...32 }
    public var settings: [String: Double] { ["alpha": 6, "unsigned_activations": 0] }
    public var usesOutputScale: Bool { false }
    public var quantizesFirstAndLastLayers: Bool { true }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        _ = try flagSetting(settings, "unsigned_activations", scheme: name)
        return DoReFaQuantizer(role: .weight, bits: bits)
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        let alpha = settings["alpha"] ?? 6
        guard alpha > 0, alpha.isFinite, Float(alpha).isFinite else {
            throw QuantizationError.invalidArgument("setting 'alpha' of 'pact' must be positive, got \(alpha)")
        }
        return PACTQuantizer(role: .activation, bits: bits, alpha: Float(alpha),
                             unsignedActivations: try flagSetting(settings, "unsigned_activations", scheme: name))
    }
}
