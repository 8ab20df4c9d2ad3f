import Testing
import Tensors
@testable import Kernels

/// The option-A shortcut kernel against its naive twin, for every input/output block pairing, including
/// pads that are not multiples of the block (16 → 32 in nChw16c pads 8).
struct ShortcutKernelsTests {
    typealias S = LayerKernelsSupport

    struct Case: CustomTestStringConvertible, Sendable {
        var N: Int, Cin: Int, Cout: Int, H: Int, W: Int, s: Int
        var testDescription: String { "\(Cin)→\(Cout) \(H)×\(W) s\(s)" }
    }

    static let cases: [Case] = [
        Case(N: 2, Cin: 16, Cout: 32, H: 8, W: 8, s: 2),
        Case(N: 2, Cin: 32, Cout: 64, H: 7, W: 9, s: 2),
        Case(N: 2, Cin: 32, Cout: 48, H: 6, W: 6, s: 2),
        Case(N: 2, Cin: 16, Cout: 24, H: 5, W: 5, s: 1),
        Case(N: 1, Cin: 16, Cout: 32, H: 6, W: 6, s: 3),
    ]

    @Test(arguments: cases)
    func matchesNaive(_ t: Case) {
        let pad = (t.Cout - t.Cin) / 2
        let Ho = (t.H + t.s - 1) / t.s, Wo = (t.W + t.s - 1) / t.s
        let x = S.random([t.N, t.Cin, t.H, t.W], seed: 1), dy = S.random([t.N, t.Cout, Ho, Wo], seed: 2)
        let y0 = Tensor(shape: [t.N, t.Cout, Ho, Wo]), dx0 = Tensor(shape: x.shape)
        withUnsafeMutablePointers(y0, x) { y0, x in
            optionAShortcutForwardNaive(y: y0, x: x, N: t.N, Cin: t.Cin, H: t.H, W: t.W, Cout: t.Cout,
                                        stride: t.s, pad: pad)
        }
        withUnsafeMutablePointers(dx0, dy) { dx0, dy in
            optionAShortcutBackwardNaive(dx: dx0, dy: dy, N: t.N, Cin: t.Cin, H: t.H, W: t.W, Cout: t.Cout,
                                         stride: t.s, pad: pad)
        }
        for li in S.layouts where t.Cin % li.block == 0 {
            for lo in S.layouts where t.Cout % lo.block == 0 {
                let y = Tensor(shape: y0.shape, layout: lo), dx = Tensor(shape: x.shape, layout: li)
                y.fill(.nan)
                dx.fill(.nan)
                let xb = x.toLayout(li), dyb = dy.toLayout(lo)
                withUnsafeMutablePointers(y, xb) { y, xb in
                    optionAShortcutForward(y: y, x: xb, N: t.N, Cin: t.Cin, H: t.H, W: t.W, bi: li.block,
                                           Cout: t.Cout, bo: lo.block, stride: t.s, pad: pad)
                }
                withUnsafeMutablePointers(dx, dyb) { dx, dyb in
                    optionAShortcutBackward(dx: dx, dy: dyb, N: t.N, Cin: t.Cin, H: t.H, W: t.W,
                                            bi: li.block, Cout: t.Cout, bo: lo.block, stride: t.s, pad: pad)
                }
                #expect(S.identical(y, y0), "y, \(li) → \(lo)")
                #expect(S.identical(dx, dx0), "dx, \(li) → \(lo)")
            }
        }
    }
}
