import Distillation
import Foundation
import Kernels
import NN
import Tensors
import TestSupport
import Testing

// CRD and CKTF against the authors' modules (kaiqi123/SQAKD `CIFAR/crd`, `distiller_zoo/ST.py`) run by
// scripts/make_kd_golden.py (`crd_main`) on fixed tensors, fixed memory banks and fixed contrast indices:
// loss, dL/df_s, dL/dθ of both embeddings, Z and the memory banks after each call.

/// Tests/DistillationTests/Golden/crd.safetensors, read once.
let crdGolden: SafetensorsFile? = try? SafetensorsFile.read(
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/crd.safetensors"))

func crdGoldenTensor(_ key: String) throws -> Tensor {
    guard let file = crdGolden else { throw GoldenMissing(description: "cannot read Golden/crd.safetensors; \(kdRegenerateHint)") }
    guard let t = file.tensors[key] else { throw GoldenMissing(description: "crd.safetensors has no '\(key)'; \(kdRegenerateHint)") }
    return t
}

/// `<prefix>.criterion_kd…` → `criterion_kd…`.
func crdGoldenState(_ prefix: String) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (k, v) in crdGolden?.tensors ?? [:] where k.hasPrefix(prefix + ".criterion_kd") { out[String(k.dropFirst(prefix.count + 1))] = v }
    return out
}

func goldenContrast(_ key: String) throws -> ContrastIndices {
    let t = try crdGoldenTensor(key)
    return ContrastIndices(rows: t.shape[0], width: t.shape[1], values: t.array.map { Int32($0) })
}

/// atol 1e-5 of the largest |value| (or `scale`), rtol 1e-4, against a crd.safetensors tensor (times `factor`).
func expectCRD(_ actual: Tensor, _ key: String, factor: Float = 1, scale: Float? = nil,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
    let g = try crdGoldenTensor(key)
    let expected = Tensor(shape: g.shape, values: g.array.map { $0 * factor })
    let s = scale ?? expected.array.map { abs($0) }.max() ?? 0
    expectClose(actual, expected, atol: 1e-5 * max(s, 1e-3), rtol: 1e-4, key, hint: kdRegenerateHint, sourceLocation: sourceLocation)
}

func crdLoss(_ key: String) throws -> Double { Double(try crdGoldenTensor(key)[0]) }

@Suite struct ContrastiveObjectiveTests {
    init() { Threads.set(2) }

