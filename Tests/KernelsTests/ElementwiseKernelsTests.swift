import Testing
import Tensors
@testable import Kernels

/// Chunked elementwise kernels against their single-loop twins (bit-identical), on a count that spans
/// several chunks with a ragged tail.
struct ElementwiseKernelsTests {
    typealias S = LayerKernelsSupport
    static let count = 2 * elementwiseChunk + 1234

    typealias Unary = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void
    typealias Binary = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void

    func compareUnary(_ fast: Unary, _ naive: Unary, lo: Float, hi: Float) {
        let x = S.random([Self.count], seed: 1, lo, hi)
        let y0 = Tensor(shape: [Self.count]), y1 = Tensor(shape: [Self.count])
        withUnsafeMutablePointers(y0, x) { y0, x in naive(y0, x, Self.count) }
        withUnsafeMutablePointers(y1, x) { y1, x in fast(y1, x, Self.count) }
        #expect(S.identical(y0, y1))
    }

    func compareBinary(_ fast: Binary, _ naive: Binary, lo: Float, hi: Float) {
        let a = S.random([Self.count], seed: 2), b = S.random([Self.count], seed: 3, lo, hi)
        let y0 = Tensor(shape: [Self.count]), y1 = Tensor(shape: [Self.count])
        withUnsafeMutablePointers(y0, a, b) { y0, a, b in naive(y0, a, b, Self.count) }
        withUnsafeMutablePointers(y1, a, b) { y1, a, b in fast(y1, a, b, Self.count) }
        #expect(S.identical(y0, y1))
    }

    @Test func relu() {
        compareUnary({ reluForward(y: $0, x: $1, count: $2) }, { reluForwardNaive(y: $0, x: $1, count: $2) }, lo: -1, hi: 1)
        compareBinary({ reluBackward(dx: $0, dy: $1, y: $2, count: $3) },
                      { reluBackwardNaive(dx: $0, dy: $1, y: $2, count: $3) }, lo: -1, hi: 1)
    }

    @Test func relu6() {
        compareUnary({ relu6Forward(y: $0, x: $1, count: $2) }, { relu6ForwardNaive(y: $0, x: $1, count: $2) }, lo: -3, hi: 9)
        compareBinary({ relu6Backward(dx: $0, dy: $1, y: $2, count: $3) },
                      { relu6BackwardNaive(dx: $0, dy: $1, y: $2, count: $3) }, lo: -3, hi: 9)
    }

    @Test func arithmetic() {
        compareBinary({ addForward(y: $0, a: $1, b: $2, count: $3) }, { addForwardNaive(y: $0, a: $1, b: $2, count: $3) },
                      lo: -1, hi: 1)
        compareBinary({ multiplyForward(y: $0, a: $1, b: $2, count: $3) },
                      { multiplyForwardNaive(y: $0, a: $1, b: $2, count: $3) }, lo: -1, hi: 1)
        compareUnary({ scaleForward(y: $0, x: $1, s: 0.37, count: $2) }, { scaleForwardNaive(y: $0, x: $1, s: 0.37, count: $2) },
                     lo: -1, hi: 1)
        let x = S.random([Self.count], seed: 4)
        let y0 = S.random([Self.count], seed: 5), y1 = y0.copy()
        withUnsafeMutablePointers(y0, x) { y0, x in accumulateNaive(y: y0, x: x, count: Self.count) }
        withUnsafeMutablePointers(y1, x) { y1, x in accumulate(y: y1, x: x, count: Self.count) }
        #expect(S.identical(y0, y1))
    }

    @Test func reluValuesAndMasks() {
        let x = Tensor(shape: [6], values: [-2, -0.5, 0, 0.5, 6, 7])
        let y = Tensor(shape: [6]), y6 = Tensor(shape: [6])
        withUnsafeMutablePointers(y, x) { y, x in reluForward(y: y, x: x, count: 6) }
        withUnsafeMutablePointers(y6, x) { y6, x in relu6Forward(y: y6, x: x, count: 6) }
        #expect(y.array == [0, 0, 0, 0.5, 6, 7])
        #expect(y6.array == [0, 0, 0, 0.5, 6, 6])
        let dy = Tensor(shape: [6], values: [1, 1, 1, 1, 1, 1])
        let dx = Tensor(shape: [6]), dx6 = Tensor(shape: [6])
        withUnsafeMutablePointers(dx, dy, y) { dx, dy, y in reluBackward(dx: dx, dy: dy, y: y, count: 6) }
        withUnsafeMutablePointers(dx6, dy, y6) { dx6, dy, y6 in relu6Backward(dx: dx6, dy: dy, y: y6, count: 6) }
        #expect(dx.array == [0, 0, 0, 1, 1, 1])
        #expect(dx6.array == [0, 0, 0, 1, 0, 0])
    }
}
