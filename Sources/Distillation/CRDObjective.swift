import Foundation
import Kernels
import NN
import Tensors

/// The authors' `Embed` (`CIFAR/crd/criterion.py:94-105`, head `linear`): x.view(B, −1) → Linear(D_in → D)
/// → each row divided by its L2 norm (`Normalize`, :146-155; here clamped at 1e-12 like `F.normalize`).
///
/// Shapes: x [B, …] (D_in values per row, any layout) → v [B, D] plain, unit rows.
/// Backward: u = x·Wᵀ + b, v = u/‖u‖: du = (dv − v·⟨v, dv⟩)/‖u‖, then the Linear's (dW += duᵀ·x,
/// db += Σ_b du, dx = du·W), dx in x's shape (plain).
public final class Embed: Layer {
    public let linear: Linear
    private var saved: (output: Tensor, norms: [Double], inputShape: [Int])?

    /// PyTorch's default Linear initialisation from `rng`.
    public init(inputFeatures: Int, outputFeatures: Int, rng: inout RNG) {
        linear = Linear(inputFeatures: inputFeatures, outputFeatures: outputFeatures)
        linear.resetParameters(rng: &rng)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let b = x.shape[0]
        let plain = x.toLayout(.plain)
        let y = linear.forward(plain.shape.count == 2 ? plain : plain.reshaped([b, plain.count / b]), mode: mode)
        let norms = y.withUnsafeMutablePointer { normalizeRows($0, rows: b, n: linear.outputFeatures) }
        saved = mode == .train ? (y, norms, x.shape) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let s = saved else { preconditionFailure("Embed backward without a training forward") }
        precondition(dy.shape == s.output.shape, "Embed backward: dy \(dy.shape), output \(s.output.shape)")
        let du = dy.toLayout(.plain).copy()
        withUnsafeMutablePointers(du, s.output) { du, v in
            normalizeRowsBackward(du, normalized: v, norms: s.norms, n: linear.outputFeatures)
        }
        saved = nil
        let dx = linear.backward(du)
        return dx.shape == s.inputShape ? dx : dx.reshaped(s.inputShape)
    }

    public var children: [Child] { [Child("linear", linear)] }
}

/// One CRD criterion, the authors' `CRDLoss` (`CIFAR/crd/criterion.py:9-58`; reference §6): `embed_s` and
/// `embed_t` (`Embed` to `feat_dim`, both trained in the model optimizer, `utils_distill.py:40-51`) and
/// `contrast` (`ContrastMemory`: the two banks, NCE on each side):
///
///     v_s = embed_s(f_s),  v_t = embed_t(f_t),  L = NCE(out_s) + NCE(out_t)
///
/// f_t takes no gradient (the teacher runs under no_grad, `train_quant.py:406-408`); embed_t does.
/// State names as the authors' module: `embed_s.linear.weight`, …, `contrast.params`,
/// `contrast.memory_v1`, `contrast.memory_v2`.
public final class CRDCriterion: Layer {
    public let embedStudent: Embed
    public let embedTeacher: Embed
    public let memory: ContrastMemory

    /// `dataCount`: N (n_data); `embedding`: feat_dim; `negatives`: nce_k; `temperature`: nce_t;
    /// `momentum`: nce_m. Draws embed_s, embed_t, memory_v1, memory_v2 from `rng`, in that order
    /// (criterion.py:26-37, memory.py:23-25).
    public init(studentDimension: Int, teacherDimension: Int, dataCount: Int, embedding: Int = 128, negatives: Int,
                temperature: Double = 0.1, momentum: Double = 0.5, rng: inout RNG) {
        embedStudent = Embed(inputFeatures: studentDimension, outputFeatures: embedding, rng: &rng)
        embedTeacher = Embed(inputFeatures: teacherDimension, outputFeatures: embedding, rng: &rng)
        memory = ContrastMemory(count: dataCount, dimension: embedding, negatives: negatives, temperature: temperature,
                                momentum: momentum, rng: &rng)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor { preconditionFailure("CRDCriterion has no forward; call loss") }
    public func backward(_ dy: Tensor) -> Tensor { preconditionFailure("CRDCriterion has no backward; call loss") }

    public var children: [Child] {
        [Child("embed_s", embedStudent), Child("embed_t", embedTeacher), Child("contrast", memory)]
    }

    /// f_s [B, …], f_t [B, …] and the batch's contrast indices [B, K+1] (column 0: the samples themselves)
    /// → L and dL/df_s (f_s's shape, plain). Accumulates both embeddings' gradients; sets Z on the first
    /// call; then, with `updateMemory`, moves the banks' rows of the batch's samples (memory.py:75-96).
    public func loss(student fs: Tensor, teacher ft: Tensor, contrast: ContrastIndices,
                     updateMemory: Bool = true) -> (loss: Double, dStudent: Tensor) {
        let vs = embedStudent.forward(fs, mode: .train), vt = embedTeacher.forward(ft, mode: .train)
        let r = memory.contrast(student: vs, teacher: vt, indices: contrast)
        _ = embedTeacher.backward(r.dTeacher)
        let d = embedStudent.backward(r.dStudent)
        if updateMemory {
            memory.update(student: vs, teacher: vt, samples: (0..<contrast.rows).map { Int(contrast.values[$0 * contrast.width]) })
        }
        return (r.loss, d)
    }
}

/// How a CRD criterion reads its feature (reference §6, CKTF row).
public enum ContrastFeature: Sendable, Equatable {
    /// feat[-1] as it is, flattened to [B, D] (crd; `utils_distill.py:158-161`, :234-236).
    case flat
    /// [B, C, H, W] average-pooled over windows of `window`×`window` (stride `window`, floor; nil = the
    /// whole map), then flattened C-major: the models' `flatGroupOut` for f0 (ResNet `nn.AvgPool2d(8)`,
    /// `custom_models_resnet.py:111-113`; VGG `AdaptiveAvgPool2d((1,1))`, `custom_models_vgg.py:194-196`).
    case pooled(window: Int?)
    /// Each (c, h, w) L2-normalised over the batch (`F.normalize(·, p=2, dim=0)`, ε = 1e-12), then pooled
    /// as above: CKTF's block pairs (`distiller_zoo/ST.py:43-75`, st_method Last; pool chosen by the
    /// architecture, :16-23).
    case batchNormalizedPooled(window: Int?)

