import Foundation
import Tensors

/// Mean cross-entropy over a batch, with optional label smoothing (PyTorch's
/// `nn.CrossEntropyLoss(label_smoothing: ε)`).
///
/// Shapes: logits z [N, C] (plain), labels y [N] with 0 ≤ y < C.
///
///     target t_c = (1 − ε)·[c = y] + ε/C
///     L          = (1/N) Σ_n Σ_c −t_c · log_softmax(z_n)_c
///                = (1/N) Σ_n ( lse(z_n) − (1 − ε)·z_{n,y} − (ε/C)·Σ_c z_{n,c} )
///     dL/dz_{n,c} = (softmax(z_n)_c − t_c) / N
///
/// ε = 0 is the CIFAR loss (`nn.CrossEntropyLoss()`, reference §4.1/§4.2). The reference's
/// Tiny-ImageNet `LabelSmoothCELoss(0.1, C)` (§4.3) fills the target with ε/C and puts 1 − ε + ε/C on the
/// true class, which is the same target, so it is `CrossEntropyLoss(labelSmoothing: 0.1)`.
///
/// The log-softmax subtracts the row maximum and the loss is accumulated in Double; the gradient is
/// rounded to float32 once per element.
public struct CrossEntropyLoss {
    public var labelSmoothing: Double

    public init(labelSmoothing: Double = 0) {
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "label smoothing \(labelSmoothing) outside [0, 1]")
        self.labelSmoothing = labelSmoothing
    }

    /// Returns the mean loss and dL/dlogits [N, C].
    public func callAsFunction(_ logits: Tensor, labels: [Int32]) -> (loss: Double, dLogits: Tensor) {
        precondition(logits.shape.count == 2 && logits.layout == .plain,
                     "cross-entropy needs plain logits [N, C], got \(logits.shape) \(logits.layout)")
        let n = logits.shape[0], c = logits.shape[1]
        precondition(labels.count == n, "\(labels.count) labels for logits \(logits.shape)")
        let eps = labelSmoothing
        let off = eps / Double(c)
        let on = 1 - eps + off
        let dLogits = Tensor(shape: [n, c], zeroed: false)
        var total = 0.0
        withUnsafeMutablePointers(logits, dLogits) { z, dz in
            for row in 0..<n {
                let y = Int(labels[row])
                precondition(y >= 0 && y < c, "label \(y) at row \(row) outside 0..<\(c)")
                let zr = z + row * c, dzr = dz + row * c
                let lse = lossLogSumExp(zr, c)
                var sumZ = 0.0
                for j in 0..<c { sumZ += Double(zr[j]) }
                total += lse - (1 - eps) * Double(zr[y]) - off * sumZ
                for j in 0..<c {
                    let p = exp(Double(zr[j]) - lse)
                    dzr[j] = Float((p - (j == y ? on : off)) / Double(n))
                }
            }
        }
        return (total / Double(max(n, 1)), dLogits)
    }

    public func callAsFunction(_ logits: Tensor, labels: [Int]) -> (loss: Double, dLogits: Tensor) {
        self(logits, labels: labels.map { Int32(truncatingIfNeeded: $0) })
    }
}

/// log Σ_j exp(z_j) over `count` floats, computed in Double around the maximum.
/// A row containing NaN gives NaN; a row of −∞ gives −∞.
@inline(__always)
func lossLogSumExp(_ z: UnsafePointer<Float>, _ count: Int) -> Double {
    var m = -Double.infinity
    for j in 0..<count {
        let v = Double(z[j])
        if v > m || v.isNaN { m = v }
        if m.isNaN { return .nan }
    }
    if !m.isFinite { return m }
    var s = 0.0
    for j in 0..<count { s += exp(Double(z[j]) - m) }
    return m + log(s)
}

/// Number of rows whose label is among the `k` largest logits (top-k accuracy counter).
///
/// Rule: the label's rank is the number of classes with a strictly larger logit plus the number of
/// classes with an equal logit and a smaller index; the row counts when rank < k. For distinct logits
/// this is exactly `torch.topk`; on ties the lower class index wins (as `torch.argmax` does), so a
/// collapsed network emitting constant logits scores only on class 0 instead of everywhere. A NaN logit
/// ranks above every number (as in `torch.topk`), and a row whose label logit is NaN never counts.
public func topKCorrect(_ logits: Tensor, labels: [Int32], k: Int) -> Int {
    precondition(logits.shape.count == 2 && logits.layout == .plain,
                 "top-k needs plain logits [N, C], got \(logits.shape) \(logits.layout)")
    let n = logits.shape[0], c = logits.shape[1]
    precondition(labels.count == n, "\(labels.count) labels for logits \(logits.shape)")
    var correct = 0
    logits.withUnsafeMutablePointer { z in
        for row in 0..<n {
            let y = Int(labels[row])
            precondition(y >= 0 && y < c, "label \(y) at row \(row) outside 0..<\(c)")
            let zr = z + row * c
            let zy = zr[y]
            if zy.isNaN { continue }
            var rank = 0
            for j in 0..<c where j != y {
                let v = zr[j]
                if v > zy || v.isNaN || (v == zy && j < y) { rank += 1 }
            }
            if rank < k { correct += 1 }
        }
    }
    return correct
}

public func topKCorrect(_ logits: Tensor, labels: [Int], k: Int) -> Int {
    topKCorrect(logits, labels: labels.map { Int32(truncatingIfNeeded: $0) }, k: k)
}
