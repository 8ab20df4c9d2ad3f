import NN
import Tensors

/// An activation fake-quantizer on its own: y = Q_A(x), for a tensor that several layers read (MQBench's
/// `*_post_act_fake_quantizer` module, inserted once after the tensor's producer and read by every user of
/// the tensor, reference §2.3.1). The consumers of the tensor then carry no input quantizer of their own.
///
/// Shapes: x [N, ...] (any layout) → y, same shape and layout. Backward: dx = Q_A.backward(dy), where dy is
/// the sum of the gradients of all the tensor's readers (the owning block adds them before calling).
/// State: the quantizer's, under its `statePrefix` (`input_fake_quant.scale`, ...).
public final class QuantizedActivation: QuantizedLayer {
    public let quantizer: Quantizer
    public var calibrationPending = false

    public init(_ quantizer: Quantizer) {
        precondition(quantizer.role == .activation, "QuantizedActivation: the quantizer has role weight")
        self.quantizer = quantizer
    }

    public var weightQuantizer: Quantizer? { nil }
    public var inputQuantizer: Quantizer? { quantizer }
    public var outputScale: Parameter? { nil }
    public var initFlag: Buffer? { nil }

    public func calibrate(_ x: Tensor) { quantizer.calibrate(x) }

    /// The calibration pass returns what the quantizer computes with while calibrating (`calibrationForward`:
    /// MQBench's observer step, fake-quant off); afterwards Q_A(x).
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        if calibrationPending || !quantizer.isCalibrated {
            calibrationPending = false
            return quantizer.calibrationForward(x)
        }
        return quantizer.forward(x, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor { quantizer.backward(dy) }

    public var children: [Child] { quantizerChildren }
}
