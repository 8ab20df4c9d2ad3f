import NN
import Tensors

/// FitNet hints (Romero et al.; `CIFAR/distiller_zoo/FitNet.py`, `utils_distill.py:74-80,163-166`): the
/// student's hint-layer feature (feat[hint_layer], hint_layer 2: ResNet `layer2` 32×16×16, VGG `layer2`)
/// through the trainable regressor `ConvReg`, against the teacher's:
///
///     L = mean_{b,c,h,w} (ConvReg(f_s) − f_t)²                   (`nn.MSELoss()`)
///
/// Backward: dy = 2(ConvReg(f_s) − f_t)/N into the regressor's backward, which accumulates its parameter
/// gradients and returns dL/df_s. The regressor runs in train mode (batch statistics), as the authors'
/// `module_list` in `train_quant.py:342-346`.
///
/// `module`: the regressor as `module_list.1` (`conv.weight`, `conv.bias`, `bn.weight`, `bn.bias`, BN buffers),
/// its index in the authors' `module_list` (`utils_distill.py:77`).
public struct HintObjective: Objective {
    public let pair: FeaturePair
    public let regressor: ConvRegressor
    public let module: Layer?

    /// `studentShape`, `teacherShape`: the hint features per image, [C, H, W].
    public init(pair: FeaturePair, studentShape: [Int], teacherShape: [Int], rng: inout RNG) throws {
        self.pair = pair
        regressor = try ConvRegressor(studentShape: studentShape, teacherShape: teacherShape, rng: &rng)
        module = ModuleList([(name: "module_list", layer: ModuleList([(name: "1", layer: regressor)]))])
    }

    public var name: String { "fitnet" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { [pair.student] }
    public var teacherFeaturePaths: [String] { [pair.teacher] }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher, let fs = student.features[pair.student], let ft = teacher.features[pair.teacher] else {
            preconditionFailure("fitnet needs the student's '\(pair.student)' and the teacher's '\(pair.teacher)'")
        }
        let (l, d) = loss(student: fs, teacher: ft.toLayout(.plain))
        return ObjectiveValue(loss: l, dLogits: nil, dFeatures: [pair.student: d])
    }

    /// f_s [B, C_s, H_s, W_s] (any layout), f_t [B, C_t, H_t, W_t] plain → L and dL/df_s (f_s's layout);
    /// accumulates the regressor's gradients.
    public func loss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let y = regressor.forward(fs, mode: .train).toLayout(.plain)
        precondition(y.shape == ft.shape, "fitnet: regressor output \(y.shape) vs teacher feature \(ft.shape)")
        let n = y.count
        let dy = Tensor(shape: y.shape)
        var s = 0.0
        withUnsafeMutablePointers(dy, y, ft) { dy, y, t in
            let k = 2 / Double(n)
            for i in 0..<n {
                let z = Double(y[i]) - Double(t[i])
                s += z * z
                dy[i] = Float(k * z)
            }
        }
        return (s / Double(n), regressor.backward(dy))
    }
}

/// FitNet's convolutional regressor (`CIFAR/models/util.py:131-154`, `use_relu` true): conv → BN → ReLU
/// from the student's hint shape [C_s, H_s, W_s] to the teacher's [C_t, H_t, W_t]:
/// - H_s = 2·H_t: Conv2d(C_s → C_t, 3×3, stride 2, padding 1);
/// - H_s ≥ H_t: Conv2d(C_s → C_t, (1 + H_s − H_t)×(1 + W_s − W_t)), 1×1 for equal sizes (the paper's case);
/// - H_s·2 = H_t (the authors' ConvTranspose2d) and H_s < H_t otherwise: not supported (an error).
/// Conv with bias, PyTorch's default init (U(±1/√fan_in)); BN weight 1, bias 0. Children `conv`, `bn`, `relu`.
public final class ConvRegressor: Layer {
    let body: Sequential

    public init(studentShape s: [Int], teacherShape t: [Int], rng: inout RNG) throws {
        guard s.count == 3, t.count == 3 else {
            throw ObjectiveError("fitnet needs [C, H, W] hint features, got student \(s) and teacher \(t)")
        }
        let conv: Conv2d
        if s[1] == 2 * t[1] {
            conv = Conv2d(inputChannels: s[0], outputChannels: t[0], kernelSize: 3, stride: 2, padding: 1)
        } else if s[1] >= t[1], s[1] - t[1] == s[2] - t[2] {
            conv = Conv2d(inputChannels: s[0], outputChannels: t[0], kernelSize: 1 + s[1] - t[1])
        } else {
            throw ObjectiveError("fitnet: no regressor from the student's \(s) hint to the teacher's \(t) " +
                                 "(supported: equal or larger student maps)")
        }
        conv.resetParameters(rng: &rng)
        body = Sequential([conv, BatchNorm2d(features: t[0]), ReLU()], names: ["conv", "bn", "relu"])
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor { body.forward(x, mode: mode) }
    public func backward(_ dy: Tensor) -> Tensor { body.backward(dy) }
    public var children: [Child] { [Child("", body)] }
}

/// An objective that cannot be built for the given networks; the message is one line for the user.
public struct ObjectiveError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
