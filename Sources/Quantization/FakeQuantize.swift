import Kernels
import NN
import Tensors

// Shared pieces of the MQBench "academic" quantizers of the Tiny-ImageNet experiments (reference §2.3):
// the signed symmetric per-tensor integer grid, the MinMax observer's symmetric scale, and tensor-level
// wrappers of the fake-quant kernels (Sources/Kernels/FakeQuantKernels.swift). Used by `PACTQuantizer`,
// `DoReFaQuantizer` and `LSQQuantizer`.

/// torch.finfo(torch.float32).eps, the floor of every MQBench scale.
public let float32Epsilon: Float = 1.1920929e-07

/// The signed symmetric integer grid of MQBench's `symmetry: True` schemes (`MQBench/mqbench/scheme.py:23-34`):
/// [qmin, qmax] = [−2^(b−1), 2^(b−1) − 1], zero point 0. 4 bits → [−8, 7]; the "32-bit" first/last layers
/// → [−2^31, 2^31 − 1]. Post-ReLU activations use only 0…qmax, i.e. 2^(b−1) levels (reference §8.11).
public struct SignedGrid: Sendable, Equatable {
    public let bits: Int
    public let quantMin: Int
    public let quantMax: Int

    public init(bits: Int) {
        precondition((1...32).contains(bits), "signed grid needs 1…32 bits, got \(bits)")
        self.bits = bits
        quantMin = -(1 << (bits - 1))
        quantMax = (1 << (bits - 1)) - 1
    }

    /// (qmax − qmin)/2 as Python computes it (`float(quant_max − quant_min) / 2`, double) and PyTorch then
    /// applies it to a float32 tensor (cast to float32): 7.5 for 4 bits, 2^31 for 32 bits.
    public var halfRange: Float { Float(Double(quantMax - quantMin) / 2) }

    /// [qmin, qmax] as a `GridRange`.
    public var range: GridRange { GridRange(quantMin: quantMin, quantMax: quantMax) }
}

/// An integer grid [qmin, qmax] with zero point 0: the signed grid of a `SignedGrid`, or the unsigned
/// [0, 2^b − 1] that the PACT, LSQ and DoReFa papers use for post-ReLU activations (the opt-in
/// `quantizer_settings.unsigned_activations`; the released MQBench code keeps the signed grid, which leaves
/// post-ReLU activations 2^(b−1) levels, reference §8.11).
public struct GridRange: Sendable, Equatable {
    public let quantMin: Int
    public let quantMax: Int

    public init(quantMin: Int, quantMax: Int) {
        self.quantMin = quantMin
        self.quantMax = quantMax
    }

    /// [0, 2^b − 1]: 4 bits → [0, 15]; 32 bits → [0, 2^32 − 1].
    public static func unsigned(bits: Int) -> GridRange {
        precondition((1...32).contains(bits), "unsigned grid needs 1…32 bits, got \(bits)")
        return GridRange(quantMin: 0, quantMax: (1 << bits) - 1)
    }
}

/// The MinMax observer's affine per-tensor scale for a range that starts at 0 (torch / MQBench
/// `_calculate_qparams`, affine branch, with min_val = min(min, 0) = 0 and z = qmin − round(min/s) = 0):
/// s = max(max_val, 0)/(qmax − qmin), then s = max(s, eps). Float32 arithmetic.
public func minMaxUnsignedScale(max maxValue: Float, range: GridRange) -> Float {
    Swift.max(Swift.max(maxValue, 0) / Float(range.quantMax - range.quantMin), float32Epsilon)
}

/// The grid choice of `unsigned_activations` (an activation quantizer's `signed` buffer, int [1]: 1 signed,
/// 0 unsigned): decided once, at calibration, from the calibration tensor — unsigned when its minimum is
/// ≥ 0 (post-ReLU inputs: every block input, the classifier input), signed otherwise (the input image of
/// the first layer, any input with a negative value). A post-ReLU input can never turn negative later;
/// an input that can be negative shows negative values in a whole calibration batch.
func signedFlag() -> Buffer { scalarBuffer(1, isInteger: true) }

