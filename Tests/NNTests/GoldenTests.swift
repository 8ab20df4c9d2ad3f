import TestSupport
import Foundation
import Testing
import Tensors
@testable import NN

// Layers, losses and optimizer steps against PyTorch 1.13 (CPU, float32). The golden files in Golden/ are
// written by scripts/make_golden.py; keys are `<case>.<tensor>` (x, y, dy, dx, w/dw, b/db, ...), and each
// file's `__metadata__` records the PyTorch settings of every case, which the tests below mirror.
// A missing file or a mismatch prints how to regenerate them.

let regenerateHint = "regenerate the golden files with `/usr/bin/python3 scripts/make_golden.py` (repository root)"
/// Appended to a golden mismatch.
let goldenMismatchHint = "If PyTorch semantics were meant to change, " + regenerateHint

/// A golden error: a file or key is missing. The message carries the regeneration hint.
struct GoldenError: Error, CustomStringConvertible {
    let description: String
}

/// One golden safetensors file from Tests/NNTests/Golden.
struct Golden {
    let name: String
    let file: SafetensorsFile

    init(_ name: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Golden").appendingPathComponent(name + ".safetensors")
        do {
            file = try SafetensorsFile.read(url)
        } catch {
            throw GoldenError(description: "cannot load golden file \(url.path): \(error); \(regenerateHint)")
        }
        self.name = name
    }

    /// The tensor stored under `key` (plain layout).
    func tensor(_ key: String) throws -> Tensor {
        guard let t = file.tensors[key] else {
            throw GoldenError(description: "golden file \(name).safetensors has no tensor '\(key)'; \(regenerateHint)")
        }
        return t
    }

    /// An int64 tensor (labels) as Swift integers.
    func integers(_ key: String) throws -> [Int] {
        try tensor(key).array.map { Int($0) }
    }
}

/// Copies a golden tensor into a layer's tensor (same logical shape; any layout). A 0-d PyTorch scalar
/// (`num_batches_tracked`) fits a one-element engine tensor.
func assign(_ destination: Tensor, _ source: Tensor, _ what: String) throws {
    guard destination.shape == source.shape || source.shape.isEmpty && destination.count == 1 else {
        throw GoldenError(description: "\(what): layer has shape \(destination.shape), golden \(source.shape); \(regenerateHint)")
    }
    let s = source.toLayout(destination.layout.block == 1 ? .plain : destination.layout)
    destination.copyElements(from: s)
}

/// The one-line layer check (micrograd style): loads the layer's parameters from `<case>.<goldenName>`,
/// runs forward on `<case>.x` (converted to `layout`) and backward on `<case>.dy`, and compares y, dx and
/// every parameter gradient (`<case>.d<goldenName>`) with PyTorch. `names` maps the layer's parameter
/// names to golden names (conv and linear store `w`, `b`); unmapped names are used as they are.
/// `atol`/`rtol` apply to y and dx; parameter gradients use `gradientAtol`/`gradientRtol` (default: the same).
func checkLayer(_ layer: Layer, golden g: Golden, case c: String, mode: Mode = .train, layout: Layout = .plain,
                names: [String: String] = [:], atol: Float = 1e-5, rtol: Float = 1e-5,
                gradientAtol: Float? = nil, gradientRtol: Float? = nil,
                sourceLocation: SourceLocation = #_sourceLocation) throws {
    for (name, p) in layer.parameters() {
        try assign(p.value, g.tensor("\(c).\(names[name] ?? name)"), "\(c) \(name)")
    }
    layer.zeroGrad()
    let x = try g.tensor("\(c).x")
    let y = layer.forward(layout == .plain ? x : x.toLayout(layout), mode: mode)
    expectClose(y, try g.tensor("\(c).y"), atol: atol, rtol: rtol, "\(c) [\(layout)] y",
                hint: goldenMismatchHint, sourceLocation: sourceLocation)
    let dy = try g.tensor("\(c).dy")
    let dx = layer.backward(y.layout == .plain ? dy : dy.toLayout(y.layout))
    expectClose(dx, try g.tensor("\(c).dx"), atol: atol, rtol: rtol, "\(c) [\(layout)] dx",
                hint: goldenMismatchHint, sourceLocation: sourceLocation)
    for (name, p) in layer.parameters() {
        expectClose(p.grad, try g.tensor("\(c).d\(names[name] ?? name)"), atol: gradientAtol ?? atol,
                    rtol: gradientRtol ?? rtol,
                    "\(c) [\(layout)] d\(name)", hint: goldenMismatchHint, sourceLocation: sourceLocation)
    }
}

