import Testing
import Tensors
import Kernels

@Suite("GEMM (OpenBLAS vs naive)", .serialized)
struct GEMMTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float
        var testDescription: String { "transA \(transA) transB \(transB) \(m)x\(n)x\(k) α \(alpha) β \(beta)" }
    }

    static let cases: [Case] = [false, true].flatMap { ta in
        [false, true].flatMap { tb in
            [Case(transA: ta, transB: tb, m: 37, n: 23, k: 51, alpha: 1, beta: 0),
             Case(transA: ta, transB: tb, m: 128, n: 10, k: 64, alpha: 0.5, beta: 1),
             Case(transA: ta, transB: tb, m: 1, n: 7, k: 3, alpha: 2, beta: -0.5)]
        }
    }

    private func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = RNG(seed: seed)
        return (0..<count).map { _ in rng.uniform(-1, 1) }
    }

    @Test("sgemm matches the naive twin", arguments: cases)
    func matchesReference(_ c: Case) {
        Threads.set(2)
        let a = random(c.m * c.k, seed: 1), b = random(c.k * c.n, seed: 2), c0 = random(c.m * c.n, seed: 3)
        var fast = c0, ref = c0
        sgemm(&fast, a, transA: c.transA, b, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha, beta: c.beta)
        sgemmReference(&ref, a, transA: c.transA, b, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha, beta: c.beta)
        let worst = zip(fast, ref).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4, "max |fast − ref| = \(worst)")
    }

    @Test("naive twin on a hand-computed case")
    func handComputed() {
        // A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]]: A·B = [[19, 22], [43, 50]], Aᵀ·B = [[26, 30], [38, 44]].
        var c = [Float](repeating: 0, count: 4)
        sgemmReference(&c, [1, 2, 3, 4], transA: false, [5, 6, 7, 8], transB: false, m: 2, n: 2, k: 2)
        #expect(c == [19, 22, 43, 50])
        sgemmReference(&c, [1, 2, 3, 4], transA: true, [5, 6, 7, 8], transB: false, m: 2, n: 2, k: 2)
        #expect(c == [26, 30, 38, 44])
        sgemm(&c, [1, 2, 3, 4], transA: false, [5, 6, 7, 8], transB: true, m: 2, n: 2, k: 2)
        #expect(c == [17, 23, 39, 53])
    }

    @Test("repeated calls are bit-identical")
    func determinism() {
        Threads.set(2)
        let m = 256, n = 192, k = 300
        let a = random(m * k, seed: 4), b = random(k * n, seed: 5)
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        sgemm(&c1, a, transA: true, b, transB: false, m: m, n: n, k: k)
        sgemm(&c2, a, transA: true, b, transB: false, m: m, n: n, k: k)
        #expect(c1.map(\.bitPattern) == c2.map(\.bitPattern))
    }
}
