import TestSupport
import Testing
import Tensors
@testable import NN

struct OptionAShortcutTests {
    typealias K = LayerTestKit

    @Test func valuesByHand() {
        // [1, 2, 3, 3] → stride 2 keeps rows/columns 0 and 2; 2 → 4 channels pads one zero channel each side.
        let x = Tensor(shape: [1, 2, 3, 3], values: (0..<18).map(Float.init))
        let s = OptionAShortcut(inputChannels: 2, outputChannels: 4, stride: 2)
        let y = s.forward(x, mode: .train)
        #expect(y.shape == [1, 4, 2, 2])
        #expect(y.array == [0, 0, 0, 0, 0, 2, 6, 8, 9, 11, 15, 17, 0, 0, 0, 0])
        let dx = s.backward(Tensor(shape: [1, 4, 2, 2], values: (1...16).map(Float.init)))
        #expect(dx.array == [5, 0, 6, 0, 0, 0, 7, 0, 8, 9, 0, 10, 0, 0, 0, 11, 0, 12])
        #expect(s.parameters().isEmpty)
    }

    @Test func outputLayouts() {
        let x = randomTensor([2, 16, 4, 4], seed: 1)
        #expect(OptionAShortcut(inputChannels: 16, outputChannels: 32, stride: 2)
                .forward(x.toLayout(.blocked(16)), mode: .train).layout == .blocked(16))
        #expect(OptionAShortcut(inputChannels: 16, outputChannels: 24, stride: 2)
                .forward(x.toLayout(.blocked(16)), mode: .train).layout == .plain)
        #expect(OptionAShortcut(inputChannels: 16, outputChannels: 24, stride: 2)
                .forward(x.toLayout(.blocked(8)), mode: .train).layout == .blocked(8))
    }

    @Test(arguments: LayerTestKit.layouts)
    func gradientsAndLayouts(layout: Layout) {
        for (cin, cout, stride) in [(16, 32, 2), (32, 64, 2), (16, 24, 2), (16, 32, 1)] {
            let x = randomTensor([2, cin, 5, 5], seed: UInt64(cout)).toLayout(layout)
            let s = OptionAShortcut(inputChannels: cin, outputChannels: cout, stride: stride)
            let y = s.forward(x, mode: .train)
            let reference = OptionAShortcut(inputChannels: cin, outputChannels: cout, stride: stride)
                .forward(x.toLayout(.plain), mode: .train)
            expectClose(y, reference, atol: 0, rtol: 0, "\(cin)→\(cout) \(layout)")
            let failures = GradientCheck().check(s, input: x)
            #expect(failures.isEmpty, "\(cin)→\(cout) s\(stride): \(failures.prefix(5))")
            #expect(s.backward(randomTensor(y.shape, seed: 3)).layout == layout)
        }
    }
}
