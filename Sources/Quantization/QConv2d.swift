import Kernels
import NN
import Tensors

/// A convolution with fake-quantized weight and input (the reference's `QConv`, §2.2), wrapping a `Conv2d`
/// whose `weight` / `bias` it trains.
///
/// Shapes as `Conv2d`: x [N, C, H, W] (any layout) → y [N, K, P, Q]; W [K, C/g, k, k]; b [K].
/// Forward:  x_q = Q_A(x);  W_q = Q_W(W);  y₀ = conv(x_q, W_q) + b;  y = y₀·|s|  (s = `output_scale`, only
///           with `outputScale`; the bias is added before the scale, as in the reference).
/// Backward: g = dy·|s|;  ∂L/∂s += sign(s)·Σ dy·y₀;  db += Σ g;  dW_q = Σ_n g ⋆ x_q → dW += Q_W.backward(dW_q);
///           dx_q = conv_transposed(g, W_q) → dx = Q_A.backward(dx_q).
/// A nil quantizer leaves its operand in full precision.
///
/// State (reference QConv keys, in order): `weight`, `bias`, the weight quantizer's parameters (`uW`, `lW`),
/// the input quantizer's (`uA`, `lA`, `uA_t`, `lA_t`), `output_scale`; buffers: the quantizers'
/// (`bkwd_scaling_factorW`, `bkwd_scaling_factorA`), then `init` (int64 [1], 1 only while calibrating).
public final class QConv2d: QuantizedLayer {
    public let conv: Conv2d
    public let weightQuantizer: Quantizer?
    public let inputQuantizer: Quantizer?
    /// `output_scale` (0-d, init 1), or nil.
    public let outputScale: Parameter?
    /// `init` (with `outputScale` only, as in the reference QConv).
    public let initFlag: Buffer?
    public var calibrationPending = false

    /// The last training forward's quantized operands and (with the output scale) unscaled output.
    private var savedQuantizedInput: Tensor?
    private var savedQuantizedWeight: Tensor?
    private var savedUnscaledOutput: Tensor?

    public var weight: Parameter { conv.weight }
    public var bias: Parameter? { conv.bias }

    public init(_ conv: Conv2d, weightQuantizer: Quantizer?, inputQuantizer: Quantizer?, outputScale: Bool) {
        precondition(weightQuantizer.map { $0.role == .weight } ?? true, "QConv2d: weight quantizer has role activation")
        precondition(inputQuantizer.map { $0.role == .activation } ?? true, "QConv2d: input quantizer has role weight")
        self.conv = conv
        self.weightQuantizer = weightQuantizer
        self.inputQuantizer = inputQuantizer
        self.outputScale = outputScale ? Parameter(Tensor(shape: [], values: [1])) : nil
        self.initFlag = outputScale ? Buffer(Tensor(shape: [1]), isInteger: true) : nil
    }

    private func geometry(of x: Tensor) -> ConvGeometry {
        precondition(x.shape.count == 4 && x.shape[1] == conv.inputChannels,
                     "QConv2d(\(conv.inputChannels)→\(conv.outputChannels)) expects [N, \(conv.inputChannels), H, W], got \(x.shape)")
        let g = conv.geometry(batch: x.shape[0], inputHeight: x.shape[2], inputWidth: x.shape[3])
        precondition(g.problem == nil, "QConv2d: \(g.problem ?? "")")
        return g
    }

    /// y = conv(x, w) + b in oneDNN's preferred output block.
    private func convolve(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
        let yBlock = convOutputBlock(g, bias: conv.bias != nil)
        let y = Tensor(shape: g.outputShape, layout: yBlock == 1 ? .plain : .blocked(yBlock), zeroed: false)
        let xBlock = x.layout.block
        withOptionalUnsafeMutablePointer(conv.bias?.value) { b in
            withUnsafeMutablePointers(y, x, w) { y, x, w in convForward(y, yBlock: yBlock, x, xBlock: xBlock, w, b, g) }
        }
        return y
    }

    /// The calibration pass (reference `QConv.initialize`, §2.2.3; MQBench's observer step, §2.3.3):
    /// calibrates both quantizers and returns the operands this pass computes with (`calibrationForward`),
    /// then sets output_scale = mean|conv(x, W) + b| / mean|conv(x_q, W_q) + b| when the layer has one.
    @discardableResult
    func calibrationOperands(_ x: Tensor, _ g: ConvGeometry) -> (x: Tensor, w: Tensor) {
        let w = conv.weight.value
        let wq = weightQuantizer?.calibrationForward(w) ?? w
        let xq = inputQuantizer?.calibrationForward(x) ?? x
        if let outputScale {
            let yFull = convolve(x, w, g), yQuantized = convolve(xq, wq, g)
            let full = yFull.withUnsafeMutablePointer { tensorStatistics($0, count: yFull.count).meanAbs }
            let quantized = yQuantized.withUnsafeMutablePointer { tensorStatistics($0, count: yQuantized.count).meanAbs }
            outputScale.value[0] = Float(full) / Float(quantized)
        }
        return (xq, wq)
    }

