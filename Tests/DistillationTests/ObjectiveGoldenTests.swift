import Distillation
import Foundation
import NN
import Tensors
import TestSupport
import Testing

// The distillation objectives against the authors' PyTorch modules (kaiqi123/SQAKD `CIFAR/distiller_zoo`),
// run by scripts/make_kd_golden.py on fixed tensors: loss, dL/df_s and dL/dθ of each module parameter.

let kdRegenerateHint = "regenerate with `/usr/bin/python3 scripts/make_kd_golden.py` (repository root)"

/// Tests/DistillationTests/Golden/kd.safetensors, read once.
let kdGolden: SafetensorsFile? = try? SafetensorsFile.read(
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/kd.safetensors"))

func golden(_ key: String) throws -> Tensor {
    guard let file = kdGolden else { throw GoldenMissing(description: "cannot read Golden/kd.safetensors; \(kdRegenerateHint)") }
    guard let t = file.tensors[key] else { throw GoldenMissing(description: "kd.safetensors has no '\(key)'; \(kdRegenerateHint)") }
    return t
}

/// The golden tensors of `prefix` (`fitnet.module_list.1.conv.weight` → `module_list.1.conv.weight`), without `grad.`.
func goldenState(_ prefix: String, under root: String) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (k, v) in kdGolden?.tensors ?? [:] where k.hasPrefix(prefix + "." + root) { out[String(k.dropFirst(prefix.count + 1))] = v }
    return out
}

struct GoldenMissing: Error, CustomStringConvertible { let description: String }

/// Loss (0-d golden) and gradient tolerances: float32 arithmetic in a different order than torch's.
func expectLoss(_ actual: Double, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = Double(try golden(key)[0])
    expectClose(actual, expected, atol: 1e-6, rtol: 1e-5, key, hint: kdRegenerateHint, sourceLocation: sourceLocation)
}

/// atol = 1e-5 of the largest |value| of the tensor (or of `scale`, when given: a module's largest
/// gradient, for a tensor that is zero up to rounding such as a conv bias before BN).
func expectGradient(_ actual: Tensor, _ key: String, scale: Float? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try golden(key)
    let s = scale ?? expected.array.map { abs($0) }.max() ?? 0
    expectClose(actual, expected, atol: 1e-5 * max(s, 1e-3), rtol: 1e-4, key, hint: kdRegenerateHint,
                sourceLocation: sourceLocation)
}

/// Every parameter gradient of `module` against `<case>.grad.<name>`, atol relative to the module's largest.
func expectParameterGradients(_ module: Layer, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let scale = try module.parameters().map { try golden("\(name).grad.\($0.name)").array.map { abs($0) }.max() ?? 0 }.max() ?? 0
    for (p, param) in module.parameters() {
        try expectGradient(param.grad, "\(name).grad.\(p)", scale: scale, sourceLocation: sourceLocation)
    }
}

@Suite struct ObjectiveGoldenTests {
    /// AT, NST and SP: per-layer losses summed over the golden's layers (the authors' `sum(loss_group)`).
    @Test(arguments: ["at", "nst", "sp"])
    func layerwiseObjectives(name: String) throws {
        let layers: Int = name == "at" ? 3 : name == "nst" ? 2 : 1
        var total = 0.0
        for i in 0..<layers {
            let fs = try golden("\(name).fs\(i)"), ft = try golden("\(name).ft\(i)")
            let (l, d): (Double, Tensor)
            switch name {
            case "at": (l, d) = AttentionObjective.layerLoss(student: fs, teacher: ft)
            case "nst": (l, d) = NSTObjective.layerLoss(student: fs, teacher: ft)
            default: (l, d) = SimilarityObjective.layerLoss(student: fs, teacher: ft)
            }
            total += l
            try expectGradient(d, "\(name).dfs\(i)")
        }
        try expectLoss(total, "\(name).loss")
    }