    /// Values per sample after the transform, for a [C, H, W] (or [D]) feature.
    public func dimension(of shape: [Int]) -> Int {
        switch self {
        case .flat: return shape.reduce(1, *)
        case .pooled(let k), .batchNormalizedPooled(let k):
            guard let k else { return shape[0] }
            return shape[0] * (shape[1] / k) * (shape[2] / k)
        }
    }

    /// x [B, …] plain → y [B, F] and what `backward` needs (the batch norms).
    func apply(_ x: Tensor) -> (y: Tensor, norms: [Double]) {
        let b = x.shape[0]
        switch self {
        case .flat:
            return (x.shape.count == 2 ? x : x.reshaped([b, x.count / b]), [])
        case .pooled(let k):
            return (pool(x, k), [])
        case .batchNormalizedPooled(let k):
            let n = x.copy()
            let norms = n.withUnsafeMutablePointer { normalizeColumns($0, rows: b, columns: x.count / b) }
            return (pool(n, k), norms)
        }
    }

    /// dL/dy [B, F] → dL/dx in x's shape (x: `apply`'s input, norms: its second result).
    func backward(_ dy: Tensor, input x: Tensor, norms: [Double]) -> Tensor {
        switch self {
        case .flat:
            return dy.shape == x.shape ? dy : dy.reshaped(x.shape)
        case .pooled(let k):
            return unpool(dy, like: x, k)
        case .batchNormalizedPooled(let k):
            let dx = unpool(dy, like: x, k)
            let b = x.shape[0], columns = x.count / b
            withUnsafeMutablePointers(dx, x) { dx, x in
                var dots = [Double](repeating: 0, count: columns)
                for r in 0..<b { for j in 0..<columns { dots[j] += Double(x[r * columns + j]) * Double(dx[r * columns + j]) } }
                for r in 0..<b {
                    for j in 0..<columns {
                        let i = r * columns + j, d = norms[j]
                        dx[i] = d > 1e-12 ? Float((Double(dx[i]) - Double(x[i]) * dots[j] / (d * d)) / d) : Float(Double(dx[i]) / 1e-12)
                    }
                }
            }
            return dx
        }
    }

    /// [B, C, H, W] → [B, C·⌊H/k⌋·⌊W/k⌋] (nil: [B, C]), window means.
    private func pool(_ x: Tensor, _ k: Int?) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = k.map { ($0, $0) } ?? (h, w)
        let oh = h / kh, ow = w / kw
        let y = Tensor(shape: [b, c * oh * ow])
        let inv = 1 / Double(kh * kw)
        withUnsafeMutablePointers(y, x) { y, x in
            for p in 0..<(b * c) {
                let plane = x + p * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var s = 0.0
                        for i in 0..<kh { for j in 0..<kw { s += Double(plane[(oy * kh + i) * w + ox * kw + j]) } }
                        y[(p * oh + oy) * ow + ox] = Float(s * inv)
                    }
                }
            }
        }
        return y
    }

    /// Backward of `pool`: each input of a window gets dy/(k·k); inputs outside every window get 0.
    private func unpool(_ dy: Tensor, like x: Tensor, _ k: Int?) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = k.map { ($0, $0) } ?? (h, w)
        let oh = h / kh, ow = w / kw
        let dx = Tensor(shape: x.shape)
        let inv = 1 / Float(kh * kw)
        withUnsafeMutablePointers(dx, dy) { dx, dy in
            for p in 0..<(b * c) {
                let plane = dx + p * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let g = dy[(p * oh + oy) * ow + ox] * inv
                        for i in 0..<kh { for j in 0..<kw { plane[(oy * kh + i) * w + ox * kw + j] = g } }
                    }
                }
            }
        }
        return dx
    }
}

