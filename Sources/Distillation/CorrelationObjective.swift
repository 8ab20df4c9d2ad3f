import NN
import Tensors

/// Correlation congruence (Peng et al.; `CIFAR/distiller_zoo/CC.py:14-17`, `utils_distill.py:94-103,195-198`)
/// on feat[-1]: both features through their own trainable `LinearEmbed` (Linear D → 128, no normalisation;
/// the teacher's embedding trains too), then with δ = |e_s − e_t| [B, 128]:
///
///     L = mean_{i < B−1} Σ_d δ_{i,d}·δ_{i+1,d}
///
/// Backward: dδ_i = (δ_{i+1}·[i < B−1] + δ_{i−1}·[i > 0])/(B − 1); de_s = dδ·sign(e_s − e_t) (sign(0) = 0,
/// torch's |·|), de_t = −de_s; then each Linear's backward (the student's returns dL/df_s).
///
/// `module`: the embeddings as `module_list.1` (student) and `module_list.2` (teacher), each
/// `linear.weight`, `linear.bias` (`utils_distill.py:96-99`).
public struct CorrelationObjective: Objective {
    public let pair: FeaturePair
    public let embedStudent: Linear
    public let embedTeacher: Linear
    public let module: Layer?

    /// `studentDimension`, `teacherDimension`: the flattened feature sizes; `embedding`: the authors' feat_dim.
    public init(pair: FeaturePair, studentDimension: Int, teacherDimension: Int, embedding: Int = 128, rng: inout RNG) {
        self.pair = pair
        embedStudent = Linear(inputFeatures: studentDimension, outputFeatures: embedding)
        embedTeacher = Linear(inputFeatures: teacherDimension, outputFeatures: embedding)
        embedStudent.resetParameters(rng: &rng)
        embedTeacher.resetParameters(rng: &rng)
        module = ModuleList([(name: "module_list", layer: ModuleList([
            (name: "1", layer: ModuleList([(name: "linear", layer: embedStudent)])),
            (name: "2", layer: ModuleList([(name: "linear", layer: embedTeacher)])),
        ]))])
    }

    public var name: String { "cc" }
    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var featurePaths: [String] { [pair.student] }
    public var teacherFeaturePaths: [String] { [pair.teacher] }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("cc needs the teacher's features") }
        let fs = student.plainFeature(pair.student, name)
        let (l, d) = loss(student: fs, teacher: teacher.plainFeature(pair.teacher, name))
        return ObjectiveValue(loss: l, dLogits: nil, dFeatures: [pair.student: d.reshaped(fs.shape)])
    }

    /// f_s [B, …], f_t [B, …] plain → L and dL/df_s [B, D_s]; accumulates both embeddings' gradients.
    public func loss(student fs: Tensor, teacher ft: Tensor) -> (loss: Double, dStudent: Tensor) {
        let b = fs.shape[0]
        precondition(b >= 2 && ft.shape[0] == b, "cc: student \(fs.shape) and teacher \(ft.shape) need one batch of ≥ 2")
        let es = embedStudent.forward(fs.reshaped([b, fs.count / b]), mode: .train)
        let et = embedTeacher.forward(ft.reshaped([b, ft.count / b]), mode: .train)
        let e = es.shape[1]
        let des = Tensor(shape: es.shape), det = Tensor(shape: et.shape)
        var s = 0.0
        withUnsafeMutablePointers(es, et, des) { es, et, des in
            var delta = [Float](repeating: 0, count: b * e), sign = [Float](repeating: 0, count: b * e)
            for i in 0..<(b * e) {
                let z = es[i] - et[i]
                delta[i] = abs(z)
                sign[i] = z > 0 ? 1 : z < 0 ? -1 : 0
            }
            for i in 0..<(b - 1) { for d in 0..<e { s += Double(delta[i * e + d]) * Double(delta[(i + 1) * e + d]) } }
            let k = 1 / Float(b - 1)
            for i in 0..<b {
                for d in 0..<e {
                    var g: Float = 0
                    if i < b - 1 { g += delta[(i + 1) * e + d] }
                    if i > 0 { g += delta[(i - 1) * e + d] }
                    des[i * e + d] = g * k * sign[i * e + d]
                }
            }
        }
        withUnsafeMutablePointers(det, des) { det, des in for i in 0..<(b * e) { det[i] = -des[i] } }
        _ = embedTeacher.backward(det)
        return (s / Double(b - 1), embedStudent.backward(des))
    }
}
