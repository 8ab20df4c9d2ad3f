import NN
import Tensors

/// The authors' general training loss (`train_quant.py:415-422`, reference §4.2 and §5.2):
///
///     L = γ·CE(z_s, y) + α·KL_T(z_s, z_t) + β·L_kd(student, teacher)
///
/// as a weighted sum of objectives. Terms of weight 0 are dropped, not multiplied by zero: SQAKD (γ = 0,
/// β = 0) then computes no cross-entropy and reads no label at all, and a term of weight 1 is used as it is
/// (its loss and gradients unscaled), so a one-term mix gives bit-for-bit the term's own numbers.
/// Gradients add up in term order: dL/dz_s = Σ w_i·dL_i/dz_s, and likewise per student feature and for
/// the terms' own parameters (`Objective.module`), which receive w_i·dL_i/dθ.
public struct LossMix {
    public struct Term {
        public var weight: Double
        public var objective: any Objective
    }

    /// The terms of non-zero weight, in order.
    public let terms: [Term]

    public init(_ terms: [(weight: Double, objective: any Objective)]) {
        self.terms = terms.filter { $0.weight != 0 }.map { Term(weight: $0.weight, objective: $0.objective) }
        precondition(!self.terms.isEmpty, "a loss mix needs at least one term of non-zero weight")
    }

    /// γ·CE + α·KL_T + β·other, the authors' weights by name.
    public static func authors(gamma: Double, crossEntropy: CrossEntropyObjective, alpha: Double,
                               softTarget: SoftTargetObjective, beta: Double = 0, other: (any Objective)? = nil) -> LossMix {
        var terms: [(weight: Double, objective: any Objective)] = [(gamma, crossEntropy), (alpha, softTarget)]
        if let other { terms.append((beta, other)) }
        return LossMix(terms)
    }

    public var usesLabels: Bool { terms.contains { $0.objective.usesLabels } }
    public var usesTeacher: Bool { terms.contains { $0.objective.usesTeacher } }
    /// Every tap path some term reads, in first-use order.
    public var featurePaths: [String] {
        var seen = Set<String>()
        return terms.flatMap(\.objective.featurePaths).filter { seen.insert($0).inserted }
    }

    /// Every teacher tap path some term reads, in first-use order.
    public var teacherFeaturePaths: [String] {
        var seen = Set<String>()
        return terms.flatMap(\.objective.teacherFeaturePaths).filter { seen.insert($0).inserted }
    }

    /// The terms' trainable modules (`Objective.module`) as one tree with their own names (each term's tree
    /// merged at the root), or nil when no term has any.
    public var module: Layer? {
        let modules = terms.compactMap(\.objective.module)
        return modules.isEmpty ? nil : ModuleList(modules.map { (name: "", layer: $0) })
    }

    /// The terms' trainable modules (`Objective.trainableModule`) as one tree, or nil.
    public var trainableModule: Layer? {
        let modules = terms.compactMap(\.objective.trainableModule)
        return modules.isEmpty ? nil : ModuleList(modules.map { (name: "", layer: $0) })
    }

    public var usesSamples: Bool { terms.contains { $0.objective.usesSamples } }

    /// Σ w_i·L_i and its gradients. `teacher` must be given when `usesTeacher`, `samples` when `usesSamples`.
    public func evaluate(student: NetworkOutputs, teacher: NetworkOutputs?, labels: [Int32], samples: BatchSamples? = nil) -> ObjectiveValue {
        var total: Double?
        var dLogits: Tensor?
        var dFeatures: [String: Tensor] = [:]
        for term in terms {
            let w = term.weight
            // The term's own parameters receive w·dL_i/dθ: their gradient before the call is kept, the
            // call's contribution scaled (exactly w·g when they start at zero, as after `zeroGrad`).
            let owned = w == 1 ? [] : (term.objective.trainableModule?.parameters().map(\.parameter) ?? [])
            let before = owned.map { $0.grad.copy() }
            let v = term.objective.evaluate(student: student, teacher: term.objective.usesTeacher ? teacher : nil,
                                            labels: labels, samples: samples)
            for (p, b) in zip(owned, before) { scaleIncrement(p.grad, since: b, by: w) }
            let l = w == 1 ? v.loss : w * v.loss
            total = total.map { $0 + l } ?? l
            if let d = v.dLogits { dLogits = accumulate(dLogits, d, w) }
            for (path, d) in v.dFeatures { dFeatures[path] = accumulate(dFeatures[path], d, w) }
        }
        return ObjectiveValue(loss: total ?? 0, dLogits: dLogits, dFeatures: dFeatures)
    }
}

/// g ← b + w·(g − b), elementwise.
private func scaleIncrement(_ g: Tensor, since b: Tensor, by w: Double) {
    let a = Float(w)
    withUnsafeMutablePointers(g, b) { [n = g.count] g, b in for i in 0..<n { g[i] = b[i] + a * (g[i] - b[i]) } }
}

/// sum + w·d, reusing `d` as the result when there is no sum yet (scaled in place unless w = 1).
private func accumulate(_ sum: Tensor?, _ d: Tensor, _ w: Double) -> Tensor {
    let a = Float(w)
    guard let sum else {
        if w != 1 { d.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] *= a } } }
        return d
    }
    precondition(sum.shape == d.shape && sum.layout == d.layout,
                 "gradients of one tensor must agree in shape: \(sum.shape) \(sum.layout) vs \(d.shape) \(d.layout)")
    sum.withUnsafeMutableBufferPointer { s in
        d.withUnsafeMutableBufferPointer { g in for i in s.indices { s[i] += a * g[i] } }
    }
    return sum
}
