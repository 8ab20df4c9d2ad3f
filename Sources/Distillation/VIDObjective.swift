import Foundation
import NN
import Tensors

/// Variational information distillation (Ahn et al.; `CIFAR/distiller_zoo/VID.py:9-54`, built per pair of
/// feat[1:-1] as `VIDLoss(C_s, C_t, C_t)` by `utils_distill.py:105-113`). Per pair f_s [B, C_s, H, W],
/// f_t [B, C_t, H, W]:
///
///     μ  = regressor(f_s)          (1×1 conv C_s→C_t, ReLU, 1×1 C_t→C_t, ReLU, 1×1 C_t→C_t; no bias)
///     σ² = softplus(log_scale) + 1e-5                   (one per teacher channel)
///     L_layer = mean_{b,c,h,w} ½·((μ − f_t)²/σ²_c + log σ²_c)
///     L  = Σ_layers L_layer
///
/// Backward: dμ = (μ − f_t)/(σ²·N) into the regressor (→ dL/df_s and its weight gradients);
/// dlog_scale_c = Σ_{b,h,w} ½·(1/σ²_c − (μ − f_t)²/σ⁴_c)/N · sigmoid(log_scale_c).
/// log_scale starts at log(e^{5 − 1e-5} − 1) (σ² = 5); convs use PyTorch's default init.
///
/// `module`: one `VIDModule` per pair as `criterion_kd.<i>` (`regressor.0.weight`, `regressor.2.weight`,
/// `regressor.4.weight`, `log_scale`): the authors keep them in `criterion_kd` (an `nn.ModuleList`,
/// `utils_distill.py:108`), not in `module_list`.
public struct VIDObjective: Objective {
    public let pairs: [FeaturePair]
    public let regressors: [VIDModule]
    public let module: Layer?

    /// `channels[i]`: (student, teacher) channel counts of pair i.
    public init(pairs: [FeaturePair], channels: [(student: Int, teacher: Int)], rng: inout RNG) {
        precondition(pairs.count == channels.count, "vid: one channel pair per feature pair")
        self.pairs = pairs
        regressors = channels.map { VIDModule(inputChannels: $0.student, middleChannels: $0.teacher, targetChannels: $0.teacher, rng: &rng) }
        module = ModuleList([(name: "criterion_kd",
                              layer: ModuleList(regressors.enumerated().map { (name: "\($0.offset)", layer: $0.element as Layer) }))])
    }

    public var name: String { "vid" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { pairs.map(\.student) }
    public var teacherFeaturePaths: [String] { pairs.map(\.teacher) }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("vid needs the teacher's features") }
        var total = 0.0
        var d: [String: Tensor] = [:]
        for (p, r) in zip(pairs, regressors) {
            guard let fs = student.features[p.student] else { preconditionFailure("vid: no student feature '\(p.student)'") }
            let (l, g) = r.loss(student: fs, teacher: teacher.plainFeature(p.teacher, name))
            total += l
            d[p.student] = g
        }
        return ObjectiveValue(loss: total, dLogits: nil, dFeatures: d)
    }
}

/// One VID term's parameters (`VIDLoss` of `VID.py:12-36`): `regressor` (children 0…4 as the authors'
/// `nn.Sequential`) and `log_scale` [C_t].
public final class VIDModule: Layer {
    public let regressor: Sequential
    public let logScale: Parameter
    public static let eps = 1e-5

    public init(inputChannels: Int, middleChannels: Int, targetChannels: Int, initialVariance: Double = 5, rng: inout RNG) {
        let convs = [Conv2d(inputChannels: inputChannels, outputChannels: middleChannels, kernelSize: 1, bias: false),
                     Conv2d(inputChannels: middleChannels, outputChannels: middleChannels, kernelSize: 1, bias: false),
                     Conv2d(inputChannels: middleChannels, outputChannels: targetChannels, kernelSize: 1, bias: false)]
        for c in convs { c.resetParameters(rng: &rng) }
        regressor = Sequential([convs[0], ReLU(), convs[1], ReLU(), convs[2]])
        let v = Float(Foundation.log(Foundation.exp(initialVariance - Self.eps) - 1))
        logScale = Parameter(Tensor(shape: [targetChannels], values: [Float](repeating: v, count: targetChannels)))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor { regressor.forward(x, mode: mode) }
    public func backward(_ dy: Tensor) -> Tensor { regressor.backward(dy) }
    public var children: [Child] { [Child("regressor", regressor)] }
    public func parameters() -> [(name: String, parameter: Parameter)] { childParameters() + [("log_scale", logScale)] }

    /// f_s [B, C_s, H, W] (any layout), f_t [B, C_t, H, W] plain → L_layer and dL/df_s (f_s's layout);
    /// accumulates the regressor's and log_scale's gradients.
    public func loss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let mu = forward(fs, mode: .train).toLayout(.plain)
        precondition(mu.shape == ft.shape, "vid: regressor output \(mu.shape) vs teacher feature \(ft.shape)")
        let b = mu.shape[0], c = mu.shape[1], hw = mu.count / (b * c)
        let n = Double(mu.count)
        let dmu = Tensor(shape: mu.shape)
        var s = 0.0
        withUnsafeMutablePointers(dmu, mu, ft) { dmu, mu, t in
            logScale.value.withUnsafeBufferPointer { ls in
                logScale.grad.withUnsafeMutableBufferPointer { dls in
                    for ch in 0..<c {
                        let x = Double(ls[ch])
                        // softplus as torch.log(1 + torch.exp(x)) (`VID.py:48`).
                        let variance = Foundation.log(1 + Foundation.exp(x)) + Self.eps
                        let logVariance = Foundation.log(variance)
                        var sq = 0.0
                        for bi in 0..<b {
                            let o = (bi * c + ch) * hw
                            for i in 0..<hw {
                                let z = Double(mu[o + i]) - Double(t[o + i])
                                sq += z * z
                                dmu[o + i] = Float(z / (variance * n))
                            }
                        }
                        let m = Double(b * hw)
                        s += 0.5 * (sq / variance + m * logVariance)
                        let dVariance = 0.5 * (m / variance - sq / (variance * variance)) / n
                        dls[ch] += Float(dVariance / (1 + Foundation.exp(-x)))
                    }
                }
            }
        }
        return (s / n, backward(dmu))
    }
}
