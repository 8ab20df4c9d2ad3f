import Kernels
import Tensors

/// Fully connected layer (`torch.nn.Linear`).
///
/// Shapes: x [N, in] plain → y [N, out]; weight [out, in], bias [out].
/// Forward:  y = x·Wᵀ + b.
/// Backward: dW += dyᵀ·x, db += Σ_n dy[n], dx = dy·W.
///
/// Parameters start at zero: call `resetParameters(rng:)` (PyTorch's default) or a model's own init.
public final class Linear: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    /// [out, in].
    public let weight: Parameter
    /// [out], or nil without bias.
    public let bias: Parameter?

    /// The input of the last training forward (nil after `.eval` forwards and after `backward`).
    private var savedInput: Tensor?

    public init(inputFeatures: Int, outputFeatures: Int, bias: Bool = true) {
        precondition(inputFeatures > 0 && outputFeatures > 0, "invalid Linear(\(inputFeatures)→\(outputFeatures))")
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        weight = Parameter(Tensor(shape: [outputFeatures, inputFeatures]))
        self.bias = bias ? Parameter(Tensor(shape: [outputFeatures])) : nil
    }

    /// PyTorch's default init: kaiming_uniform(a = √5) for the weight, i.e. U(±1/√in), and U(±1/√in) for
    /// the bias. Draws the weight in storage order, then the bias.
    public func resetParameters(rng: inout RNG) {
        let bound = 1 / Float(inputFeatures).squareRoot()
        weight.value.withUnsafeMutablePointer { w in for i in 0..<weight.count { w[i] = rng.uniform(-bound, bound) } }
        if let bias { bias.value.withUnsafeMutablePointer { b in for i in 0..<bias.count { b[i] = rng.uniform(-bound, bound) } } }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        precondition(x.layout == .plain && x.shape.count == 2 && x.shape[1] == inputFeatures,
                     "Linear(\(inputFeatures)→\(outputFeatures)) expects a plain [N, \(inputFeatures)] input " +
                     "(add a Flatten before it), got \(x)")
        let n = x.shape[0]
        let y = Tensor(shape: [n, outputFeatures], zeroed: false)
        withUnsafeMutablePointers(y, x, weight.value) { y, x, w in
            sgemm(y, x, transA: false, w, transB: true, m: n, n: outputFeatures, k: inputFeatures)
        }
        if let bias {
            withUnsafeMutablePointers(y, bias.value) { y, b in
                for i in 0..<n {
                    let row = y + i * outputFeatures
                    for j in 0..<outputFeatures { row[j] += b[j] }
                }
            }
        }
        savedInput = mode == .train ? x : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput else { preconditionFailure("Linear backward without a training forward") }
        let n = x.shape[0]
        precondition(dy.layout == .plain && dy.shape == [n, outputFeatures],
                     "Linear backward: dy \(dy), expected plain [\(n), \(outputFeatures)]")
        withUnsafeMutablePointers(weight.grad, dy, x) { dw, dy, x in
            sgemm(dw, dy, transA: true, x, transB: false, m: outputFeatures, n: inputFeatures, k: n, beta: 1)
        }
        if let bias {
            withUnsafeMutablePointers(dy, bias.grad) { dy, db in
                for i in 0..<n {
                    let row = dy + i * outputFeatures
                    for j in 0..<outputFeatures { db[j] += row[j] }
                }
            }
        }
        let dx = Tensor(shape: [n, inputFeatures], zeroed: false)
        withUnsafeMutablePointers(dx, dy, weight.value) { dx, dy, w in
            sgemm(dx, dy, transA: false, w, transB: false, m: n, n: inputFeatures, k: outputFeatures)
        }
        savedInput = nil
        return dx
    }

    public func parameters() -> [(name: String, parameter: Parameter)] {
        var list = [(name: "weight", parameter: weight)]
        if let bias { list.append((name: "bias", parameter: bias)) }
        return list
    }
}
