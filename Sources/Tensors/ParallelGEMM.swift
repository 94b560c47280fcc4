import Dispatch

/// GEMM split over `kernelThreadCount` threads, each part on (single-threaded) BLAS — see `BLAS.swift` for
/// why OpenBLAS's own threads are not used. Results equal the single-call GEMM's (each output element is
/// computed by the same kernel over the same K order).

/// `C = A·op(B) + beta·C` (row-major, `A` not transposed) with the rows of `C` (or its columns, whichever is
/// larger) split over the kernel threads.
func splitSgemm(
    transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let threads = kernelThreadCount
    let work = m * n * k
    guard threads > 1, work >= 1 << 21 else {
        sgemm(
            transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let (pa, pb, pc) = (UncheckedSendable(a), UncheckedSendable(b), SendablePointer(c))
    // Parts of at least 16 rows/columns, so each GEMM stays efficient.
    let splitRows = m >= n
    let extent = splitRows ? m : n
    let parts = max(1, min(threads, extent / 16))
    parallelFor(parts, threads: threads) { part in
        let lo = extent * part / parts
        let hi = extent * (part + 1) / parts
        guard lo < hi else { return }
        if splitRows {
            sgemm(
                transA: false, transB: transB, m: hi - lo, n: n, k: k, a: pa.value + lo * lda, lda: lda,
                b: pb.value, ldb: ldb, beta: beta, c: pc.base + lo * ldc, ldc: ldc)
        } else {
            // Columns lo..<hi of op(B): rows of B when transposed, else columns.
            let bPart = transB ? pb.value + lo * ldb : pb.value + lo
            sgemm(
                transA: false, transB: transB, m: m, n: hi - lo, k: k, a: pa.value, lda: lda,
                b: bPart, ldb: ldb, beta: beta, c: pc.base + lo, ldc: ldc)
        }
    }
}
