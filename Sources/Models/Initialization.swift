import NN
import Tensors

/// Weight initialisers shared by the model families. Each draws from the passed RNG in storage order,
/// so a model built from the same seed is bit-identical. (PyTorch's draws cannot be reproduced; golden
/// tests load PyTorch's weights instead.)
enum Initialization {
    /// Entries ~ N(0, std²).
    static func normal(_ t: Tensor, std: Float, rng: inout RNG) {
        t.withUnsafeMutablePointer { p in for i in 0..<t.count { p[i] = std * rng.normal() } }
    }

    /// Entries ~ U[−bound, bound).
    static func uniform(_ t: Tensor, bound: Float, rng: inout RNG) {
        t.withUnsafeMutablePointer { p in for i in 0..<t.count { p[i] = rng.uniform(-bound, bound) } }
    }

    /// `torch.nn.init.kaiming_normal_` defaults (mode fan_in, ReLU gain √2): std = √(2 / fan_in), where
    /// fan_in = product of all dimensions but the first ([O, I, K, K] → I·K·K; [out, in] → in).
    static func kaimingNormalFanIn(_ t: Tensor, rng: inout RNG) {
        let fanIn = t.shape.dropFirst().reduce(1, *)
        normal(t, std: (2 / Float(fanIn)).squareRoot(), rng: &rng)
    }

    /// `torch.nn.init.kaiming_normal_(mode="fan_out")` with the ReLU gain √2 (torchvision's ResNet and
    /// MobileNetV2): std = √(2 / fan_out), where fan_out = first dimension × receptive field
    /// ([O, I/groups, K, K] → O·K·K, whatever the groups, as PyTorch's `_calculate_fan_in_and_fan_out`).
    static func kaimingNormalFanOut(_ t: Tensor, rng: inout RNG) {
        let fanOut = t.shape[0] * t.shape.dropFirst(2).reduce(1, *)
        normal(t, std: (2 / Float(fanOut)).squareRoot(), rng: &rng)
    }

    /// `torch.nn.init.kaiming_uniform_` defaults (a = 0, mode fan_in, leaky-ReLU gain √2): U(±√(6 / fan_in)),
    /// fan_in as in `kaimingNormalFanIn`.
    static func kaimingUniformFanIn(_ t: Tensor, rng: inout RNG) {
        let fanIn = t.shape.dropFirst().reduce(1, *)
        uniform(t, bound: (6 / Float(fanIn)).squareRoot(), rng: &rng)
    }
}
