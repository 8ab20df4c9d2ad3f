import Kernels
import NN
import Tensors

/// A fully connected layer with fake-quantized weight and input, wrapping a `Linear` whose `weight` / `bias`
/// it trains (for the Tiny-ImageNet style, where the classifier is quantized too).
///
/// Shapes as `Linear`: x [N, in] plain → y [N, out]; W [out, in]; b [out].
/// Forward:  x_q = Q_A(x);  W_q = Q_W(W);  y₀ = x_q·W_qᵀ + b;  y = y₀·|s|  (only with `outputScale`).
/// Backward: g = dy·|s|;  ∂L/∂s += sign(s)·Σ dy·y₀;  db += Σ_n g;  dW_q = gᵀ·x_q → dW += Q_W.backward(dW_q);
///           dx_q = g·W_q → dx = Q_A.backward(dx_q).
/// State: `weight`, `bias`, the quantizers' parameters, `output_scale`; buffers: the quantizers', `init`.
public final class QLinear: QuantizedLayer {
    public let linear: Linear
    public let weightQuantizer: Quantizer?
    public let inputQuantizer: Quantizer?
    public let outputScale: Parameter?
    public let initFlag: Buffer?
    public var calibrationPending = false

    private var savedQuantizedInput: Tensor?
    private var savedQuantizedWeight: Tensor?
    private var savedUnscaledOutput: Tensor?

    public var weight: Parameter { linear.weight }
    public var bias: Parameter? { linear.bias }

    public init(_ linear: Linear, weightQuantizer: Quantizer?, inputQuantizer: Quantizer?, outputScale: Bool) {
        precondition(weightQuantizer.map { $0.role == .weight } ?? true, "QLinear: weight quantizer has role activation")
        precondition(inputQuantizer.map { $0.role == .activation } ?? true, "QLinear: input quantizer has role weight")
        self.linear = linear
        self.weightQuantizer = weightQuantizer
        self.inputQuantizer = inputQuantizer
        self.outputScale = outputScale ? Parameter(Tensor(shape: [], values: [1])) : nil
        self.initFlag = outputScale ? Buffer(Tensor(shape: [1]), isInteger: true) : nil
    }

    private func check(_ x: Tensor) {
        precondition(x.layout == .plain && x.shape.count == 2 && x.shape[1] == linear.inputFeatures,
                     "QLinear(\(linear.inputFeatures)→\(linear.outputFeatures)) expects a plain [N, \(linear.inputFeatures)] input, got \(x)")
    }

    /// y = x·wᵀ + b.
    private func affine(_ x: Tensor, _ w: Tensor) -> Tensor {
        let n = x.shape[0], out = linear.outputFeatures
        let y = Tensor(shape: [n, out], zeroed: false)
        withUnsafeMutablePointers(y, x, w) { [k = linear.inputFeatures] y, x, w in
            sgemm(y, x, transA: false, w, transB: true, m: n, n: out, k: k)
        }
        if let bias = linear.bias {
            withUnsafeMutablePointers(y, bias.value) { y, b in
                for i in 0..<n {
                    let row = y + i * out
                    for j in 0..<out { row[j] += b[j] }
                }
            }
        }
        return y
    }

    /// As `QConv2d`'s calibration pass: calibrates both quantizers, returns the operands of this pass
    /// (`calibrationForward`) and sets output_scale = mean|y(x, W)| / mean|y(x_q, W_q)| when the layer has one.
    @discardableResult
    func calibrationOperands(_ x: Tensor) -> (x: Tensor, w: Tensor) {
        let w = linear.weight.value
        let wq = weightQuantizer?.calibrationForward(w) ?? w
        let xq = inputQuantizer?.calibrationForward(x) ?? x
        if let outputScale {
            let full = affine(x, w), quantized = affine(xq, wq)
            let a = full.withUnsafeMutablePointer { tensorStatistics($0, count: full.count).meanAbs }
            let b = quantized.withUnsafeMutablePointer { tensorStatistics($0, count: quantized.count).meanAbs }
            outputScale.value[0] = Float(a) / Float(b)
        }
        return (xq, wq)
    }

