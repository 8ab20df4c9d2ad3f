import Kernels
import NN
import Tensors

/// LSQ quantizer exactly as the released Tiny-ImageNet code runs it: MQBench's `LearnableFakeQuantize`
/// (`MQBench/mqbench/fake_quantize/lsq.py:39-87`) with `LSQObserver` (`observer.py:406-446`), symmetric
/// per-tensor scheme, weights and activations (reference §2.3.6, §8.13).
///
/// Grid: signed symmetric, [qmin, qmax] = [−2^(b−1), 2^(b−1) − 1], z = 0 (`SignedGrid`).
/// Parameters: `scale` s ([1], init 1) and `zero_point` z ([1], init 0), both trainable `nn.Parameter`s in
/// the reference, trained by the model's SGD (same lr schedule, Nesterov momentum, weight decay on s).
/// Shapes: x any shape and layout → y same shape and layout.
///
/// Calibration (LSQObserver, once, step 0, on the tensor the quantizer first sees):
///   s = 2·mean|X|/√qmax   (mean over the whole tensor: the whole weight, or the whole activation batch;
///   float32: (2·mean)/float32(√qmax)),  z = 0. MQBench's calibration pass outputs X unchanged
///   (fake-quant off; `calibrationForward`).
/// Each later forward:
///   s ← max(|s|, 1.1920929e-07) and z ← 0, in place on the parameters' values;
///   f = 1/√(numel(X)·qmax)   (numel includes the batch dimension; double, then float32 as PyTorch passes it)
///   y = clamp(nearbyint(x·(1/s)), qmin, qmax)·s   (`torch._fake_quantize_learnable_per_tensor_affine`)
/// Backward (PyTorch's kernel; q = nearbyint(x·(1/s)), x_fq = y):
///   dx = dy·[qmin ≤ q ≤ qmax]
///   ∂s = Σ dy·f·{ (x_fq − x)/s in range (computed ·(1/s));  qmin if q < qmin;  qmax if q > qmax }
///   ∂z = Σ dy·f·{ 0 in range;  −s out of range }   (z is re-zeroed every forward, so ∂z is inert)
/// Gradients accumulate into `scale.grad` and `zero_point.grad`.
///
/// Where this departs from the LSQ paper (Esser et al., "Learned Step Size Quantization", ICLR 2020) — by
/// design, to replicate the released code:
/// * Post-ReLU activations use the signed grid [−2^(b−1), 2^(b−1) − 1] instead of the paper's unsigned
///   [0, 2^b − 1], so they get 2^(b−1) levels (effectively b−1 bits, reference §8.11); the paper's
///   grad scale 1/√(N·Q_P) then uses Q_P = 2^(b−1) − 1 here.
/// * Calibration: the paper initialises s = 2⟨|v|⟩/√Q_P from the weights / first batch as here; but the
///   reference also applies weight decay and momentum to s (shared SGD), and clamps s to ≥ eps each step.
/// * The gradient of s is the paper's; numel(X) includes the batch dimension for activations (the paper's
///   N is "the number of features", which the code takes as every element of the batch).
/// Bits: 2…32. 1 bit is unusable (qmax = 0: the calibration and the grad factor divide by zero).
/// At 32 bits (first/last layers) s ≈ mean|X|·4.3e-5 and the quantizer is ≈ the identity.
///
/// Opt-in variant `unsignedActivations` (`quantizer_settings.unsigned_activations=1`; the LSQ paper's
/// grid): an activation quantizer whose calibration input has min ≥ 0 uses [0, 2^b − 1], so Q_P = 2^b − 1
/// in the initialisation s = 2·mean|X|/√Q_P and in the grad factor 1/√(numel·Q_P); inputs with negative
/// values keep the signed grid. The choice is the buffer `signed` (int [1], only with the variant).
public final class LSQQuantizer: Quantizer {
    public let role: QuantizerRole
    public let bits: Int
    public let grid: SignedGrid
    /// s ([1]).
    public let scale: Parameter
    /// z ([1], kept at 0).
    public let zeroPoint: Parameter
    /// MQBench's `observer_enabled` (int [1]): 1 until calibrated.
    public let observerEnabled: Buffer
    /// `unsigned_activations` only: 1 signed grid, 0 unsigned (int [1]); nil in the released form.
    public let signed: Buffer?

    private var savedInput: Tensor?
    private var savedScale: Float = 1
    private var savedGradFactor: Float = 1
    private var savedRange = GridRange(quantMin: 0, quantMax: 0)

