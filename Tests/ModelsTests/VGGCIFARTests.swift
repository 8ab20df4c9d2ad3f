import TestSupport
import Testing
import NN
import Tensors
@testable import Models

@Suite("CIFAR VGG")
struct VGGCIFARTests {
    @Test func blockGradients() {
        var rng = RNG(seed: 31)
        let block = VGGBlock(inputChannels: 8, outputChannels: 16, rng: &rng)
        let failures = smoothCheck.check(block, input: randomTensor([2, 8, 5, 5], seed: 32))
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// VGG-8 end to end on 8×8 inputs (the smallest that survives three 2×2 pools).
    @Test func wholeNetworkGradients() {
        var rng = RNG(seed: 33)
        let model = VGGCIFAR(configuration: .s, classes: 4, rng: &rng)
        let check = GradientCheck(h: 5e-4, atol: 4e-3, probes: 4, skipNonSmooth: true)
        let failures = check.check(model, input: randomTensor([4, 3, 8, 8], seed: 34), checkInput: false)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test(arguments: [("vgg8", 32), ("vgg13", 32), ("vgg11", 64)])
    func forwardShapes(name: String, size: Int) throws {
        let model = try ModelZoo.make(name, classes: 7, seed: 5)
        let x = randomTensor([2, 3, size, size], seed: 6)
        let y = model.forward(x, mode: .train)
        #expect(y.shape == [2, 7])
        #expect(y.array.allSatisfy { $0.isFinite })
        _ = model.backward(randomTensor([2, 7], seed: 7))
        #expect(model.parameters().allSatisfy { $0.parameter.grad.array.contains { $0 != 0 } })
        #expect(model.forward(x, mode: .eval).shape == [2, 7])
    }

    @Test func configurations() {
        #expect(VGGCIFAR.Configuration.s.depth == 8)
        #expect(VGGCIFAR.Configuration.a.depth == 11)
        #expect(VGGCIFAR.Configuration.b.depth == 13)
        #expect(VGGCIFAR.Configuration.allCases.allSatisfy { $0.groups.count == 5 && $0.groups[4].last == 512 })
    }
}
