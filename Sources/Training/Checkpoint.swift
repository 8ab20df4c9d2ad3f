import Foundation
import Models
import NN
import Quantization
import Tensors

/// Model checkpoints in safetensors with the PyTorch reference's state-dict names: `torch.load_state_dict(
/// safetensors.torch.load_file(path))` loads ours, and a state dict PyTorch saved loads into ours. The
/// metadata records the architecture so `sqakd eval` needs no `--model` for our own files.
public enum Checkpoint {
    public static func saveModel(_ model: any Model, to url: URL, metadata: [String: String] = [:]) throws {
        try modelFile(model, metadata: metadata).write(to: url)
    }

    /// The model's state dict and metadata as a safetensors file (what `saveModel` writes).
    public static func modelFile(_ model: any Model, metadata: [String: String] = [:]) -> SafetensorsFile {
        var file = SafetensorsFile()
        for e in model.namedTensors() {
            file.tensors[e.name] = e.tensor
            if e.isInteger { file.integerKeys.insert(e.name) }
        }
        file.metadata = metadata.merging(["architecture": model.architecture, "classes": "\(model.classes)",
                                          "input_channels": "\(model.inputChannels)", "format": "sqakd-model-1"]) { a, _ in a }
        return file
    }

    /// Throws, naming the file and the tensor, when a checkpoint holds a NaN or an infinity (a diverged
    /// run's weights): such a file must not be evaluated, distilled from or trained on.
    public static func requireFinite(_ file: SafetensorsFile, _ url: URL) throws {
        if let bad = file.firstNonFinite() {
            throw ConfigError("\(url.path): tensor '\(bad.name)' holds \(bad.value) (a diverged run's weights); not used")
        }
    }

