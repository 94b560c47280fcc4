/// Batched matrix product, matching `torch.matmul` for operands of rank ≥ 2.
///
/// `a` is `[..., M, K]`; `b` is `[..., K, N]` (or `[..., N, K]` with `transposeB`). Batch dimensions must be
/// equal, or `b` may be a single matrix (rank 2) shared by every batch of `a`. Result: `[..., M, N]`.
public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool = false) throws -> Tensor {
    guard a.rank >= 2, b.rank >= 2 else {
        throw TensorError("matmul", "operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
    }
    let m = a.shape[a.rank - 2]
    let k = a.shape[a.rank - 1]
    let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
    let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
    let batchA = Array(a.shape.dropLast(2))
    let batchB = Array(b.shape.dropLast(2))
    guard k == kb else {
        throw TensorError("matmul", "inner dimensions differ: \(a.shape) × \(b.shape)\(transposeB ? "ᵀ" : "")")
    }
    guard batchB.isEmpty || batchB == batchA else {
        throw TensorError("matmul", "batch dimensions differ: \(a.shape) × \(b.shape)")
    }
    let batches = batchA.reduce(1, *)
    FLOPCounter.add(2 * batches * m * n * k)
    var out = Tensor(uninitialized: batchA + [m, n])
    let bStride = batchB.isEmpty ? 0 : kb * n
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { po in
                guard let pa = pa.baseAddress, let pb = pb.baseAddress, let po = po.baseAddress else { return }
                if batchB.isEmpty {
                    // One GEMM over all rows of a: [batches·M, K] × [K, N].
                    splitSgemm(
                        transB: transposeB, m: batches * m, n: n, k: k,
                        a: pa, lda: k, b: pb, ldb: transposeB ? k : n, c: po, ldc: n)
                    return
                }
                for i in 0..<batches {
                    splitSgemm(
                        transB: transposeB, m: m, n: n, k: k,
                        a: pa + i * m * k, lda: k, b: pb + i * bStride, ldb: transposeB ? k : n,
                        c: po + i * m * n, ldc: n)
                }
            }
        }
    }
    return out
}

/// Fully connected layer, matching `torch.nn.functional.linear`: `x · weightᵀ + bias`.
///
/// `x` is `[..., in]`, `weight` `[out, in]`, `bias` `[out]`; result `[..., out]`. With `residual` (shaped as the
/// result) it is added; with `gate`, the sum `y` becomes `y·sigmoid(gate·y)` (SiLU at 1, quick GELU at 1.702).
public func linear(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, gate: Float? = nil, residual: Tensor? = nil
) throws -> Tensor {
    try linear(x, .plain(weight), bias: bias, gate: gate, residual: residual)
}