    /// One criterion, two calls: the first sets Z (mean score × N) and moves the memory rows of its batch;
    /// the second scores against the moved memory with that Z. Embeddings' gradients of each call alone.
    @Test func crdMatchesTheAuthorsTwoCalls() throws {
        var rng = RNG(seed: 1)
        let c = CRDCriterion(studentDimension: 5, teacherDimension: 7, dataCount: 40, embedding: 8, negatives: 6, rng: &rng)
        #expect(c.namedTensors().map(\.name) == ["embed_s.linear.weight", "embed_s.linear.bias", "embed_t.linear.weight",
                                                 "embed_t.linear.bias", "contrast.params", "contrast.memory_v1", "contrast.memory_v2"])
        let root = ModuleList([(name: "criterion_kd", layer: c)])
        try root.load(stateDict: crdGoldenState("crd"), strict: true)
        #expect(c.memory.normalization.student < 0 && c.memory.normalization.teacher < 0)
        for call in 1...2 {
            root.zeroGrad()
            let r = c.loss(student: try crdGoldenTensor("crd.fs\(call)"), teacher: try crdGoldenTensor("crd.ft\(call)"),
                           contrast: try goldenContrast("crd.contrast_idx\(call)"))
            expectClose(r.loss, try crdLoss("crd.loss\(call)"), atol: 1e-5, rtol: 1e-5, "loss \(call)", hint: kdRegenerateHint)
            try expectCRD(r.dStudent, "crd.dfs\(call)")
            let scale = try c.parameters().map { try crdGoldenTensor("crd.grad\(call).criterion_kd.\($0.name)").array.map { abs($0) }.max()! }.max()!
            for (name, p) in c.parameters() { try expectCRD(p.grad, "crd.grad\(call).criterion_kd.\(name)", scale: scale) }
            for (name, t, _) in c.namedTensors() { try expectCRD(t, "crd.after\(call).criterion_kd.\(name)") }
        }
        #expect(c.memory.normalization.student > 0 && c.memory.normalization.teacher > 0)
    }

    /// CKTF: β·CRD(feat[-1]) + θ·[CRD(pool(f0)) + Σ CRD(pool(normalize_batch(group)))], β 1, θ 0.8, with the
    /// ResNet pool (AvgPool2d(8)) and VGG's (global); the criteria under the authors' criterion_kd.1 … .4.
    @Test(arguments: [("cktf", 8), ("cktf_vgg", nil)] as [(String, Int?)])
    func cktfMatchesTheAuthors(name: String, window: Int?) throws {
        let features = ["f0", "g1", "g2", "last"]
        let fs = try Dictionary(uniqueKeysWithValues: features.map { ($0, try crdGoldenTensor("\(name).fs_\($0)")) })
        let ft = try Dictionary(uniqueKeysWithValues: features.map { ($0, try crdGoldenTensor("\(name).ft_\($0)")) })
        var rng = RNG(seed: 1)
        let kinds: [ContrastFeature] = [.pooled(window: window), .batchNormalizedPooled(window: window),
                                        .batchNormalizedPooled(window: window), .flat]
        let heads = zip(features, kinds).map { f, kind -> ContrastiveObjective.Head in
            let d = kind.dimension(of: Array(fs[f]!.shape.dropFirst()))
            return .init(pair: FeaturePair(f), feature: kind,
                         criterion: CRDCriterion(studentDimension: d, teacherDimension: d, dataCount: 40, embedding: 8, negatives: 6, rng: &rng))
        }
        let sampler = try ContrastSampler(labels: (0..<40).map { Int32($0 % 4) }, negatives: 6, rng: RNG(seed: 2))
        let last = ContrastiveObjective(name: "cktf", heads: [heads[3]], names: ["4"], sampler: sampler)
        let st = ContrastiveObjective(name: "cktf_st", heads: Array(heads[0..<3]), names: ["1", "2", "3"], sampler: sampler)
        let mix = LossMix([(1, last), (0.8, st)])
        let module = try #require(mix.module)
        try module.load(stateDict: crdGoldenState(name), strict: true)
        let contrast = try goldenContrast("\(name).contrast_idx")
        let logits = Tensor(shape: [4, 10])
        let vl = last.evaluate(student: NetworkOutputs(logits: logits, features: fs), teacher: NetworkOutputs(logits: logits, features: ft),
                               contrast: contrast)
        let vs = st.evaluate(student: NetworkOutputs(logits: logits, features: fs), teacher: NetworkOutputs(logits: logits, features: ft),
                             contrast: contrast)
        expectClose(vl.loss + 0.8 * vs.loss, try crdLoss("\(name).loss"), atol: 1e-5, rtol: 1e-5, "loss", hint: kdRegenerateHint)
        #expect(Set(vl.dFeatures.keys) == ["last"] && Set(vs.dFeatures.keys) == ["f0", "g1", "g2"])
        try expectCRD(vl.dFeatures["last"]!, "\(name).dfs_last")
        for f in ["f0", "g1", "g2"] { try expectCRD(vs.dFeatures[f]!, "\(name).dfs_\(f)", factor: 1 / 0.8) }
        for (objective, factor) in [(last as any Objective, Float(1)), (st, 1 / 0.8)] {
            let m = try #require(objective.module)
            let scale = try m.parameters().map { try crdGoldenTensor("\(name).grad.\($0.name)").array.map { abs($0) }.max()! }.max()! * factor
            for (n, p) in m.parameters() { try expectCRD(p.grad, "\(name).grad.\(n)", factor: factor, scale: scale) }
        }
        for (n, t, _) in module.namedTensors() { try expectCRD(t, "\(name).after.\(n)") }
    }

    /// Exact-mode negatives: column 0 is the sample, the K others are of other classes, distinct (K ≤ M),
    /// with replacement when K > M; a function of (seed, epoch, sample) alone: the same in any batch and
    /// position (so whatever rows a thread draws), different across epochs and seeds; close to uniform over
    /// the other classes.
    @Test func samplerDrawsOtherClassNegatives() throws {
        let labels: [Int32] = (0..<40).map { Int32(($0 * 7) % 4) }
        let sampler = try ContrastSampler(labels: labels, negatives: 6, rng: RNG(seed: 9))
        let a = sampler.draw(BatchSamples(indices: [3, 17, 22, 8], epoch: 0))
        #expect(a.rows == 4 && a.width == 7)
        for (r, i) in [3, 17, 22, 8].enumerated() {
            let row = Array(a.row(r))
            #expect(row[0] == Int32(i))
            #expect(row.dropFirst().allSatisfy { labels[Int($0)] != labels[i] }, "row \(r): \(row)")
            #expect(Set(row.dropFirst()).count == 6, "row \(r) repeats a negative: \(row)")
        }
        let other = try ContrastSampler(labels: labels, negatives: 6, rng: RNG(seed: 9))
        let b = other.draw(BatchSamples(indices: [22, 5], epoch: 0))
        #expect(Array(b.row(0)) == Array(a.row(2)))
        #expect(other.draw(BatchSamples(indices: [8, 3, 17, 22], epoch: 0)).values == Array(a.row(3) + a.row(0) + a.row(1) + a.row(2)))
        #expect(sampler.draw(BatchSamples(indices: [3, 17, 22, 8], epoch: 1)) != a)
        #expect(try ContrastSampler(labels: labels, negatives: 6, rng: RNG(seed: 10)).draw(BatchSamples(indices: [3, 17, 22, 8], epoch: 0)) != a)

        // 30 negatives per class; K = 40 > 30 draws with replacement, all of other classes.
        let many = try ContrastSampler(labels: labels, negatives: 40, rng: RNG(seed: 9)).draw(BatchSamples(indices: [5], epoch: 0))
        #expect(many.width == 41 && many.row(0).dropFirst().allSatisfy { labels[Int($0)] != labels[5] })
        // K = M: every other-class sample exactly once.
        let all = try ContrastSampler(labels: labels, negatives: 30, rng: RNG(seed: 9)).draw(BatchSamples(indices: [5], epoch: 0))
        #expect(Set(all.row(0).dropFirst()) == Set((0..<40).filter { labels[$0] != labels[5] }.map { Int32($0) }))

        // Frequencies over 2,000 epochs: each of the 30 candidates expected 400 times.
        var counts = [Int](repeating: 0, count: 40)
        for e in 0..<2000 { for v in sampler.draw(BatchSamples(indices: [5], epoch: e)).row(0).dropFirst() { counts[Int(v)] += 1 } }
        let candidates = (0..<40).filter { labels[$0] != labels[5] }
        #expect(candidates.allSatisfy { (320...480).contains(counts[$0]) }, "\(counts)")
        #expect((0..<40).filter { labels[$0] == labels[5] }.allSatisfy { counts[$0] == 0 })

        #expect(throws: ObjectiveError.self) { _ = try ContrastSampler(labels: [2, 2, 2], negatives: 4, rng: RNG(seed: 1)) }
    }

    /// dL/df_s and dL/dθ (both embeddings) of a criterion against central differences, Z fixed by a first
    /// call and the memory left in place (`updateMemory: false`).
    @Test func crdFiniteDifferences() throws {
        var rng = RNG(seed: 4)
        let c = CRDCriterion(studentDimension: 6, teacherDimension: 5, dataCount: 30, embedding: 8, negatives: 7, rng: &rng)
        let sampler = try ContrastSampler(labels: (0..<30).map { Int32($0 % 3) }, negatives: 7, rng: RNG(seed: 5))
        let contrast = sampler.draw(BatchSamples(indices: [4, 9, 20, 13, 1], epoch: 0))
        let fs = randomFeature([5, 6], seed: 6, relu: false), ft = randomFeature([5, 5], seed: 7)
        _ = c.loss(student: fs, teacher: ft, contrast: contrast)
        c.zeroGrad()
        let d = c.loss(student: fs, teacher: ft, contrast: contrast, updateMemory: false).dStudent
        let tensors = [("f_s", fs, d)] + c.parameters().map { ($0.name, $0.parameter.value, $0.parameter.grad.copy()) }
        let failures = finiteDifferenceFailures({ c.loss(student: fs, teacher: ft, contrast: contrast, updateMemory: false).loss },
                                                tensors, h: 2e-3, atol: 1e-4, rtol: 2e-2)
        #expect(failures == [])
    }

    /// The CKTF feature transforms' backward (window pool, global pool, batch normalisation) through a
    /// criterion, against central differences on [B, C, H, W] features. (h = 1e-2: the loss is smooth, and
    /// at h = 2e-3 its float32 rounding, ~1e-6, is 15% of the difference of a 2e-3 gradient.)
    @Test(arguments: [ContrastFeature.pooled(window: 4), .pooled(window: nil), .batchNormalizedPooled(window: 4),
                      .batchNormalizedPooled(window: nil)])
    func cktfFeatureFiniteDifferences(feature: ContrastFeature) throws {
        var rng = RNG(seed: 4)
        let shape = [3, 9, 9]
        let d = feature.dimension(of: shape)
        let c = CRDCriterion(studentDimension: d, teacherDimension: d, dataCount: 20, embedding: 8, negatives: 5, rng: &rng)
        let sampler = try ContrastSampler(labels: (0..<20).map { Int32($0 % 2) }, negatives: 5, rng: RNG(seed: 5))
        let o = ContrastiveObjective(name: "cktf_st", heads: [.init(pair: FeaturePair("f"), feature: feature, criterion: c)],
                                     names: ["1"], sampler: sampler)
        let contrast = sampler.draw(BatchSamples(indices: [4, 9, 13, 1], epoch: 0))
        let fs = randomFeature([4] + shape, seed: 6, relu: false), ft = randomFeature([4] + shape, seed: 7)
        let logits = Tensor(shape: [4, 2])
        func value() -> ObjectiveValue {
            o.evaluate(student: NetworkOutputs(logits: logits, features: ["f": fs]), teacher: NetworkOutputs(logits: logits, features: ["f": ft]),
                       contrast: contrast, updateMemory: false)
        }
        _ = value()
        c.zeroGrad()
        let g = try #require(value().dFeatures["f"])
        #expect(g.shape == fs.shape)
        let failures = finiteDifferenceFailures({ value().loss }, [("f_s", fs, g), ("embed_s.weight", c.embedStudent.linear.weight.value,
                                                                                    c.embedStudent.linear.weight.grad.copy())],
                                                h: 1e-2, atol: 1e-4, rtol: 2e-2)
        #expect(failures == [])
    }
}
