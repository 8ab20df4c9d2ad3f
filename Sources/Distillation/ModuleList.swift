import NN
import Tensors

/// A container of named modules with no forward of its own (`torch.nn.ModuleList`): a node of the module
/// tree that only names its children, so that their parameters, buffers and state dict come out under the
/// authors' names (`module_list.1.conv.weight`, `criterion_kd.0.log_scale`). The objectives call their
/// modules directly.
public final class ModuleList: Layer {
    public let entries: [(name: String, layer: Layer)]

    public init(_ entries: [(name: String, layer: Layer)]) { self.entries = entries }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        preconditionFailure("ModuleList has no forward; call its modules")
    }

    public func backward(_ dy: Tensor) -> Tensor {
        preconditionFailure("ModuleList has no backward; call its modules")
    }

    public var children: [Child] { entries.map { Child($0.name, $0.layer) } }
}