    public func calibrate(_ x: Tensor) { calibrationOperands(x, geometry(of: x)) }

    private var needsCalibration: Bool {
        calibrationPending || !(weightQuantizer?.isCalibrated ?? true) || !(inputQuantizer?.isCalibrated ?? true)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let g = geometry(of: x)
        let xq: Tensor, wq: Tensor
        if needsCalibration {
            (xq, wq) = calibrationOperands(x, g)
            calibrationPending = false
        } else {
            xq = inputQuantizer?.forward(x, mode: mode) ?? x
            wq = weightQuantizer?.forward(conv.weight.value, mode: mode) ?? conv.weight.value
        }
        let y0 = convolve(xq, wq, g)
        var y = y0
        if let outputScale {
            y = Tensor(shape: y0.shape, layout: y0.layout, zeroed: false)
            let s = abs(outputScale.value[0])
            withUnsafeMutablePointers(y, y0) { [n = y0.count] y, y0 in scaleForward(y: y, x: y0, s: s, count: n) }
        }
        if mode == .train {
            savedQuantizedInput = xq
            savedQuantizedWeight = wq
            savedUnscaledOutput = outputScale != nil ? y0 : nil
        } else {
            savedQuantizedInput = nil
            savedQuantizedWeight = nil
            savedUnscaledOutput = nil
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let xq = savedQuantizedInput, let wq = savedQuantizedWeight else {
            preconditionFailure("QConv2d backward without a training forward")
        }
        let g = geometry(of: xq)
        precondition(dy.shape == g.outputShape, "QConv2d backward: dy \(dy.shape), expected \(g.outputShape)")
        var dyc = dy
        if let outputScale, let y0 = savedUnscaledOutput {
            let d = dy.toLayout(y0.layout)
            dyc = Tensor(shape: y0.shape, layout: y0.layout, zeroed: false)
            let s = outputScale.value[0]
            let sum = withUnsafeMutablePointers(dyc, d, y0) { [n = y0.count] dyc, d, y0 in
                scaleBackward(dx: dyc, dy: d, y0: y0, s: abs(s), count: n)
            }
            let sign: Float = s > 0 ? 1 : (s < 0 ? -1 : 0)
            outputScale.grad[0] += sign * Float(sum)
        }
        let dwq = Tensor(shape: conv.weight.shape)
        let xBlock = xq.layout.block, dyBlock = dyc.layout.block
        withOptionalUnsafeMutablePointer(conv.bias?.grad) { db in
            withUnsafeMutablePointers(dwq, xq, dyc) { dwq, xq, dyc in
                convBackwardWeights(dwq, db, xq, xBlock: xBlock, dyc, dyBlock: dyBlock, g)
            }
        }
        let dw = weightQuantizer?.backward(dwq) ?? dwq
        withUnsafeMutablePointers(conv.weight.grad, dw) { [n = dw.count] dW, dw in accumulate(y: dW, x: dw, count: n) }
        defer {
            savedQuantizedInput = nil
            savedQuantizedWeight = nil
            savedUnscaledOutput = nil
        }
        if !conv.propagatesInputGradient { return Tensor(shape: [0]) }
        let dxq = Tensor(shape: xq.shape, layout: xq.layout, zeroed: false)
        withUnsafeMutablePointers(dxq, dyc, wq) { dxq, dyc, wq in
            convBackwardData(dxq, dxBlock: xBlock, dyc, dyBlock: dyBlock, wq, g)
        }
        return inputQuantizer?.backward(dxq) ?? dxq
    }

    /// The wrapped conv (merged: its `weight`, `bias` are this layer's), then the weight and input
    /// quantizers (merged for EWGS, `weight_fake_quant` / `input_fake_quant` for MQBench schemes).
    public var children: [Child] {
        [Child("", conv)] + quantizerChildren
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        childParameters() + (outputScale.map { [(name: "output_scale", parameter: $0)] } ?? [])
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        childBuffers() + (initFlag.map { [(name: "init", buffer: $0)] } ?? [])
    }
}

extension QConv2d: MACCounting {
    /// The wrapped conv's count: fake quantization adds no multiply-accumulates.
    public func macs(inputShape: [Int]) -> (macs: Int, outputShape: [Int]) { conv.macs(inputShape: inputShape) }
}
