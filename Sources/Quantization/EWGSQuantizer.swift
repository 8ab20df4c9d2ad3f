import Kernels
import NN
import Tensors

/// EWGS / QIL-style learnable-interval quantizer of the CIFAR experiments (reference §2.2; code:
/// `CIFAR/models/custom_modules.py` `QConv.weight_quantization`, `act_quantization`, `EWGS_discretizer`;
/// paper: Lee et al., "Network Quantization with Element-wise Gradient Scaling", CVPR 2021, on top of
/// Jung et al., "Learning to Quantize Deep Networks by Optimizing Quantization Intervals" (QIL), CVPR 2019).
///
/// One scalar interval [l, u] per tensor (per layer; nothing per channel), L = 2^bits levels.
/// Shapes: x any (weights [K, C, k, k] plain, activations [N, C, H, W] in any layout) → y same shape/layout.
///
/// Forward:
///   n = (x − l)/(u − l),  c = clamp(n, 0, 1),  q = round(c·(L−1))/(L−1)   (round half to even)
///   weights:      y = 2(q − 0.5) ∈ {−1 + 2k/(L−1)}      (parameters `uW`, `lW`)
///   activations:  y = q ∈ {k/(L−1)}, NOT rescaled to [l, u] (parameters `uA`, `lA`; `uA_t`, `lA_t` are
///                 the reference's dead copies: set at calibration, never used, no gradient)
/// Backward (g = ∂L/∂q, i.e. 2·dy for weights, dy for activations; δ = `bkwd_scaling_factorW/A`):
///   g_in = g·(1 + δ·sign(g)·(c − q))                   (EWGS; δ = 0 is the plain STE)
///   dx   = g_in·[0 ≤ n ≤ 1]/(u − l)                    (clamp passes the gradient at both end points)
///   ∂L/∂u = −Σ dx·n,   ∂L/∂l = Σ dx·(n − 1)            (∂n/∂u = −n/(u−l), ∂n/∂l = (n−1)/(u−l))
/// The released code never updates δ (its Hessian update call was removed, §2.2.5), so every reference
/// result trained with δ = 0; that is the default here too. `delta` sets it per layer; the EWGS paper's
/// Hessian-trace δ is `EWGSDeltaEstimator` (Training), which reaches Q through `probe`.
///
/// Calibration (reference `initialize`, §2.2.3), from the tensor the quantizer first sees:
///   weights:     u = 3·std(W), l = −3·std(W)                  (unbiased std over all elements)
///   activations: u = 3·std(x)/√(1 − 2/π), l = min(x)         (whole tensor, batch included); u_t, l_t copy them
/// The learnable output scale belongs to the quantized layer (`QConv2d`), not to this quantizer.
public final class EWGSQuantizer: Quantizer {
    public let role: QuantizerRole
    public let bits: Int
    /// L = 2^bits.
    public let levels: Int
    /// `uW` / `uA` (0-d).
    public let upper: Parameter
    /// `lW` / `lA` (0-d).
    public let lower: Parameter
    /// `uA_t`, `lA_t` (activations only; dead in the reference).
    public let upperT: Parameter?
    public let lowerT: Parameter?
    /// `bkwd_scaling_factorW` / `bkwd_scaling_factorA` (0-d): δ.
    public let scalingFactor: Buffer

    /// The Hessian probe of the δ estimator (`EWGSDeltaEstimator`; upstream `hook_Qvalues`, EWGS
    /// `CIFAR10/custom_modules.py:81-83, 98-100`), nil in training. Q is the discretizer's [0, 1] output
    /// (weights: before the shift 2(Q − 0.5)). When set, a forward returns the output for Q + `perturbation`
    /// (weights y + 2·perturbation, activations y + perturbation; same shape and layout as the input) and a
    /// backward stores ∂L/∂Q = gain·dy (gain 2 for weights, 1 for activations) in `gradient`.
    public var probe: QuantizerProbe?

    /// The input and interval of the last training forward.
    private var savedInput: Tensor?
    private var savedInterval: (lower: Float, upper: Float)?

    public init(role: QuantizerRole, bits: Int, delta: Float = 0) {
        precondition(bits >= 1 && bits <= 16, "EWGSQuantizer supports 1…16 bits, got \(bits)")
        self.role = role
        self.bits = bits
        self.levels = 1 << bits
        upper = Parameter(Tensor(shape: []))
        lower = Parameter(Tensor(shape: []))
        if role == .activation {
            upperT = Parameter(Tensor(shape: []))
            lowerT = Parameter(Tensor(shape: []))
        } else {
            upperT = nil
            lowerT = nil
        }
        scalingFactor = Buffer(Tensor(shape: [], values: [delta]))
    }

    /// δ of the EWGS backward.
    public var delta: Float {
        get { scalingFactor.value[0] }
        set { scalingFactor.value[0] = newValue }
    }

    /// Calibrated once the interval is non-empty (also true after loading a checkpoint).
    public var isCalibrated: Bool { upper.value[0] != lower.value[0] }