    /// The same through `evaluate`: features by path, gradients keyed by the student paths.
    @Test func attentionThroughEvaluate() throws {
        let paths = ["layer1", "layer2", "layer3"]
        let at = AttentionObjective(pairs: paths.map { FeaturePair($0) })
        var s: [String: Tensor] = [:], t: [String: Tensor] = [:]
        for (i, p) in paths.enumerated() { s[p] = try golden("at.fs\(i)"); t[p] = try golden("at.ft\(i)") }
        let logits = Tensor(shape: [4, 10])
        let v = at.evaluate(student: NetworkOutputs(logits: logits, features: s), teacher: NetworkOutputs(logits: logits, features: t), labels: [])
        try expectLoss(v.loss, "at.loss")
        #expect(v.dLogits == nil && Set(v.dFeatures.keys) == Set(paths))
        for (i, p) in paths.enumerated() { try expectGradient(v.dFeatures[p]!, "at.dfs\(i)") }
    }

    /// RKD, also with two identical student rows (a zero difference vector: the clamped normalisation).
    @Test(arguments: ["rkd", "rkd_dup"])
    func rkd(name: String) throws {
        let r = RKDObjective(pair: FeaturePair("flatten")).loss(student: try golden("\(name).fs"), teacher: try golden("\(name).ft"))
        try expectLoss(r.loss, "\(name).loss")
        try expectGradient(r.dStudent, "\(name).dfs")
    }