@Suite("Golden: layers, losses and optimizers vs PyTorch")
struct GoldenTests {

    // MARK: Conv2d and Linear

    /// One conv case's settings, read from conv2d.safetensors' `__metadata__` (written by make_golden.py).
    struct ConvCase: Decodable {
        let N: Int, H: Int, W: Int, kernel: Int, stride: Int, padding: Int, groups: Int, bias: Bool
        let inputChannels: Int, outputChannels: Int
        enum CodingKeys: String, CodingKey {
            case N, H, W, kernel, stride, padding, groups, bias
            case inputChannels = "in", outputChannels = "out"
        }
    }

    static let convCases = [
        "s1p0_bias", "s1p1_nobias", "s2p1_bias", "s2p0_nobias", "g2_s1p1_bias", "dw_s2p1_nobias", "dw_s1p1_bias",
        "k1_s2_nobias", "dw32_s1p1_nobias", "dw32_s2p1_nobias",
    ]

    @Test(arguments: convCases)
    func conv2d(_ c: String) throws {
        let g = try Golden("conv2d")
        guard let json = g.file.metadata[c] else {
            throw GoldenError(description: "conv2d.safetensors has no metadata for \(c); \(regenerateHint)")
        }
        let s = try JSONDecoder().decode(ConvCase.self, from: Data(json.utf8))
        let layouts: [Layout] = s.inputChannels % 16 == 0 ? [.plain, .blocked(8), .blocked(16)]
            : s.inputChannels % 8 == 0 ? [.plain, .blocked(8)] : [.plain]
        for layout in layouts {
            let conv = Conv2d(inputChannels: s.inputChannels, outputChannels: s.outputChannels, kernelSize: s.kernel,
                              stride: s.stride, padding: s.padding, groups: s.groups, bias: s.bias)
            try checkLayer(conv, golden: g, case: c, layout: layout, names: ["weight": "w", "bias": "b"],
                           atol: 1e-5, rtol: 1e-5, gradientAtol: 1e-4, gradientRtol: 1e-4)
        }
    }

    @Test(arguments: [("linear_7x5", 7, 5), ("linear_64x10", 64, 10)])
    func linear(_ c: String, _ inputFeatures: Int, _ outputFeatures: Int) throws {
        let g = try Golden("linear")
        try checkLayer(Linear(inputFeatures: inputFeatures, outputFeatures: outputFeatures), golden: g, case: c,
                       names: ["weight": "w", "bias": "b"], atol: 1e-5, rtol: 1e-5, gradientAtol: 1e-5, gradientRtol: 1e-4)
    }

    // MARK: BatchNorm

    /// (case, features, 2-d?, mode), as in make_golden.py `make_batchnorm`.
    static let batchNormCases: [(String, Int, Bool, Mode)] = [
        ("bn2d_train", 6, true, .train), ("bn2d_eval", 6, true, .eval), ("bn2d_train16", 16, true, .train),
        ("bn1d_train", 5, false, .train), ("bn1d_eval", 5, false, .eval),
    ]

    @Test(arguments: batchNormCases.indices)
    func batchNorm(_ index: Int) throws {
        let (c, features, is2d, mode) = Self.batchNormCases[index]
        let g = try Golden("batchnorm")
        let layouts: [Layout] = is2d && features % 16 == 0 ? [.plain, .blocked(16)] : [.plain]
        for layout in layouts {
            let bn2 = BatchNorm2d(features: features), bn1 = BatchNorm1d(features: features)
            let layer: Layer = is2d ? bn2 : bn1
            let (runningMean, runningVar, tracked) = is2d
                ? (bn2.runningMean, bn2.runningVar, bn2.numBatchesTracked)
                : (bn1.runningMean, bn1.runningVar, bn1.numBatchesTracked)
            try assign(runningMean.value, g.tensor("\(c).running_mean_before"), "\(c) running_mean")
            try assign(runningVar.value, g.tensor("\(c).running_var_before"), "\(c) running_var")
            try assign(tracked.value, g.tensor("\(c).num_batches_tracked_before"), "\(c) num_batches_tracked")
            try checkLayer(layer, golden: g, case: c, mode: mode, layout: layout)
            expectClose(runningMean.value, try g.tensor("\(c).running_mean"), atol: 1e-6, rtol: 1e-5, "\(c) running_mean",
                        hint: goldenMismatchHint)
            expectClose(runningVar.value, try g.tensor("\(c).running_var"), atol: 1e-6, rtol: 1e-5, "\(c) running_var",
                        hint: goldenMismatchHint)
            expectClose(tracked.value, try g.tensor("\(c).num_batches_tracked"), atol: 0, rtol: 0, "\(c) num_batches_tracked",
                        hint: goldenMismatchHint)
        }
    }