/// The MinMax observer's symmetric per-tensor scale (MQBench `ObserverBase._calculate_qparams`, same as
/// torch's): s = max(−min(min_val, 0), max(max_val, 0)) / ((qmax − qmin)/2), then s = max(s, eps); z = 0.
/// Float32 arithmetic, as on the observer's float32 buffers.
public func minMaxSymmetricScale(min minValue: Float, max maxValue: Float, grid: SignedGrid) -> Float {
    let range = Swift.max(-Swift.min(minValue, 0), Swift.max(maxValue, 0))
    return Swift.max(range / grid.halfRange, float32Epsilon)
}

/// (min, max) of a tensor (any layout).
func tensorMinMax(_ x: Tensor) -> (min: Float, max: Float) {
    x.withUnsafeMutablePointer { minMaxReduce(x: $0, count: x.count) }
}

/// Fake-quantized copy of `x` on `grid` with scale `scale` and zero point 0 (same shape and layout).
func fakeQuantized(_ x: Tensor, scale: Float, grid: SignedGrid) -> Tensor {
    fakeQuantized(x, scale: scale, range: grid.range)
}

/// Fake-quantized copy of `x` on [qmin, qmax] = `range` with scale `scale` and zero point 0.
func fakeQuantized(_ x: Tensor, scale: Float, range grid: GridRange) -> Tensor {
    let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
    withUnsafeMutablePointers(y, x) { [count = x.count] y, x in
        fakeQuantizeForward(y: y, x: x, count: count, scale: scale, quantMin: grid.quantMin, quantMax: grid.quantMax)
    }
    return y
}

/// The masked STE: dx = dy·[qmin ≤ q ≤ qmax], q recomputed from the forward input `x`. `dy` may come in
/// another layout than `x`; dx has x's layout.
func fakeQuantizeGradient(_ dy: Tensor, x: Tensor, scale: Float, grid: SignedGrid) -> Tensor {
    fakeQuantizeGradient(dy, x: x, scale: scale, range: grid.range)
}

/// The masked STE on [qmin, qmax] = `range`.
func fakeQuantizeGradient(_ dy: Tensor, x: Tensor, scale: Float, range grid: GridRange) -> Tensor {
    precondition(dy.shape == x.shape, "fake-quant backward: dy \(dy.shape), input \(x.shape)")
    let g = dy.toLayout(x.layout)
    let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
    withUnsafeMutablePointers(dx, g, x) { [count = x.count] dx, g, x in
        fakeQuantizeBackward(dx: dx, dy: g, x: x, count: count, scale: scale,
                             quantMin: grid.quantMin, quantMax: grid.quantMax)
    }
    return dx
}

/// A one-element float buffer (MQBench stores scales and zero points as shape [1]).
func scalarBuffer(_ v: Float, isInteger: Bool = false) -> Buffer {
    Buffer(Tensor(shape: [1], values: [v]), isInteger: isInteger)
}

/// MQBench's `observer_enabled` flag (uint8 [1]): 1 until the quantizer is calibrated, then 0. Stored in
/// the state so that a resumed checkpoint does not calibrate again.
func observerFlag() -> Buffer { scalarBuffer(1, isInteger: true) }

/// The state-dict prefix of an MQBench quantizer inside its QConv2d / QLinear: torch.nn.qat's
/// `weight_fake_quant` for weights; the activation quantizer (a separate graph module in MQBench) sits
/// under `input_fake_quant` here.
func mqbenchStatePrefix(_ role: QuantizerRole) -> String {
    role == .weight ? "weight_fake_quant" : "input_fake_quant"
}

/// Reads a 0/1 scheme setting (`unsigned_activations`); other values are errors.
func flagSetting(_ settings: [String: Double], _ key: String, scheme: String) throws -> Bool {
    let v = settings[key] ?? 0
    guard v == 0 || v == 1 else {
        throw QuantizationError.invalidArgument("setting '\(key)' of '\(scheme)' must be 0 or 1, got \(v)")
    }
    return v == 1
}

/// Throws unless `bits` is in `supported` (the registry's message).
func checkBits(_ bits: Int, scheme: String, supported: ClosedRange<Int>) throws {
    guard supported.contains(bits) else {
        throw QuantizationError.unsupportedBits(scheme: scheme, bits: bits, supported: supported)
    }
}