    /// FitNet with the authors' ConvReg: 1×1 for equal maps, 3×3 stride 2 for a twice larger student map;
    /// the regressor's BN runs on batch statistics and moves its running statistics.
    @Test(arguments: ["fitnet", "fitnet_s2"])
    func fitnet(name: String) throws {
        let fs = try golden("\(name).fs"), ft = try golden("\(name).ft")
        var rng = RNG(seed: 1)
        let hint = try HintObjective(pair: FeaturePair("layer2"), studentShape: Array(fs.shape.dropFirst()),
                                     teacherShape: Array(ft.shape.dropFirst()), rng: &rng)
        let module = try #require(hint.module)
        #expect(module.parameters().map(\.name) == ["module_list.1.conv.weight", "module_list.1.conv.bias",
                                                     "module_list.1.bn.weight", "module_list.1.bn.bias"])
        try module.load(stateDict: goldenState(name, under: "module_list"), strict: false)
        let r = hint.loss(student: fs, teacher: ft)
        try expectLoss(r.loss, "\(name).loss")
        try expectGradient(r.dStudent, "\(name).dfs")
        try expectParameterGradients(module, name)
        let state = Dictionary(uniqueKeysWithValues: module.namedTensors().map { ($0.name, $0.tensor) })
        try expectGradient(state["module_list.1.bn.running_mean"]!, "\(name).module_list.1.bn.running_mean_after")
        try expectGradient(state["module_list.1.bn.running_var"]!, "\(name).module_list.1.bn.running_var_after")
    }

    /// CC: both embeddings receive gradients (the teacher's trains too).
    @Test func correlation() throws {
        let fs = try golden("cc.fs"), ft = try golden("cc.ft")
        var rng = RNG(seed: 1)
        let cc = CorrelationObjective(pair: FeaturePair("flatten"), studentDimension: fs.shape[1], teacherDimension: ft.shape[1],
                                      embedding: 8, rng: &rng)
        let module = try #require(cc.module)
        #expect(module.parameters().map(\.name) == ["module_list.1.linear.weight", "module_list.1.linear.bias",
                                                     "module_list.2.linear.weight", "module_list.2.linear.bias"])
        try module.load(stateDict: goldenState("cc", under: "module_list"), strict: true)
        let r = cc.loss(student: fs, teacher: ft)
        try expectLoss(r.loss, "cc.loss")
        try expectGradient(r.dStudent, "cc.dfs")
        try expectParameterGradients(module, "cc")
    }

    /// VID: two layers, regressors and per-channel log-variances; log_scale starts at the authors' constant.
    @Test func vid() throws {
        let fs = [try golden("vid.fs0"), try golden("vid.fs1")], ft = [try golden("vid.ft0"), try golden("vid.ft1")]
        var rng = RNG(seed: 1)
        let vid = VIDObjective(pairs: [FeaturePair("layer1"), FeaturePair("layer2")],
                               channels: zip(fs, ft).map { ($0.shape[1], $1.shape[1]) }, rng: &rng)
        expectClose(vid.regressors[0].logScale.value, try golden("vid.initial_log_scale"), atol: 1e-6, rtol: 1e-6, "initial log_scale")
        let module = try #require(vid.module)
        #expect(module.parameters().map(\.name) == ["criterion_kd.0.regressor.0.weight", "criterion_kd.0.regressor.2.weight",
                                                     "criterion_kd.0.regressor.4.weight", "criterion_kd.0.log_scale",
                                                     "criterion_kd.1.regressor.0.weight", "criterion_kd.1.regressor.2.weight",
                                                     "criterion_kd.1.regressor.4.weight", "criterion_kd.1.log_scale"])
        try module.load(stateDict: goldenState("vid", under: "criterion_kd"), strict: true)
        let logits = Tensor(shape: [3, 10])
        let v = vid.evaluate(student: NetworkOutputs(logits: logits, features: ["layer1": fs[0], "layer2": fs[1]]),
                             teacher: NetworkOutputs(logits: logits, features: ["layer1": ft[0], "layer2": ft[1]]), labels: [])
        try expectLoss(v.loss, "vid.loss")
        try expectGradient(v.dFeatures["layer1"]!, "vid.dfs0")
        try expectGradient(v.dFeatures["layer2"]!, "vid.dfs1")
        try expectParameterGradients(module, "vid")
    }

    /// FSP over consecutive features: equal maps, a pooled larger bottom, and (`fsp_up`) a pooled larger top;
    /// a middle feature's gradient sums both of its pairs.
    @Test(arguments: [("fsp", 4), ("fsp_up", 3)])
    func fsp(name: String, count: Int) throws {
        let paths = (0..<count).map { "f\($0)" }
        let fsp = FSPObjective(pairs: paths.map { FeaturePair($0) })
        var s: [String: Tensor] = [:], t: [String: Tensor] = [:]
        for (i, p) in paths.enumerated() { s[p] = try golden("\(name).fs\(i)"); t[p] = try golden("\(name).ft\(i)") }
        let logits = Tensor(shape: [3, 10])
        let v = fsp.evaluate(student: NetworkOutputs(logits: logits, features: s), teacher: NetworkOutputs(logits: logits, features: t), labels: [])
        try expectLoss(v.loss, "\(name).loss")
        #expect(v.dLogits == nil && Set(v.dFeatures.keys) == Set(paths))
        for (i, p) in paths.enumerated() { try expectGradient(v.dFeatures[p]!, "\(name).dfs\(i)") }
    }

    /// FT's main stage: the Translator (train mode) trains, the Paraphraser's encoder gives the teacher's
    /// factor and receives nothing; the state names are the authors' `module_list.1` / `module_list.2`.
    @Test func factorTransfer() throws {
        let fs = try golden("ft.fs"), ft = try golden("ft.ft")
        var rng = RNG(seed: 1)
        let obj = FactorTransferObjective(pair: FeaturePair("layer3"), studentChannels: fs.shape[1], teacherChannels: ft.shape[1], rng: &rng)
        let module = try #require(obj.module), trainable = try #require(obj.trainableModule)
        #expect(trainable.parameters().map(\.name) == ["module_list.1.encoder.0.weight", "module_list.1.encoder.0.bias",
                                                        "module_list.1.encoder.1.weight", "module_list.1.encoder.1.bias",
                                                        "module_list.1.encoder.3.weight", "module_list.1.encoder.3.bias",
                                                        "module_list.1.encoder.4.weight", "module_list.1.encoder.4.bias",
                                                        "module_list.1.encoder.6.weight", "module_list.1.encoder.6.bias",
                                                        "module_list.1.encoder.7.weight", "module_list.1.encoder.7.bias"])
        #expect(module.parameters().filter { $0.name.hasPrefix("module_list.2.") }.map(\.name) ==
                ["encoder.0", "encoder.3", "encoder.6", "decoder.0", "decoder.3", "decoder.6"].flatMap {
                    ["module_list.2.\($0).weight", "module_list.2.\($0).bias"] })
        try module.load(stateDict: goldenState("ft", under: "module_list"), strict: false)
        let logits = Tensor(shape: [4, 10])
        let v = obj.evaluate(student: NetworkOutputs(logits: logits, features: ["layer3": fs]),
                             teacher: NetworkOutputs(logits: logits, features: ["layer3": ft]), labels: [])
        try expectLoss(v.loss, "ft.loss")
        try expectGradient(v.dFeatures["layer3"]!.toLayout(.plain), "ft.dfs")
        try expectParameterGradients(trainable, "ft")
        #expect(obj.paraphraser.parameters().allSatisfy { $0.parameter.grad.array.allSatisfy { $0 == 0 } })
    }

    /// FT's initialisation stage: the Paraphraser's reconstruction MSE and its gradients (ConvTranspose2d and
    /// LeakyReLU against torch's).
    @Test func paraphraserReconstruction() throws {
        let ft = try golden("ft_init.ft")
        var rng = RNG(seed: 1)
        let obj = FactorTransferObjective(pair: FeaturePair("layer3"), studentChannels: 6, teacherChannels: ft.shape[1], rng: &rng)
        try obj.module!.load(stateDict: goldenState("ft_init", under: "module_list"), strict: false)
        let l = obj.paraphraserLoss(teacher: ft)
        try expectLoss(l, "ft_init.loss")
        let scale = try obj.paraphraser.parameters().map { try golden("ft_init.grad.module_list.2.\($0.name)").array.map { abs($0) }.max() ?? 0 }.max() ?? 0
        for (p, param) in obj.paraphraser.parameters() {
            try expectGradient(param.grad, "ft_init.grad.module_list.2.\(p)", scale: scale)
        }
    }

    /// In a mix, a term's own parameters get w·dL/dθ like its features (FitNet at β = 100).
    @Test func mixScalesModuleGradients() throws {
        let fs = try golden("fitnet.fs"), ft = try golden("fitnet.ft")
        var rng = RNG(seed: 1)
        let hint = try HintObjective(pair: FeaturePair("layer2"), studentShape: Array(fs.shape.dropFirst()),
                                     teacherShape: Array(ft.shape.dropFirst()), rng: &rng)
        let module = try #require(hint.module)
        try module.load(stateDict: goldenState("fitnet", under: "module_list"), strict: false)
        let mix = LossMix([(100, hint)])
        #expect(mix.module?.parameters().map(\.name) == module.parameters().map(\.name))
        let logits = Tensor(shape: [4, 10])
        let v = mix.evaluate(student: NetworkOutputs(logits: logits, features: ["layer2": fs]),
                             teacher: NetworkOutputs(logits: logits, features: ["layer2": ft]), labels: [])
        expectClose(v.loss, 100 * Double(try golden("fitnet.loss")[0]), atol: 1e-4, rtol: 1e-5, "100·L")
        let scale = try module.parameters().map { try golden("fitnet.grad.\($0.name)").array.map { abs($0) }.max() ?? 0 }.max() ?? 0
        for (p, param) in module.parameters() {
            let g = try golden("fitnet.grad.\(p)")
            expectClose(param.grad, Tensor(shape: g.shape, values: g.array.map { 100 * $0 }), atol: 1e-3 * scale, rtol: 1e-4, p)
        }
    }
}
