import TestSupport
import Foundation
import Kernels
import NN
import Quantization
import Tensors
import Testing

@Suite struct QConv2dTests {
    /// With identity quantizers QConv2d is conv(x, W) + b times |s|: every gradient (input, weight, bias,
    /// output_scale, with s < 0 to exercise sign(s)) matches central differences.
    @Test func identityQuantizersMatchFiniteDifferences() {
        var rng = RNG(seed: 1)
        let conv = Conv2d(inputChannels: 4, outputChannels: 16, kernelSize: 3, stride: 1, padding: 1, bias: true)
        conv.resetParameters(rng: &rng)
        let q = QConv2d(conv, weightQuantizer: IdentityQuantizer(role: .weight),
                        inputQuantizer: IdentityQuantizer(role: .activation), outputScale: true)
        q.outputScale!.value[0] = -1.3
        #expect(q.parameters().map(\.name) == ["weight", "bias", "output_scale"])
        let x = randomTensor([2, 4, 5, 5], seed: 2)
        let failures = GradientCheck(h: 1e-2, atol: 2e-3, rtol: 1e-2, probes: 16).check(q, input: x)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// A 1→1 channel 2×2 conv on a 2×2 input (one output), EWGS 2 bits, lW = −1, uW = 1, lA = 0, uA = 1,
    /// bias 0.1, output_scale −2, dy = 1.
    ///   W = [0.9, −0.2, 0.3, −1.0]: n = (W+1)/2 = [0.95, 0.4, 0.65, 0]; ·3 = [2.85, 1.2, 1.95, 0] → [3, 1, 2, 0]
    ///       → q = [1, 1/3, 2/3, 0] → W_q = [1, −1/3, 1/3, −1].
    ///   x = [0.2, 0.6, 1.5, −0.3]: ·3 (clamped) = [0.6, 1.8, 3, 0] → x_q = [1/3, 2/3, 1, 0].
    ///   y₀ = 1/3 − 2/9 + 1/3 + 0 + 0.1 = 4/9 + 0.1;  y = |−2|·y₀.
    /// Backward: g = dy·|s| = 2;  ∂s = sign(s)·dy·y₀ = −y₀;  db = 2;  dW_q = g·x_q = [2/3, 4/3, 2, 0];
    ///   dW = 2·dW_q/(uW − lW) (all n in [0, 1]) = dW_q;  ∂uW = −Σ dW·n = −(0.95·2/3 + 0.4·4/3 + 0.65·2) = −37/15;
    ///   ∂lW = Σ dW·(n − 1) = −(0.05·2/3 + 0.6·4/3 + 0.35·2) = −23/15;
    ///   dx_q = g·W_q = [2, −2/3, 2/3, −2] → dx = [2, −2/3, 0, 0] (x = 1.5 and −0.3 are clamped);
    ///   ∂uA = −(0.2·2 − 0.6·2/3) = 0;  ∂lA = (0.2 − 1)·2 + (0.6 − 1)·(−2/3) = −4/3.
    @Test func ewgsHandComputedConv() {
        let conv = Conv2d(inputChannels: 1, outputChannels: 1, kernelSize: 2, bias: true)
        for (i, v) in [Float(0.9), -0.2, 0.3, -1.0].enumerated() { conv.weight.value[i] = v }
        conv.bias!.value[0] = 0.1
        let wq = EWGSQuantizer(role: .weight, bits: 2), aq = EWGSQuantizer(role: .activation, bits: 2)
        wq.lower.value[0] = -1; wq.upper.value[0] = 1
        aq.lower.value[0] = 0; aq.upper.value[0] = 1
        let q = QConv2d(conv, weightQuantizer: wq, inputQuantizer: aq, outputScale: true)
        q.outputScale!.value[0] = -2
        let x = Tensor(shape: [1, 1, 2, 2], values: [0.2, 0.6, 1.5, -0.3])
        let y = q.forward(x, mode: .train)
        let y0: Float = 4.0 / 9 + 0.1
        #expect(isClose(y.plainArray[0], 2 * y0, atol: 1e-5, rtol: 1e-5))
        let dx = q.backward(Tensor(shape: [1, 1, 1, 1], values: [1])).plainArray
        #expect(isClose(q.outputScale!.grad[0], -y0, atol: 1e-5, rtol: 1e-5))
        #expect(isClose(conv.bias!.grad[0], 2, atol: 1e-5, rtol: 1e-5))
        for (a, b) in zip(conv.weight.grad.array, [2.0 / 3, 4.0 / 3, 2, 0] as [Float]) { #expect(isClose(a, b, atol: 1e-5, rtol: 1e-5), "\(conv.weight.grad.array)") }
        #expect(isClose(wq.upper.grad[0], -37.0 / 15, atol: 1e-5, rtol: 1e-5) && isClose(wq.lower.grad[0], -23.0 / 15, atol: 1e-5, rtol: 1e-5))
        for (a, b) in zip(dx, [2, -2.0 / 3, 0, 0] as [Float]) { #expect(isClose(a, b, atol: 1e-5, rtol: 1e-5), "\(dx)") }
        #expect(isClose(aq.upper.grad[0], 0, atol: 1e-5, rtol: 1e-5) && isClose(aq.lower.grad[0], -4.0 / 3, atol: 1e-5, rtol: 1e-5))
        #expect(q.parameters().map(\.name) == ["weight", "bias", "uW", "lW", "uA", "lA", "uA_t", "lA_t", "output_scale"])
        #expect(q.buffers().map(\.name) == ["bkwd_scaling_factorW", "bkwd_scaling_factorA", "init"])
    }

    /// Reference `initialize`: uW = 3·std(W), uA = 3·std(x)/√(1 − 2/π), lA = min(x), and
    /// output_scale = mean|conv(x, W) + b| / mean|conv(x_q, W_q) + b| (computed here with the naive conv).
    @Test func calibrationSetsOutputScale() {
        var rng = RNG(seed: 9)
        let conv = Conv2d(inputChannels: 3, outputChannels: 8, kernelSize: 3, padding: 1, bias: true)
        conv.resetParameters(rng: &rng)
        let q = QConv2d(conv, weightQuantizer: EWGSQuantizer(role: .weight, bits: 2),
                        inputQuantizer: EWGSQuantizer(role: .activation, bits: 2), outputScale: true)
        let x = randomTensor([2, 3, 6, 6], seed: 10, 0, 2)
        q.calibrate(x)
        let wStats = conv.weight.value.withUnsafeMutablePointer { w in tensorStatistics(w, count: conv.weight.count) }
        let xStats = x.withUnsafeMutablePointer { p in tensorStatistics(p, count: x.count) }
        let wq = q.weightQuantizer as! EWGSQuantizer, aq = q.inputQuantizer as! EWGSQuantizer
        #expect(wq.upper.value[0] == Float(wStats.std) * 3 && wq.lower.value[0] == -Float(wStats.std) * 3)
        #expect(isClose(aq.upper.value[0], Float(3 * xStats.std / (1 - 2 / Double.pi).squareRoot()), atol: 1e-5, rtol: 1e-5))
        #expect(aq.lower.value[0] == xStats.min)
        let g = conv.geometry(batch: 2, inputHeight: 6, inputWidth: 6)
        func meanAbsConv(_ x: Tensor, _ w: Tensor) -> Double {
            let y = Tensor(shape: g.outputShape)
            withUnsafeMutablePointers(y, x, w, conv.bias!.value) { y, x, w, b in
                convForwardReference(y, yBlock: 1, x, xBlock: 1, w, b, g)
            }
            return y.array.reduce(0) { $0 + Double(abs($1)) } / Double(y.count)
        }
        let xq = aq.forward(x, mode: .eval), wqT = wq.forward(conv.weight.value, mode: .eval)
        let expected = meanAbsConv(x, conv.weight.value) / meanAbsConv(xq, wqT)
        #expect(abs(Double(q.outputScale!.value[0]) - expected) < 1e-5 * expected,
                "\(meanAbsConv(x, conv.weight.value)) \(meanAbsConv(xq, wqT)) \(q.outputScale!.value[0])")
    }

    /// QLinear with identity quantizers: gradients match central differences.
    @Test func qLinearIdentityMatchesFiniteDifferences() {
        var rng = RNG(seed: 3)
        let linear = Linear(inputFeatures: 6, outputFeatures: 5)
        linear.resetParameters(rng: &rng)
        let q = QLinear(linear, weightQuantizer: IdentityQuantizer(role: .weight),
                        inputQuantizer: IdentityQuantizer(role: .activation), outputScale: true)
        q.outputScale!.value[0] = 0.7
        let failures = GradientCheck(h: 1e-2, atol: 2e-3, rtol: 1e-2, probes: 16).check(q, input: randomTensor([3, 6], seed: 4))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
