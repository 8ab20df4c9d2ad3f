import TestSupport
import Foundation
import Testing
import NN
import Tensors
@testable import Models

// The Tiny-ImageNet models against PyTorch 1.13 / torchvision 0.14 (the authors' VGG-11-BN built from their
// definition). scripts/make_imagenet_golden.py writes every golden file here; none holds weights: both sides
// set every parameter and buffer from the same closed-form pattern (the script's docstring), so the files hold
// only inputs, key lists, logits, losses, a few full gradients and per-tensor summaries. Two formats, each with
// its own pattern: Golden/imagenet_<model>.safetensors (ResNet-18, MobileNetV2, VGG-11-BN; `HashPattern`,
// tested below) and Golden/<model>_golden.safetensors (ShuffleNet-V2, SqueezeNet; `SinePattern`,
// ShuffleSqueezeGoldenTests.swift).

let imageNetGoldenHint = "regenerate with `/usr/bin/python3 scripts/make_imagenet_golden.py` (repository root)"

struct GoldenKeyError: Error, CustomStringConvertible { let description: String }

/// One golden file of scripts/make_imagenet_golden.py and the facts in its metadata; every failure to find
/// a tensor or a metadata entry throws with the regeneration hint.
struct ImageNetGolden {
    let name: String
    let file: SafetensorsFile

    /// Golden/`name`.safetensors.
    init(file name: String) throws {
        self.name = name
        let url = goldenDirectory.appendingPathComponent(name + ".safetensors")
        do { file = try SafetensorsFile.read(url) } catch {
            throw GoldenKeyError(description: "cannot load \(url.path): \(error); \(imageNetGoldenHint)")
        }
    }

    func tensor(_ key: String) throws -> Tensor {
        guard let t = file.tensors[key] else { throw GoldenKeyError(description: "\(name) has no tensor '\(key)'; \(imageNetGoldenHint)") }
        return t
    }

    func integer(_ key: String) throws -> Int {
        guard let v = file.metadata[key].flatMap(Int.init) else {
            throw GoldenKeyError(description: "\(name) metadata has no integer '\(key)'; \(imageNetGoldenHint)")
        }
        return v
    }

    /// A JSON list of strings from the metadata (the sine format's `keys`, `modules`, `parameters`, `buffers`).
    func list(_ key: String) throws -> [String] { try json(key, as: [String].self) }

    /// The hash format's `state_dict` metadata: PyTorch's state-dict keys in `state_dict()` order.
    func stateDictKeys() throws -> [GoldenKey] {
        try json("state_dict", as: [[Any]].self).map { GoldenKey(name: $0[0] as! String, shape: $0[1] as! [Int], kind: $0[2] as! String) }
    }

    private func json<T>(_ key: String, as: T.Type) throws -> T {
        guard let text = file.metadata[key], let value = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? T else {
            throw GoldenKeyError(description: "\(name) metadata has no JSON '\(key)' of type \(T.self); \(imageNetGoldenHint)")
        }
        return value
    }
}

/// One entry of the PyTorch state dict: name, shape and kind ("param", "buffer", "int64").
struct GoldenKey: Equatable {
    let name: String
    let shape: [Int]
    let kind: String
}

/// The hash format's closed-form weights (scripts/make_imagenet_golden.py `hash_pattern`): for tensor number j
/// (its position in the PyTorch `state_dict()`) and flat element i, a SplitMix64-style hash of (i, j) gives
/// u ∈ [−1, 1) exactly; the value is computed in double and rounded once to float, by the owning layer's kind.
enum HashPattern {
    static func u(count: Int, _ j: Int) -> [Double] {
        let c = UInt64(j + 1) &* 0xD1B5_4A32_D192_ED03
        return (0..<count).map { i in
            var h = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ c
            h = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
            h = (h ^ (h >> 29)) &* 0x94D0_49BB_1331_11EB
            h ^= h >> 32
            return (Double(h >> 40) - 8_388_608) / 8_388_608
        }
    }

    static func tensor(_ shape: [Int], _ j: Int, scale: Double = 1, offset: Double = 0) -> Tensor {
        Tensor(shape: shape, values: u(count: shape.reduce(1, *), j).map { Float(offset + scale * $0) })
    }

