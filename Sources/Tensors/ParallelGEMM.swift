import Dispatch

/// GEMM-based kernels that split the work over `kernelThreadCount` threads themselves and run each part on
/// single-threaded BLAS.
///
/// Why: OpenBLAS's own worker threads spin (`sched_yield`) for a long while after every multi-threaded call,
/// taking a core away from the elementwise kernels that run between GEMMs; on a 2-core machine that cost a
/// third of the VAE's time. These kernels never wake OpenBLAS's workers. Results equal the single-call GEMM's
/// (each output element is computed by the same kernel over the same K order).

/// Runs `body` with BLAS limited to the calling thread, restoring the previous thread count after.
func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
    let previous = blasThreadCount
    if previous != 1 { blasThreadCount = 1 }
    defer { if previous != 1 { blasThreadCount = previous } }
    return try body()
}

/// `C = A·op(B) + beta·C` (row-major, `A` not transposed) with the rows of `C` (or its columns, whichever is
/// larger) split over the kernel threads. Call inside `withSingleThreadedBLAS`.
func splitSgemm(
    transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let threads = kernelThreadCount
    let work = m * n * k
    guard threads > 1, work >= 1 << 21 else {
        sgemm(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let (pa, pb, pc) = (UncheckedSendable(a), UncheckedSendable(b), SendablePointer(c))
    // Parts of at least 16 rows/columns, so each GEMM stays efficient.
    let splitRows = m >= n
    let extent = splitRows ? m : n
    let parts = max(1, min(threads, extent / 16))
    DispatchQueue.concurrentPerform(iterations: parts) { part in
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

/// `linear` (`x · weightᵀ + bias`, `x` `[..., in]`, `weight` `[out, in]`) with the GEMM split over the
/// kernel threads on single-threaded BLAS.
public func linearThreaded(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    guard x.rank >= 1, weight.rank == 2, let inFeatures = x.shape.last, weight.shape[1] == inFeatures else {
        throw TensorError("linearThreaded", "input \(x.shape) does not match weight \(weight.shape) ([out, in])")
    }
    let outFeatures = weight.shape[0]
    if let bias, bias.shape != [outFeatures] {
        throw TensorError("linearThreaded", "bias \(bias.shape) does not match weight \(weight.shape)")
    }
    let rows = x.count / max(inFeatures, 1)
    var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
    out.withUnsafeMutableBufferPointer { po in
        guard let po = po.baseAddress else { return }
        if let bias {
            bias.withUnsafeBufferPointer { pb in
                for r in 0..<rows { (po + r * outFeatures).update(from: pb.baseAddress!, count: outFeatures) }
            }
        }
        x.withUnsafeBufferPointer { px in
            weight.withUnsafeBufferPointer { pw in
                withSingleThreadedBLAS {
                    splitSgemm(
                        transB: true, m: rows, n: outFeatures, k: inFeatures, a: px.baseAddress!, lda: inFeatures,
                        b: pw.baseAddress!, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: po, ldc: outFeatures)
                }
            }
        }
    }
    return out
}

/// `conv2d` (same contract) lowered to im2col + GEMM with the GEMMs split over the kernel threads on
/// single-threaded BLAS; 1×1 stride-1 convolutions are a single GEMM per image.
public func conv2dThreaded(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)
) throws -> Tensor {
    guard x.rank == 4, weight.rank == 4, weight.shape[1] == x.shape[1] else {
        throw TensorError("conv2dThreaded", "input \(x.shape) and weight \(weight.shape) must be [N, C, H, W] and [O, C, kh, kw]")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    let (sh, sw) = stride
    let (ph, pw) = padding
    guard sh > 0, sw > 0, ph >= 0, pw >= 0, h + 2 * ph >= kh, w + 2 * pw >= kw else {
        throw TensorError("conv2dThreaded", "invalid stride \(stride) or padding \(padding) for \(x.shape) and \(weight.shape)")
    }
    if let bias, bias.shape != [o] {
        throw TensorError("conv2dThreaded", "bias \(bias.shape) does not match \(o) output channels")
    }
    let hout = (h + 2 * ph - kh) / sh + 1
    let wout = (w + 2 * pw - kw) / sw + 1
    let plane = hout * wout
    let kdim = c * kh * kw
    let pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0
    var out = Tensor(uninitialized: [n, o, hout, wout])
    var cols = [Float](repeating: 0, count: pointwise ? 0 : kdim * plane)
    x.withUnsafeBufferPointer { px in
        weight.withUnsafeBufferPointer { pwt in
            out.withUnsafeMutableBufferPointer { po in
                cols.withUnsafeMutableBufferPointer { pcols in
                    let (src0, dst0) = (px.baseAddress!, po.baseAddress!)
                    if let bias {
                        bias.withUnsafeBufferPointer { pb in
                            for bc in 0..<(n * o) {
                                (dst0 + bc * plane).update(repeating: pb[bc % o], count: plane)
                            }
                        }
                    }
                    withSingleThreadedBLAS {
                        for b in 0..<n {
                            let src = src0 + b * c * h * w
                            var colsPtr = UnsafePointer(src)
                            if !pointwise {
                                let dst = SendablePointer(pcols.baseAddress!)
                                parallelChunks(kdim, costPerItem: plane) { range in
                                    for r in range {
                                        let (ci, ky, kx) = (r / (kh * kw), (r / kw) % kh, r % kw)
                                        let input = src + ci * h * w
                                        var row = dst.base + r * plane
                                        for oy in 0..<hout {
                                            let iy = oy * sh - ph + ky
                                            if iy < 0 || iy >= h {
                                                row.update(repeating: 0, count: wout)
                                            } else {
                                                let line = input + iy * w
                                                for ox in 0..<wout {
                                                    let ix = ox * sw - pw + kx
                                                    row[ox] = ix >= 0 && ix < w ? line[ix] : 0
                                                }
                                            }
                                            row += wout
                                        }
                                    }
                                }
                                colsPtr = UnsafePointer(pcols.baseAddress!)
                            }
                            splitSgemm(
                                transB: false, m: o, n: plane, k: kdim, a: pwt.baseAddress!, lda: kdim,
                                b: colsPtr, ldb: plane, beta: bias == nil ? 0 : 1, c: dst0 + b * o * plane, ldc: plane)
                        }
                    }
                }
            }
        }
    }
    return out
}