    public func calibrate(_ x: Tensor) {
        check(x)
        calibrationOperands(x)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        check(x)
        let xq: Tensor, wq: Tensor
        if calibrationPending || !(weightQuantizer?.isCalibrated ?? true) || !(inputQuantizer?.isCalibrated ?? true) {
            (xq, wq) = calibrationOperands(x)
            calibrationPending = false
        } else {
            xq = inputQuantizer?.forward(x, mode: mode) ?? x
            wq = weightQuantizer?.forward(linear.weight.value, mode: mode) ?? linear.weight.value
        }
        let y0 = affine(xq, wq)
        var y = y0
        if let outputScale {
            y = Tensor(shape: y0.shape, zeroed: false)
            let s = abs(outputScale.value[0])
            withUnsafeMutablePointers(y, y0) { [n = y0.count] y, y0 in scaleForward(y: y, x: y0, s: s, count: n) }
        }
        savedQuantizedInput = mode == .train ? xq : nil
        savedQuantizedWeight = mode == .train ? wq : nil
        savedUnscaledOutput = mode == .train && outputScale != nil ? y0 : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let xq = savedQuantizedInput, let wq = savedQuantizedWeight else {
            preconditionFailure("QLinear backward without a training forward")
        }
        let n = xq.shape[0], out = linear.outputFeatures, inF = linear.inputFeatures
        precondition(dy.layout == .plain && dy.shape == [n, out], "QLinear backward: dy \(dy), expected plain [\(n), \(out)]")
        var g = dy
        if let outputScale, let y0 = savedUnscaledOutput {
            g = Tensor(shape: dy.shape, zeroed: false)
            let s = outputScale.value[0]
            let sum = withUnsafeMutablePointers(g, dy, y0) { [n = dy.count] g, dy, y0 in
                scaleBackward(dx: g, dy: dy, y0: y0, s: abs(s), count: n)
            }
            let sign: Float = s > 0 ? 1 : (s < 0 ? -1 : 0)
            outputScale.grad[0] += sign * Float(sum)
        }
        let dwq = Tensor(shape: linear.weight.shape)
        withUnsafeMutablePointers(dwq, g, xq) { dwq, g, xq in
            sgemm(dwq, g, transA: true, xq, transB: false, m: out, n: inF, k: n)
        }
        if let bias = linear.bias {
            withUnsafeMutablePointers(g, bias.grad) { g, db in
                for i in 0..<n {
                    let row = g + i * out
                    for j in 0..<out { db[j] += row[j] }
                }
            }
        }
        let dw = weightQuantizer?.backward(dwq) ?? dwq
        withUnsafeMutablePointers(linear.weight.grad, dw) { [n = dw.count] dW, dw in accumulate(y: dW, x: dw, count: n) }
        let dxq = Tensor(shape: [n, inF], zeroed: false)
        withUnsafeMutablePointers(dxq, g, wq) { dxq, g, wq in
            sgemm(dxq, g, transA: false, wq, transB: false, m: n, n: inF, k: out)
        }
        savedQuantizedInput = nil
        savedQuantizedWeight = nil
        savedUnscaledOutput = nil
        return inputQuantizer?.backward(dxq) ?? dxq
    }

    /// The wrapped linear (merged), then the weight and input quantizers (named by their `statePrefix`).
    public var children: [Child] {
        [Child("", linear)] + quantizerChildren
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        childParameters() + (outputScale.map { [(name: "output_scale", parameter: $0)] } ?? [])
    }

    public func buffers() -> [(name: String, buffer: Buffer)] {
        childBuffers() + (initFlag.map { [(name: "init", buffer: $0)] } ?? [])
    }
}

extension QLinear: MACCounting {
    /// The wrapped linear's count.
    public func macs(inputShape: [Int]) -> (macs: Int, outputShape: [Int]) { linear.macs(inputShape: inputShape) }
}
