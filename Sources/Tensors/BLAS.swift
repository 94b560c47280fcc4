import CBLAS

/// The only file that talks to BLAS: single-precision GEMM on row-major matrices.
///
/// `C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C`, with leading dimensions given explicitly so that
/// callers can address strided sub-matrices (e.g. one attention head inside `[L, heads × D]`).
@inline(__always)
func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// Threads OpenBLAS may use for one call.
public var blasThreadCount: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(newValue)) }
}