    /// Reads a model checkpoint (ours or PyTorch's) and builds the matching zoo model. The candidates are
    /// `architecture` when given, else the file's metadata `architecture`, else every zoo model in zoo
    /// order. For each, the classes and input channels come from the metadata, else from the checkpoint's
    /// tensors at the paths the model's tree names (`ModelZoo.geometry(of:as:)`); the first candidate
    /// whose state dict loads strictly wins. A QAT checkpoint is quantized (scheme, bits and style from its
    /// metadata) before loading. Failure is one line naming the file.
    public static func loadModel(from url: URL, architecture: String? = nil) throws -> any Model {
        let file = try SafetensorsFile.read(url)
        try requireFinite(file, url)
        let candidates = architecture.map { [$0] } ?? file.metadata["architecture"].map { [$0] } ?? ModelZoo.names
        var lastError: Error?
        for name in candidates {
            do {
                let implied = try ModelZoo.geometry(of: file.tensors, as: name)
                let classes = try file.metadata["classes"].map { try integer($0, "classes", url, tensors: implied.classes) }
                    ?? implied.classes
                let inputChannels = try file.metadata["input_channels"]
                    .map { try integer($0, "input_channels", url, tensors: implied.inputChannels) } ?? implied.inputChannels
                let model = try ModelZoo.make(name, classes: classes, inputChannels: inputChannels, seed: 0)
                // A QAT checkpoint names its scheme and bit-width; its quantizers come back calibrated
                // from their stored parameters.
                if let q = file.metadata["quantizer"], q != "fp" {
                    let bits = try file.metadata["bits"].flatMap(Int.init)
                        ?? { throw ConfigError("\(url.path): quantizer \(q) without a bit-width in its metadata") }()
                    let styleName = file.metadata["style"] ?? QuantizationStyle.cifar.rawValue
                    guard let style = QuantizationStyle(rawValue: styleName) else {
                        throw ConfigError("\(url.path): unknown quantization style '\(styleName)' in its metadata " +
                                          "(valid: \(QuantizationStyle.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    let settings = try file.metadata["quantizer_settings"].map { try parseSettings($0, url) } ?? [:]
                    // A tiny-imagenet checkpoint without `activation_quantizers` predates MQBench's shared
                    // placement: its activation quantizers sit on each layer's input.
                    _ = try quantize(model: model, scheme: QuantizerRegistry.scheme(named: q), bits: bits, settings: settings,
                                     style: style, fullPrecisionEdges: file.metadata["fp_edge_layers"] == "true",
                                     perLayerActivations: file.metadata["activation_quantizers"] != "shared")
                }
                try model.load(stateDict: file.tensors, strict: true)
                return model
            } catch {
                lastError = error
            }
        }
        if candidates.count == 1, let lastError {
            throw ConfigError("\(url.path) does not fit \(candidates[0]): \(lastError)")
        }
        throw ConfigError("\(url.path) matches no zoo model (\(ModelZoo.names.joined(separator: ", "))); pass --model")
    }

    /// `quantizer_settings` as checkpoint metadata: `key=value` pairs, sorted, comma-separated
    /// (`alpha=10,alpha_decay=0.0002`); values as Swift's round-trip Double text.
    static func settingsText(_ settings: [String: Double]) -> String {
        settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    private static func parseSettings(_ text: String, _ url: URL) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for item in text.split(separator: ",") {
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let v = Double(kv[1]) else {
                throw ConfigError("\(url.path): metadata quantizer_settings '\(text)' is not key=value,…")
            }
            out[kv[0]] = v
        }
        return out
    }

    /// A metadata count, which must agree with what the tensors imply (checked before a model is built,
    /// so a forged `classes` of 4e9 allocates nothing).
    private static func integer(_ text: String, _ key: String, _ url: URL, tensors implied: Int) throws -> Int {
        guard let v = Int(text), v >= 1 else { throw ConfigError("\(url.path): metadata \(key) '\(text)' is not a positive integer") }
        guard v == implied else { throw ConfigError("\(url.path): metadata \(key) \(v) disagrees with the tensors (\(implied))") }
        return v
    }
}

/// What resuming needs beside the model: every optimizer's state, the objective's own modules and the
/// next epoch.
struct TrainState {
    var nextEpoch: Int
    /// Keyed by optimizer name (`optimizer`, or `optimizer_m` and `optimizer_q` for QAT).
    var optimizers: [String: OptimizerState]
    /// The objective's module state under its own names (`module_list.1.conv.weight`); stored as tensors
    /// beside the optimizers' (whose keys all start with an optimizer name and a dot).
    var auxiliary: [String: Tensor] = [:]
    var auxiliaryIntegerKeys: Set<String> = []

    func save(to url: URL) throws {
        var file = SafetensorsFile()
        for (k, t) in auxiliary { file.tensors[k] = t }
        file.integerKeys = auxiliaryIntegerKeys
        for (name, state) in optimizers {
            for (k, t) in state.tensors { file.tensors[name + "." + k] = t }
            for (k, v) in state.scalars { file.metadata[name + "." + k] = v }
        }
        file.metadata["optimizers"] = optimizers.keys.sorted().joined(separator: ",")
        file.metadata["next_epoch"] = "\(nextEpoch)"
        file.metadata["format"] = "sqakd-train-state-1"
        try file.write(to: url)
    }

    static func load(from url: URL) throws -> TrainState {
        let file = try SafetensorsFile.read(url)
        guard file.metadata["format"] == "sqakd-train-state-1", let e = file.metadata["next_epoch"].flatMap(Int.init),
              let names = file.metadata["optimizers"] else {
            throw ConfigError("\(url.path) is not a training-state file written by sqakd")
        }
        var states = [String: OptimizerState]()
        for name in names.split(separator: ",").map(String.init) {
            var state = OptimizerState()
            let prefix = name + "."
            for (k, t) in file.tensors where k.hasPrefix(prefix) { state.tensors[String(k.dropFirst(prefix.count))] = t }
            for (k, v) in file.metadata where k.hasPrefix(prefix) { state.scalars[String(k.dropFirst(prefix.count))] = v }
            states[name] = state
        }
        let prefixes = states.keys.map { $0 + "." }
        let auxiliary = file.tensors.filter { k, _ in !prefixes.contains { k.hasPrefix($0) } }
        return TrainState(nextEpoch: e, optimizers: states, auxiliary: auxiliary,
                          auxiliaryIntegerKeys: file.integerKeys.filter { auxiliary[$0] != nil })
    }
}
