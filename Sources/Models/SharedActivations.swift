import NN
import Quantization
import Tensors

/// A point in a block's forward where one tensor is read by several layers, e.g. a residual block's input,
/// read by `conv1`, by the downsample convolution and by the identity branch of the add.
public struct ActivationSite: Sendable {
    /// Child name of the slot that holds the tensor's shared quantizer once installed (`input_quant`).
    public let slot: String
    /// Paths, relative to the block, of the weight layers that read the tensor. Readers without weights
    /// (an identity branch, an option-A shortcut) are not listed: they read whatever the slot produces.
    public let consumers: [String]

    public init(slot: String, consumers: [String]) {
        self.slot = slot
        self.consumers = consumers
    }
}

/// A block's slot for one shared activation fake-quantizer (`input_quant`, `squeeze_activation_quant`):
/// empty, it passes the tensor through (y = x, dx = dy) and adds no child; holding a layer (installed by
/// `shareActivationQuantizers`), it is the replaceable child `name` and reads the tensor through it.
public final class ActivationSlot {
    /// The child name, and the module path's last component (`layer1.0.input_quant`).
    public let name: String
    public private(set) var layer: Layer?

    public init(_ name: String) {
        self.name = name
    }

    /// layer(x), or x while empty.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        layer?.forward(x, mode: mode) ?? x
    }

    /// layer'(dy), or dy while empty.
    public func backward(_ dy: Tensor) -> Tensor {
        layer?.backward(dy) ?? dy
    }

    /// The slot's entry in its block's `children`: none while empty, else the replaceable child `name`.
    public var children: [Child] {
        guard let layer else { return [] }
        return [Child(name, layer) { self.layer = $0 }]
    }

    /// Puts `layer` in the slot; `LayerTreeError.noLayer(path: slot)` when `slot` is not this slot's name.
    public func install(_ layer: Layer, at slot: String) throws {
        guard slot == name else { throw LayerTreeError.noLayer(path: slot) }
        self.layer = layer
    }
}

/// A block that can read a tensor through one shared activation fake-quantizer instead of one quantizer
/// per consuming layer: MQBench's graph (`academic_quantizer.py`, `_insert_fake_quantize_for_act_quant`)
/// inserts one fake-quantizer after each tensor that feeds a quantized conv/linear and rewires **every**
/// user of the tensor to the quantized copy, so the identity branch of a residual add reads it too
/// (reference §2.3.1).
public protocol ActivationSharing: Layer {
    var activationSites: [ActivationSite] { get }
    /// Puts `layer` in the slot named `slot` (one of `activationSites`); the block's forward then reads the
    /// site's tensor through it and its backward sends the summed gradient of all readers through it.
    func installActivationQuantizer(_ layer: Layer, at slot: String) throws
}

/// MQBench's activation placement on a quantized model: at every `ActivationSite` whose consumers are all
/// quantized layers with input quantizers of one bit-width, the first consumer's input quantizer moves
/// into the site's slot (a `QuantizedActivation`) and every consumer is rebuilt without one. Sites with an
/// unquantized or full-precision consumer are left as they are. Returns the paths of the installed slots.
@discardableResult
public func shareActivationQuantizers(in model: any Model) throws -> [String] {
    var blocks: [(path: String, block: ActivationSharing)] = []
    model.walk { path, layer in
        if let b = layer as? ActivationSharing { blocks.append((path, b)) }
        return true
    }
    var installed: [String] = []
    for (path, block) in blocks {
        for site in block.activationSites {
            let paths = site.consumers.map { path.isEmpty ? $0 : path + "." + $0 }
            let layers = paths.map { model.layer(at: $0) }
            let quantizers = layers.map { ($0 as? QuantizedLayer)?.inputQuantizer }
            guard let first = quantizers.first ?? nil, quantizers.allSatisfy({ $0?.bits == first.bits }) else { continue }
            var replacements: [String: Layer] = [:]
            for (p, layer) in zip(paths, layers) {
                guard let q = layer as? QuantizedLayer else { continue }
                guard q.outputScale == nil else {
                    throw QuantizationError.invalidArgument("\(p): shared activation quantizers need a scheme without an output scale")
                }
                if let c = q as? QConv2d {
                    replacements[p] = QConv2d(c.conv, weightQuantizer: c.weightQuantizer, inputQuantizer: nil, outputScale: false)
                } else if let l = q as? QLinear {
                    replacements[p] = QLinear(l.linear, weightQuantizer: l.weightQuantizer, inputQuantizer: nil, outputScale: false)
                }
            }
            try model.replaceLayers { p, _ in replacements[p] }
            try block.installActivationQuantizer(QuantizedActivation(first), at: site.slot)
            installed.append(path.isEmpty ? site.slot : path + "." + site.slot)
        }
    }
    return installed
}
