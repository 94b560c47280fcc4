import CBLAS

/// The only file that talks to BLAS: single-precision GEMM on row-major matrices.
///
/// OpenBLAS always runs on the calling thread: our kernels split GEMMs over `kernelThreadCount` threads
/// themselves (`splitSgemm`). OpenBLAS's own workers spin after every multi-threaded call, taking cores from
/// the elementwise kernels between GEMMs (a third of the VAE's time on 2 cores), and switching its thread
/// count per call is not safe while another thread is inside BLAS.
private let singleThreadedBLAS: Void = openblas_set_num_threads(1)

/// `C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C`, with leading dimensions given explicitly so that
/// callers can address strided sub-matrices (e.g. one attention head inside `[L, heads × D]`).
@inline(__always)
func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    _ = singleThreadedBLAS
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}