    // MARK: Pools and activations

    static let poolCases: [String] = [
        "maxpool_k2s2", "maxpool_k3s2p1", "maxpool_k3s2p1_even", "avgpool_k2s2", "avgpool_k8", "adaptive_1",
        "adaptive_7to3",
    ]

    static func poolLayer(_ c: String) -> Layer {
        switch c {
        case "maxpool_k2s2": return MaxPool2d(kernelSize: 2, stride: 2)
        case "maxpool_k3s2p1", "maxpool_k3s2p1_even": return MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        case "avgpool_k2s2": return AvgPool2d(kernelSize: 2, stride: 2)
        case "avgpool_k8": return AvgPool2d(kernelSize: 8)
        case "adaptive_1": return AdaptiveAvgPool2d(outputSize: 1)
        case "adaptive_7to3": return AdaptiveAvgPool2d(outputSize: 3)
        default: preconditionFailure("unknown pool case \(c)")
        }
    }

    @Test(arguments: poolCases)
    func pool(_ c: String) throws {
        let g = try Golden("pool")
        try checkLayer(Self.poolLayer(c), golden: g, case: c)
        if try g.tensor("\(c).x").shape[1] % 16 == 0 {
            try checkLayer(Self.poolLayer(c), golden: g, case: c, layout: .blocked(16))
        }
    }

    @Test func activations() throws {
        let g = try Golden("activation")
        try checkLayer(ReLU(), golden: g, case: "relu", atol: 0, rtol: 0)
        try checkLayer(ReLU6(), golden: g, case: "relu6", atol: 0, rtol: 0)
    }

    // MARK: Losses

    @Test(arguments: [("ce", 0.0), ("ce_ls", 0.1)])
    func crossEntropy(_ c: String, _ smoothing: Double) throws {
        let g = try Golden("loss")
        let (loss, dLogits) = CrossEntropyLoss(labelSmoothing: smoothing)(try g.tensor("\(c).logits"),
                                                                          labels: try g.integers("\(c).labels"))
        expectClose(loss, Double(try g.tensor("\(c).loss")[0]), atol: 1e-6, rtol: 1e-5, "\(c) loss",
                    hint: goldenMismatchHint)
        expectClose(dLogits, try g.tensor("\(c).dlogits"), atol: 1e-6, rtol: 1e-5, "\(c) dlogits", hint: goldenMismatchHint)
    }

    @Test func distillKL() throws {
        let g = try Golden("loss")
        let (loss, dStudent) = KLDivergenceLoss(temperature: 4)(student: try g.tensor("kl_t4.student"),
                                                                teacher: try g.tensor("kl_t4.teacher"))
        expectClose(loss, Double(try g.tensor("kl_t4.loss")[0]), atol: 1e-6, rtol: 1e-5, "kl_t4 loss",
                    hint: goldenMismatchHint)
        expectClose(dStudent, try g.tensor("kl_t4.dstudent"), atol: 1e-6, rtol: 1e-5, "kl_t4 dstudent",
                    hint: goldenMismatchHint)
    }

    // MARK: Optimizers

    @Test(arguments: ["sgd", "sgd_nesterov", "adam"])
    func optimizerSteps(_ c: String) throws {
        let g = try Golden("optim")
        let p = Parameter(try g.tensor("\(c).param0").copy())
        let params = [(name: "p", parameter: p)]
        let optimizer: Optimizer
        switch c {
        case "sgd": optimizer = SGD(groups: [ParameterGroup(parameters: params, lr: 0.1, weightDecay: 1e-4)], momentum: 0.9)
        case "sgd_nesterov":
            optimizer = SGD(groups: [ParameterGroup(parameters: params, lr: 0.1, weightDecay: 1e-4)], momentum: 0.9, nesterov: true)
        default: optimizer = Adam(groups: [ParameterGroup(parameters: params, lr: 1e-3, weightDecay: 5e-4)])
        }
        for step in 1...3 {
            optimizer.zeroGrad()
            try assign(p.grad, g.tensor("\(c).grad\(step)"), "\(c) grad\(step)")
            optimizer.step()
            expectClose(p.value, try g.tensor("\(c).param\(step)"), atol: 1e-6, rtol: 1e-5, "\(c) param after step \(step)",
                        hint: goldenMismatchHint)
        }
    }
}