    public init(role: QuantizerRole, bits: Int, unsignedActivations: Bool = false) {
        precondition((2...32).contains(bits), "LSQQuantizer supports 2…32 bits, got \(bits)")
        self.role = role
        self.bits = bits
        grid = SignedGrid(bits: bits)
        scale = Parameter(Tensor(shape: [1], values: [1]))
        zeroPoint = Parameter(Tensor(shape: [1], values: [0]))
        observerEnabled = observerFlag()
        signed = unsignedActivations && role == .activation ? signedFlag() : nil
    }

    /// The grid in use: the signed `grid`, or [0, 2^b − 1] when the variant chose it.
    public var range: GridRange { signed.map { $0.value[0] == 0 } == true ? .unsigned(bits: bits) : grid.range }

    public var isCalibrated: Bool { observerEnabled.value[0] == 0 }
    /// The current step size s.
    public var scaleValue: Float { scale.value[0] }
    public var statePrefix: String? { mqbenchStatePrefix(role) }
    public var curveDefaults: QuantizerCurveDefaults {
        QuantizerCurveDefaults(parameters: ["scale": 0.25, "observer_enabled": 0], from: -2.5, to: 2.5)
    }

    /// grad_factor = 1/√(numel·qmax) (Python double, passed to the float32 kernel).
    public func gradFactor(count: Int) -> Float {
        Float(1 / (Double(count) * Double(range.quantMax)).squareRoot())
    }

    public func calibrate(_ x: Tensor) { _ = calibrationForward(x) }

    /// MQBench's calibration pass (observer on, fake-quant off): s = 2·mean|x|/√qmax, z = 0; returns x.
    public func calibrationForward(_ x: Tensor) -> Tensor {
        let mean = x.count == 0 ? 0 : Float(x.withUnsafeMutablePointer { absSumReduce(x: $0, count: x.count) } / Double(x.count))
        if let signed { signed.value[0] = x.count > 0 && tensorMinMax(x).min >= 0 ? 0 : 1 }
        scale.value[0] = (2 * mean) / Float(Double(range.quantMax).squareRoot())
        zeroPoint.value[0] = 0
        observerEnabled.value[0] = 0
        return x
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        if !isCalibrated { calibrate(x) }
        let s = Swift.max(abs(scale.value[0]), float32Epsilon)
        scale.value[0] = s
        zeroPoint.value[0] = 0
        let r = range
        let y = fakeQuantized(x, scale: s, range: r)
        if mode == .train {
            savedInput = x
            savedScale = s
            savedRange = r
            savedGradFactor = gradFactor(count: x.count)
        } else {
            savedInput = nil
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("LSQQuantizer backward without a training forward") }
        savedInput = nil
        precondition(dy.shape == x.shape, "LSQQuantizer backward: dy \(dy.shape), input \(x.shape)")
        let g = dy.toLayout(x.layout)
        let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let sums = withUnsafeMutablePointers(dx, g, x) { [count = x.count] dx, g, x in
            learnableFakeQuantizeBackward(dx: dx, dy: g, x: x, count: count, scale: savedScale,
                                          quantMin: savedRange.quantMin, quantMax: savedRange.quantMax, gradFactor: savedGradFactor)
        }
        scale.grad[0] += Float(sums.dScale)
        zeroPoint.grad[0] += Float(sums.dZeroPoint)
        return dx
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        [("scale", scale), ("zero_point", zeroPoint)]
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        [("observer_enabled", observerEnabled)] + (signed.map { [("signed", $0)] } ?? [])
    }
}

/// `lsq`: MQBench's "LSQ" config of the Tiny-ImageNet experiments (`get_config.py:33-56`, reference §2.3.2):
/// `LSQQuantizer` (LearnableFakeQuantize + LSQObserver) on weights and activations, signed symmetric
/// per-tensor grids; the first and last layers use the same class at 32 bits. `unsigned_activations` = 1
/// gives never-negative activation inputs the unsigned grid (see `LSQQuantizer`; default 0, as released).
public struct LSQScheme: QuantizationScheme {
    public init() {}
    public var name: String { "lsq" }
    public var summary: String {
        "MQBench LSQ config (Tiny-ImageNet): learned step size s (init 2*mean|x|/sqrt(qmax)), signed per-tensor grid, weights and activations (reference §2.3.6)"
    }
    public var supportedBits: ClosedRange<Int> { 2...32 }
    public var settings: [String: Double] { ["unsigned_activations": 0] }
    public var usesOutputScale: Bool { false }
    public var quantizesFirstAndLastLayers: Bool { true }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        _ = try flagSetting(settings, "unsigned_activations", scheme: name)
        return LSQQuantizer(role: .weight, bits: bits)
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        try checkBits(bits, scheme: name, supported: supportedBits)
        return LSQQuantizer(role: .activation, bits: bits,
                            unsignedActivations: try flagSetting(settings, "unsigned_activations", scheme: name))
    }
}