    /// The state dict PyTorch builds from the pattern: every key of `keys` (state_dict order), with the
    /// value the script gives it, decided by the kind of `model`'s layer that owns the tensor.
    static func stateDict(for model: Layer, keys: [GoldenKey]) throws -> [String: Tensor] {
        var state: [String: Tensor] = [:]
        for (j, key) in keys.enumerated() {
            let owner = key.name.split(separator: ".").dropLast().joined(separator: ".")
            let leaf = String(key.name.split(separator: ".").last!)
            let layer = model.layer(at: owner)
            let value: Tensor
            switch (layer, leaf) {
            case (_, "num_batches_tracked"): value = Tensor(shape: key.shape)
            case (is BatchNorm2d, "weight"): value = tensor(key.shape, j, scale: 0.25, offset: 1)
            case (is BatchNorm2d, "bias"), (is BatchNorm2d, "running_mean"): value = tensor(key.shape, j, scale: 0.1)
            case (is BatchNorm2d, "running_var"): value = tensor(key.shape, j, scale: 0.5, offset: 1)
            case (is Conv2d, "weight"), (is Linear, "weight"):
                let fanIn = key.shape.dropFirst().reduce(1, *)
                value = tensor(key.shape, j, scale: ((layer is Conv2d ? 6 : 3) / Double(fanIn)).squareRoot())
            case (is Conv2d, "bias"), (is Linear, "bias"): value = tensor(key.shape, j, scale: 0.1)
            default: throw GoldenKeyError(description: "no pattern rule for \(key.name) (\(layer.map { "\(type(of: $0))" } ?? "no layer"))")
            }
            state[key.name] = value
        }
        return state
    }

    /// Per tensor: Σ v, ‖v‖₂ and Σ v·u(base + k), in double.
    static func summaries(_ tensors: [Tensor], base: Int) -> (sum: [Double], norm: [Double], dot: [Double]) {
        var s: [Double] = [], n: [Double] = [], d: [Double] = []
        for (k, t) in tensors.enumerated() {
            let v = t.plainArray.map(Double.init)
            let u = u(count: v.count, base + k)
            s.append(v.reduce(0, +))
            n.append(v.reduce(0) { $0 + $1 * $1 }.squareRoot())
            d.append(zip(v, u).reduce(0) { $0 + $1.0 * $1.1 })
        }
        return (s, n, d)
    }
}

@Suite("Tiny-ImageNet models against torchvision")
struct ImageNetGoldenTests {
    static let models = ["resnet18", "mobilenetv2", "vgg11_bn"]

    /// `namedTensors()` has exactly the keys of torchvision's `state_dict()` (the authors' for VGG), with
    /// the same shapes: parameters in `named_parameters()` order, then buffers in `named_buffers()` order;
    /// `num_batches_tracked` (int64, 0-d in PyTorch) is the model's integer buffer.
    @Test(arguments: models)
    func stateDictKeysEqualPyTorch(name: String) throws {
        let golden = try ImageNetGolden(file: "imagenet_\(name)"), keys = try golden.stateDictKeys()
        let model = try ModelZoo.make(name, classes: 200, seed: 1)
        let ours = model.namedTensors()
        #expect(Set(ours.map(\.name)) == Set(keys.map(\.name)), "\(imageNetGoldenHint)")
        let expectedOrder = keys.filter { $0.kind == "param" } + keys.filter { $0.kind != "param" }
        #expect(ours.map(\.name) == expectedOrder.map(\.name))
        for (o, e) in zip(ours, expectedOrder) where o.name == e.name {
            let scalar = e.kind == "int64" && o.tensor.count == 1 && e.shape.isEmpty
            #expect(o.tensor.shape == e.shape || scalar, "\(o.name): \(o.tensor.shape) vs PyTorch \(e.shape)")
            #expect(o.isInteger == (e.kind == "int64"), "\(o.name)")
        }
        #expect(model.parameterCount == (try golden.integer("parameters")))
        #expect(model.macs(inputHeight: 64, inputWidth: 64) == (try golden.integer("macs_64")))
        #expect(model.macs(inputHeight: 224, inputWidth: 224) == (try golden.integer("macs_224")))
        #expect(model.inputLayerPath.map { $0 == golden.file.metadata["first_conv"] } == true)
        #expect(model.classifierPath.map { $0 == golden.file.metadata["classifier"] } == true)
    }