/// `F.normalize(x, p=2, dim=0)` on a [rows, columns] matrix, in place: x_rj ← x_rj/max(‖x_·j‖, ε). Returns
/// max(‖x_·j‖, ε) per column.
func normalizeColumns(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, eps: Double = 1e-12) -> [Double] {
    var sums = [Double](repeating: 0, count: columns)
    for r in 0..<rows { for j in 0..<columns { sums[j] += Double(x[r * columns + j]) * Double(x[r * columns + j]) } }
    let norms = sums.map { max($0.squareRoot(), eps) }
    for r in 0..<rows { for j in 0..<columns { x[r * columns + j] = Float(Double(x[r * columns + j]) / norms[j]) } }
    return norms
}

/// Contrastive representation distillation: a sum of CRD criteria, one per feature pair, sharing the
/// batch's contrast indices (`ContrastSampler`).
///
/// - `crd` (`utils_distill.py:40-51,158-161`): one criterion on feat[-1] (`flat`), K = 16384.
/// - `cktf` (the authors' `crdst`, `utils_distill.py:53-71,220-239`, `train_quant.py:417-419`): two of these
///   objectives in the loss mix, β·CRD(feat[-1]) + θ·Σ CRD(intermediates), the intermediates being f0
///   (`pooled`) and every group's last block paired with the teacher's (`batchNormalizedPooled`), K = 4096.
///
/// `module`: the criteria under `criterion_kd` (crd: `criterion_kd.embed_s.linear.weight`, …; cktf: the
/// authors' `criterion_kd.1` … `criterion_kd.5`, index 0 being the parameter-free SimilarityTransfer).
/// Its state, memory banks and Z included, is part of a run's training state, so a resumed run continues
/// bit-identically.
public struct ContrastiveObjective: Objective {
    public struct Head {
        public var pair: FeaturePair
        public var feature: ContrastFeature
        public var criterion: CRDCriterion

        public init(pair: FeaturePair, feature: ContrastFeature, criterion: CRDCriterion) {
            self.pair = pair
            self.feature = feature
            self.criterion = criterion
        }
    }

    public let name: String
    public let heads: [Head]
    public let sampler: ContrastSampler
    public let module: Layer?

    /// `names`: each head's name under `criterion_kd` ("" merges a single criterion into it).
    public init(name: String, heads: [Head], names: [String], sampler: ContrastSampler) {
        precondition(heads.count == names.count && !heads.isEmpty, "\(name): \(heads.count) heads, \(names.count) names")
        self.name = name
        self.heads = heads
        self.sampler = sampler
        module = ModuleList([(name: "criterion_kd", layer: ModuleList(zip(names, heads).map { (name: $0, layer: $1.criterion as Layer) }))])
    }

    public var usesLabels: Bool { false }
    public var usesTeacher: Bool { true }
    public var usesSamples: Bool { true }
    public var featurePaths: [String] { heads.map(\.pair.student) }
    public var teacherFeaturePaths: [String] { heads.map(\.pair.teacher) }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32]) -> ObjectiveValue {
        evaluate(student: student, teacher: teacher, labels: labels, samples: nil)
    }

    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32], samples: BatchSamples?) -> ObjectiveValue {
        guard let teacher else { preconditionFailure("\(name) needs the teacher's features") }
        guard let samples else { preconditionFailure("\(name) needs the batch's sample indices") }
        return evaluate(student: student, teacher: teacher, contrast: sampler.draw(samples))
    }

    /// The loss with given contrast indices [B, K+1] (column 0: the batch's own samples).
    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs, contrast: ContrastIndices, updateMemory: Bool = true) -> ObjectiveValue {
        var total = 0.0
        var d: [String: Tensor] = [:]
        for h in heads {
            let fs = student.plainFeature(h.pair.student, name), ft = teacher.plainFeature(h.pair.teacher, name)
            precondition(fs.shape[0] == contrast.rows && ft.shape[0] == contrast.rows,
                         "\(name): features \(fs.shape), \(ft.shape) for \(contrast.rows) contrast rows")
            let s = h.feature.apply(fs), t = h.feature.apply(ft)
            let (l, dy) = h.criterion.loss(student: s.y, teacher: t.y, contrast: contrast, updateMemory: updateMemory)
            total += l
            let dx = h.feature.backward(dy, input: fs, norms: s.norms)
            if let g = d[h.pair.student] {
                let n = g.count
                withUnsafeMutablePointers(g, dx) { g, dx in for i in 0..<n { g[i] += dx[i] } }
            } else {
                d[h.pair.student] = dx
            }
        }
        return ObjectiveValue(loss: total, dLogits: nil, dFeatures: d)
    }
}
