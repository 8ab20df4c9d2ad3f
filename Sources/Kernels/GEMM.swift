import CBLAS

// Single-precision matrix multiply, row-major: C = α·op(A)·op(B) + β·C with op(X) = X or Xᵀ.
// Legend: op(A) is [M, K], op(B) is [K, N], C is [M, N]. A is stored [M, K] (or [K, M] when `transA`),
// B is stored [K, N] (or [N, K] when `transB`), all densely packed (leading dimension = row length).
// OpenBLAS partitions the work by thread count only, so results are bit-identical for a fixed
// `Threads.count`.

/// Fast path: `cblas_sgemm` (OpenBLAS).
public func sgemm(_ c: UnsafeMutablePointer<Float>,
                  _ a: UnsafePointer<Float>, transA: Bool,
                  _ b: UnsafePointer<Float>, transB: Bool,
                  m: Int, n: Int, k: Int,
                  alpha: Float = 1, beta: Float = 0) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C·β; do the same without calling it with empty operands.
        for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(transA ? m : k), b, Int32(transB ? k : n), beta, c, Int32(n))
}

/// Naive twin of `sgemm` (double-precision sums), the test oracle.
public func sgemmReference(_ c: UnsafeMutablePointer<Float>,
                           _ a: UnsafePointer<Float>, transA: Bool,
                           _ b: UnsafePointer<Float>, transB: Bool,
                           m: Int, n: Int, k: Int,
                           alpha: Float = 1, beta: Float = 0) {
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0
            for p in 0..<k {
                let av = transA ? a[p * m + i] : a[i * k + p]
                let bv = transB ? b[j * k + p] : b[p * n + j]
                acc += Double(av) * Double(bv)
            }
            let old = beta == 0 ? 0 : Double(beta) * Double(c[i * n + j])
            c[i * n + j] = Float(Double(alpha) * acc + old)
        }
    }
}