    /// The pattern state dict (a torchvision checkpoint in everything but its values) loads strictly, and
    /// the eval forward gives PyTorch's logits, loss and top-1; then a train-mode forward (batch statistics,
    /// dropout off on both sides), mean cross-entropy and backward give PyTorch's logits, loss, gradients
    /// and updated running statistics.
    /// Tolerances (float32, different summation orders through 8–20 convolutions and batch norms):
    /// logits atol 1e-3, rtol 1e-3 (ResNet-18's eval logits reach ±58); losses rtol 1e-4; full gradients
    /// atol 1e-4·max|g|, rtol 1e-3 (the stem's weight gradient sums 4·32·32 positions with heavy cancellation:
    /// MobileNetV2's differs from PyTorch's by up to 3.5e-4 where its largest entry is ~20); per-tensor sums, dots and norms within 1e-3·‖v‖₂ + 1e-6·max‖v‖₂.
    @Test(arguments: models)
    func forwardBackwardMatchPyTorch(name: String) throws {
        let golden = try ImageNetGolden(file: "imagenet_\(name)"), keys = try golden.stateDictKeys()
        let model = try ModelZoo.make(name, classes: 200, seed: 1)
        try model.load(stateDict: try HashPattern.stateDict(for: model, keys: keys), strict: true)
        let x = try golden.tensor("input")
        #expect(x.shape.count == 4 && x.plainArray == HashPattern.tensor(x.shape, 1_000_000).array, "the input is the pattern")
        let labels = try golden.tensor("labels").array.map { Int($0) }
        let ce = CrossEntropyLoss()

        let evalLogits = model.forward(x, mode: .eval)
        let goldenEval = try golden.tensor("eval_logits")
        expectClose(evalLogits, goldenEval, atol: 1e-3, rtol: 1e-3, "\(name) eval logits", hint: imageNetGoldenHint)
        expectClose(ce(evalLogits, labels: labels).loss, Double(try golden.tensor("eval_loss").array[0]),
                    atol: 1e-6, rtol: 1e-4, "\(name) eval loss", hint: imageNetGoldenHint)
        func top1(_ t: Tensor) -> [Int] {
            let v = t.plainArray, c = t.shape[1]
            return (0..<t.shape[0]).map { n in (0..<c).max { v[n * c + $0] < v[n * c + $1] }! }
        }
        #expect(top1(evalLogits) == top1(goldenEval))

        try model.replaceLayers { _, layer in layer is Dropout ? Dropout(probability: 0, seed: 0) : nil }
        let logits = model.forward(x, mode: .train)
        let (loss, dLogits) = ce(logits, labels: labels)
        model.zeroGrad()
        _ = model.backward(dLogits)
        expectClose(logits, try golden.tensor("train_logits"), atol: 1e-3, rtol: 1e-3, "\(name) train logits",
                    hint: imageNetGoldenHint)
        expectClose(loss, Double(try golden.tensor("train_loss").array[0]), atol: 1e-6, rtol: 1e-4, "\(name) train loss",
                    hint: imageNetGoldenHint)

        let parameters = model.parameters()
        let byName = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.parameter) })
        for key in golden.file.tensors.keys where key.hasPrefix("grad.") {
            let p = try #require(byName[String(key.dropFirst(5))], "\(key)")
            let expected = try golden.tensor(key)
            let atol = 1e-4 * (expected.array.map { abs($0) }.max() ?? 0)
            expectClose(p.grad, expected, atol: atol, rtol: 1e-3, "\(name) \(key)", hint: imageNetGoldenHint)
        }
        // Summaries in PyTorch's named_parameters() / named_buffers() order.
        let paramOrder = keys.filter { $0.kind == "param" }.map(\.name)
        let bufferOrder = keys.filter { $0.kind == "buffer" }.map(\.name)
        let buffers = Dictionary(uniqueKeysWithValues: model.buffers().map { ($0.name, $0.buffer) })
        try compareSummaries(HashPattern.summaries(try paramOrder.map { try #require(byName[$0]).grad }, base: 2_000_000),
                             golden, prefix: "grad", names: paramOrder, model: name)
        try compareSummaries(HashPattern.summaries(try bufferOrder.map { try #require(buffers[$0]).value }, base: 3_000_000),
                             golden, prefix: "buffer", names: bufferOrder, model: name)
    }

    private func compareSummaries(_ ours: (sum: [Double], norm: [Double], dot: [Double]), _ golden: ImageNetGolden,
                                  prefix: String, names: [String], model: String) throws {
        let sums = try golden.tensor(prefix + "_sum").array, norms = try golden.tensor(prefix + "_norm").array
        let dots = try golden.tensor(prefix + "_dot").array
        #expect(sums.count == names.count && norms.count == names.count && dots.count == names.count)
        // Floor: 1e-6 of the largest norm. Some gradients are exactly 0 in exact arithmetic (the bias of a BN
        // whose output feeds a 1×1 conv and a train-mode BN: Σ dy = 0) and both sides hold rounding noise.
        let floor = 1e-6 * Double(norms.max() ?? 0)
        var failures: [String] = []
        for k in names.indices where k < sums.count {
            let scale = 1e-3 * Double(norms[k]) + floor
            if abs(ours.norm[k] - Double(norms[k])) > scale { failures.append("\(names[k]) norm \(ours.norm[k]) vs \(norms[k])") }
            if abs(ours.sum[k] - Double(sums[k])) > scale { failures.append("\(names[k]) sum \(ours.sum[k]) vs \(sums[k])") }
            if abs(ours.dot[k] - Double(dots[k])) > scale { failures.append("\(names[k]) dot \(ours.dot[k]) vs \(dots[k])") }
        }
        #expect(failures.isEmpty, "\(model) \(prefix): \(failures.count) mismatches, first \(failures.prefix(3)); \(imageNetGoldenHint)")
    }
}
