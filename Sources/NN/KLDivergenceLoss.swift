import Foundation
import Tensors

/// Knowledge-distillation loss at temperature T: the reference's `DistillKL`
/// (`CIFAR/distiller_zoo/KD.py`; reference §4.2 and §8 item 23), the whole SQAKD objective up to α.
///
/// Shapes: student logits z_s [B, C], teacher logits z_t [B, C] (both plain).
///
///     p_s = softmax(z_s / T),  p_t = softmax(z_t / T)
///     L   = (T² / B) · Σ_b Σ_c p_t(c) · (log p_t(c) − log p_s(c))      (p_t·log p_t = 0 where p_t = 0)
///     dL/dz_s = (T² / B) · (1/T) · (p_s − p_t) = (T / B) · (p_s − p_t)
///
/// Sum over classes and batch divided by the batch size (`kl_div(size_average=False)/B`), times T².
/// The teacher receives no gradient. Log-softmax is computed in Double with max subtraction.
public struct KLDivergenceLoss {
    public var temperature: Double

    public init(temperature: Double = 4) {
        precondition(temperature > 0, "temperature must be positive, got \(temperature)")
        self.temperature = temperature
    }

    /// Returns the loss and dL/dz_s [B, C].
    public func callAsFunction(student: Tensor, teacher: Tensor) -> (loss: Double, dStudent: Tensor) {
        precondition(student.shape.count == 2 && student.layout == .plain && teacher.layout == .plain
                     && student.shape == teacher.shape,
                     "KL needs plain student and teacher logits of equal shape [B, C], got \(student.shape) \(student.layout) and \(teacher.shape) \(teacher.layout)")
        let b = student.shape[0], c = student.shape[1]
        let t = temperature
        let gradScale = t / Double(max(b, 1))
        let dStudent = Tensor(shape: [b, c], zeroed: false)
        var logPs = [Double](repeating: 0, count: c)
        var logPt = [Double](repeating: 0, count: c)
        var total = 0.0
        withUnsafeMutablePointers(student, teacher, dStudent) { zs, zt, dz in
            for row in 0..<b {
                scaledLogSoftmax(&logPs, zs + row * c, c, t)
                scaledLogSoftmax(&logPt, zt + row * c, c, t)
                let dzr = dz + row * c
                var sum = 0.0
                for j in 0..<c {
                    let pt = exp(logPt[j])
                    if pt != 0 { sum += pt * (logPt[j] - logPs[j]) }   // NaN logits give a NaN loss, not 0
                    dzr[j] = Float(gradScale * (exp(logPs[j]) - pt))
                }
                total += sum
            }
        }
        return (total * t * t / Double(max(b, 1)), dStudent)
    }
}

/// out_j = log_softmax(z / T)_j in Double, with max subtraction.
private func scaledLogSoftmax(_ out: inout [Double], _ z: UnsafePointer<Float>, _ count: Int, _ t: Double) {
    var m = -Double.infinity
    for j in 0..<count {
        out[j] = Double(z[j]) / t
        if out[j] > m || out[j].isNaN { m = out[j] }
    }
    var s = 0.0
    for j in 0..<count { s += exp(out[j] - m) }
    let lse = m + log(s)
    for j in 0..<count { out[j] -= lse }
}
