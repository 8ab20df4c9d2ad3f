import Kernels
import NN
import Tensors

/// One feature the objective compares: the student's tap path and the teacher's (equal for equal
/// architectures).
public struct FeaturePair: Sendable, Equatable {
    public var student: String
    public var teacher: String

    public init(student: String, teacher: String) {
        self.student = student
        self.teacher = teacher
    }

    public init(_ path: String) { self.init(student: path, teacher: path) }
}

/// A parameter-free objective that sums one loss per feature pair (AT, NST, SP): L = Σ_pairs L_layer(f_s, f_t),
/// each pair's dL/df_s from `layerLoss`.
public protocol LayerwiseFeatureObjective: Objective {
    var pairs: [FeaturePair] { get }
    /// One pair: f_s, f_t as tapped (any layout) → L_layer and dL/df_s (f_s's shape, any layout: the tap converts).
    static func layerLoss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor)
}

extension LayerwiseFeatureObjective {
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { pairs.map(\.student) }
    public var teacherFeaturePaths: [String] { pairs.map(\.teacher) }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("\(name) needs the teacher's features") }
        var total = 0.0
        var d: [String: Tensor] = [:]
        for p in pairs {
            let (l, g) = Self.layerLoss(student: student.feature(p.student, name), teacher: teacher.feature(p.teacher, name))
            total += l
            d[p.student] = g
        }
        return ObjectiveValue(loss: total, dLogits: nil, dFeatures: d)
    }
}

extension NetworkOutputs {
    /// The tapped feature at `path`, in the layout the model produced it.
    func feature(_ path: String, _ objective: String) -> Tensor {
        guard let f = features[path] else { preconditionFailure("\(objective): no tapped feature at '\(path)'") }
        return f
    }

    /// The tapped feature at `path` in plain layout.
    func plainFeature(_ path: String, _ objective: String) -> Tensor {
        feature(path, objective).toLayout(.plain)
    }
}

/// `F.normalize(v, p=2, dim=-1, eps=1e-12)` on the rows of a [rows, n] matrix, in place: v_r ← v_r/max(‖v_r‖, ε).
/// Returns max(‖v_r‖, ε) per row (what the backward needs).
func normalizeRows(_ v: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Double = 1e-12) -> [Double] {
    var norms = [Double](repeating: 0, count: rows)
    norms.withUnsafeMutableBufferPointer { norms in
        parallelFor(rows, minimumPerThread: rowsPerThread(n)) { r in
            let row = v + r * n
            var s = 0.0
            for i in 0..<n { s += Double(row[i]) * Double(row[i]) }
            let d = max(s.squareRoot(), eps)
            norms[r] = d
            let inv = 1 / d
            for i in 0..<n { row[i] = Float(Double(row[i]) * inv) }
        }
    }
    return norms
}

/// Backward of `normalizeRows`, in place on dn (→ dv): with u = v/d, d = max(‖v‖, ε),
/// dv = (dn − u·⟨u, dn⟩)/d when ‖v‖ > ε, else dn/ε (the clamp passes no gradient to the norm; torch).
func normalizeRowsBackward(_ dn: UnsafeMutablePointer<Float>, normalized u: UnsafePointer<Float>, norms: [Double],
                           n: Int, eps: Double = 1e-12) {
    norms.withUnsafeBufferPointer { norms in
        parallelFor(norms.count, minimumPerThread: rowsPerThread(n)) { r in
            let g = dn + r * n, ur = u + r * n
            let d = norms[r]
            if d > eps {
                var dot = 0.0
                for i in 0..<n { dot += Double(ur[i]) * Double(g[i]) }
                for i in 0..<n { g[i] = Float((Double(g[i]) - Double(ur[i]) * dot) / d) }
            } else {
                for i in 0..<n { g[i] = Float(Double(g[i]) / eps) }
            }
        }
    }
}

/// Rows of length n per thread below which the row loops above stay on one thread (each row is independent,
/// so the split never changes a bit; it only has to pay for the fork).
private func rowsPerThread(_ n: Int) -> Int { max(1, 8192 / max(1, n)) }

/// `F.smooth_l1_loss(x, y)` (mean, β = 1) over n elements: Σ ℓ(x_i − y_i)/n with ℓ(z) = z²/2 for |z| < 1,
/// |z| − 1/2 else. Writes dL/dx_i = clamp(x_i − y_i, −1, 1)/n·scale into `dx` and returns the loss.
func smoothL1(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int, dx: UnsafeMutablePointer<Float>,
              scale: Double = 1) -> Double {
    var s = 0.0
    let inv = scale / Double(n)
    for i in 0..<n {
        let z = Double(x[i]) - Double(y[i])
        if abs(z) < 1 { s += 0.5 * z * z; dx[i] = Float(z * inv) } else { s += abs(z) - 0.5; dx[i] = Float((z > 0 ? 1 : -1) * inv) }
    }
    return s / Double(n)
}

/// Student and teacher maps [B, C, H, W] must agree in batch and spatial size (channels may differ): the
/// authors pool a larger map down to the smaller one, which never triggers for the paper's
/// same-architecture pairs and is not supported here (the objective's factory reports it as an error).
func requireSameMaps(_ s: Tensor, _ t: Tensor, _ objective: String) {
    precondition(s.shape[0] == t.shape[0] && s.shape.dropFirst(2) == t.shape.dropFirst(2),
                 "\(objective): student feature \(s.shape) and teacher feature \(t.shape) differ in batch or spatial size")
}