    public var curveDefaults: QuantizerCurveDefaults {
        switch role {
        case .weight: return QuantizerCurveDefaults(parameters: ["lW": -1, "uW": 1], from: -1.5, to: 1.5)
        case .activation: return QuantizerCurveDefaults(parameters: ["lA": 0, "uA": 1], from: -0.5, to: 1.5)
        }
    }

    public func calibrate(_ x: Tensor) {
        let stats = x.withUnsafeMutablePointer { tensorStatistics($0, count: x.count) }
        // PyTorch computes these in float32: std() is a float32 tensor, the Python constants are applied to it.
        let std = Float(stats.std)
        switch role {
        case .weight:
            upper.value[0] = std * 3
            lower.value[0] = -std * 3
        case .activation:
            let u = std / Float((1 - 2 / Double.pi).squareRoot()) * 3
            upper.value[0] = u
            lower.value[0] = stats.min
            upperT?.value[0] = u
            lowerT?.value[0] = stats.min
        }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        if !isCalibrated { calibrate(x) }
        let l = lower.value[0], u = upper.value[0]
        let y = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        withUnsafeMutablePointers(y, x) { [count = x.count, signed = role == .weight] y, x in
            intervalQuantizeForward(y: y, x: x, count: count, lower: l, upper: u, levels: levels, signed: signed)
        }
        if let p = probe?.perturbation {
            precondition(p.shape == x.shape && p.layout == x.layout,
                         "EWGSQuantizer probe: perturbation \(p.shape) \(p.layout), input \(x.shape) \(x.layout)")
            let gain: Float = role == .weight ? 2 : 1
            withUnsafeMutablePointers(y, p) { [n = x.count] y, p in
                for i in 0..<n { y[i] += gain * p[i] }
            }
        }
        if mode == .train {
            savedInput = x
            savedInterval = (l, u)
        } else {
            savedInput = nil
            savedInterval = nil
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput, let interval = savedInterval else {
            preconditionFailure("EWGSQuantizer backward without a training forward")
        }
        let l = interval.lower, u = interval.upper
        precondition(dy.shape == x.shape, "EWGSQuantizer backward: dy \(dy.shape), input \(x.shape)")
        let g = dy.toLayout(x.layout)
        let dx = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
        let sums = withUnsafeMutablePointers(dx, g, x) { [count = x.count] dx, g, x in
            intervalQuantizeBackward(dx: dx, dy: g, x: x, count: count, lower: l, upper: u,
                                     levels: levels, gain: role == .weight ? 2 : 1, delta: delta)
        }
        upper.grad[0] += Float(-sums.dxTimesN)
        lower.grad[0] += Float(sums.dxTimesN - sums.dx)
        if let probe {
            let dq = Tensor(shape: x.shape, layout: x.layout, zeroed: false)
            let gain: Float = role == .weight ? 2 : 1
            withUnsafeMutablePointers(dq, g) { [n = x.count] dq, g in
                for i in 0..<n { dq[i] = gain * g[i] }
            }
            probe.gradient = dq
        }
        savedInput = nil
        savedInterval = nil
        return dx
    }

    /// Reference order: `uW, lW` / `uA, lA, uA_t, lA_t`.
    public func parameters() -> [(name: String, parameter: Parameter)] {
        switch role {
        case .weight:
            return [("uW", upper), ("lW", lower)]
        case .activation:
            return [("uA", upper), ("lA", lower), ("uA_t", upperT!), ("lA_t", lowerT!)]
        }
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        [(role == .weight ? "bkwd_scaling_factorW" : "bkwd_scaling_factorA", scalingFactor)]
    }
}

/// The δ estimator's handle on one quantizer's discretized value Q (see `EWGSQuantizer.probe`).
public final class QuantizerProbe {
    /// ε·v added to Q by the next forwards (same shape and layout as the quantizer's input), or nil.
    public var perturbation: Tensor?
    /// ∂L/∂Q of the last backward (the input's shape and layout).
    public var gradient: Tensor?

    public init() {}
}

/// `ewgs`: the CIFAR scheme — `EWGSQuantizer` on the weight and on the input of every quantized conv, and
/// the conv output multiplied by a learnable |output_scale| (reference §2.2).
/// Setting `delta` (default 0 = STE, as the released code trained) sets δ on both quantizers of every layer.
public struct EWGSScheme: QuantizationScheme {
    public init() {}
    public var name: String { "ewgs" }
    public var summary: String {
        "EWGS/QIL learnable interval [l,u] per layer for weights (→[-1,1]) and activations (→[0,1]), output scale; CIFAR (reference §2.2)"
    }
    public var supportedBits: ClosedRange<Int> { 1...16 }
    public var settings: [String: Double] { ["delta": 0] }
    public var usesOutputScale: Bool { true }

    public func makeWeightQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        EWGSQuantizer(role: .weight, bits: bits, delta: Float(settings["delta"] ?? 0))
    }

    public func makeActivationQuantizer(bits: Int, settings: [String: Double]) throws -> Quantizer? {
        EWGSQuantizer(role: .activation, bits: bits, delta: Float(settings["delta"] ?? 0))
    }
}
