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
        var file = SafetensorsFile()
        for e in model.namedTensors() {
            file.tensors[e.name] = e.tensor
            if e.isInteger { file.integerKeys.insert(e.name) }
        }
        file.metadata = metadata.merging(["architecture": model.architecture, "classes": "\(model.classes)",
                                          "input_channels": "\(model.inputChannels)", "format": "sqakd-model-1"]) { a, _ in a }
        try file.write(to: url)
    }

    /// Reads a model checkpoint (ours or PyTorch's) and builds the matching zoo model: the architecture
    /// comes from `architecture` when given, else from the file's metadata, else from the first zoo model
    /// whose state-dict keys and shapes all match.
    public static func loadModel(from url: URL, architecture: String? = nil) throws -> any Model {
        let file = try SafetensorsFile.read(url)
        let classes: Int
        if let c = file.metadata["classes"].flatMap(Int.init) { classes = c } else if let w = file.tensors["linear.weight"] ?? file.tensors["classifier.weight"] {
            classes = w.shape[0]
        } else {
            throw ConfigError("\(url.path): cannot tell the number of classes (no 'linear.weight' or 'classifier.weight')")
        }
        let inputChannels = file.metadata["input_channels"].flatMap(Int.init)
            ?? (file.tensors["conv1.weight"] ?? file.tensors.first { $0.key.hasPrefix("layer0.") && $0.key.hasSuffix("weight") && $0.value.shape.count == 4 }?.value)?.shape[1]
            ?? 3
        let candidates = architecture.map { [$0] } ?? file.metadata["architecture"].map { [$0] } ?? ModelZoo.names
        var lastError: Error?
        for name in candidates {
            do {
                let model = try ModelZoo.make(name, classes: classes, inputChannels: inputChannels, seed: 0)
                // A QAT checkpoint names its scheme and bit-width; its quantizers come back calibrated
                // from their stored parameters.
                if let q = file.metadata["quantizer"], q != "fp" {
                    let bits = try file.metadata["bits"].flatMap(Int.init)
                        ?? { throw ConfigError("\(url.path): quantizer \(q) without a bit-width in its metadata") }()
                    _ = try quantize(model: model, scheme: QuantizerRegistry.scheme(named: q), bits: bits,
                                     style: file.metadata["style"] == "tiny-imagenet" ? .tinyImageNet : .cifar)
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
}

/// What resuming needs beside the model: every optimizer's state and the next epoch.
struct TrainState {
    var nextEpoch: Int
    /// Keyed by optimizer name (`optimizer`, or `optimizer_m` and `optimizer_q` for QAT).
    var optimizers: [String: OptimizerState]

    func save(to url: URL) throws {
        var file = SafetensorsFile()
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
        return TrainState(nextEpoch: e, optimizers: states)
    }
}
