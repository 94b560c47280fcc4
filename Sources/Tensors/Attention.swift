import Foundation

/// Multi-head scaled dot-product attention, matching
/// `torch.nn.functional.scaled_dot_product_attention` applied per head (no mask, no dropout).
///
/// `q` `[B, Lq, H·D]`, `k` and `v` `[B, Lk, H·D]` with heads laid side by side in the last axis (the layout
/// of a linear projection's output). Each head computes `softmax(q_h·k_hᵀ · scale) · v_h`, with
/// `scale = 1/√D` unless given. Result `[B, Lq, H·D]`. Heads are addressed in place through GEMM leading
/// dimensions; queries are processed in blocks so the score matrix stays small.
public func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, scale: Float? = nil) throws -> Tensor {
    guard q.rank == 3, k.rank == 3, v.rank == 3, heads > 0 else {
        throw TensorError("attention", "q, k, v must be [B, L, H·D]; got \(q.shape), \(k.shape), \(v.shape)")
    }
    let (b, lq, width) = (q.shape[0], q.shape[1], q.shape[2])
    let lk = k.shape[1]
    guard k.shape == v.shape, k.shape[0] == b, k.shape[2] == width, width % heads == 0 else {
        throw TensorError(
            "attention", "shapes q \(q.shape), k \(k.shape), v \(v.shape) do not agree for \(heads) heads")
    }
    let d = width / heads
    let alpha = scale ?? 1 / Float(d).squareRoot()
    var out = Tensor(uninitialized: q.shape)
    FLOPCounter.add(2 * 2 * b * heads * lq * lk * d)  // q·kᵀ and p·v
    let block = max(1, min(lq, (1 << 20) / max(lk, 1)))  // ≤ 1M scores per task
    let blocksPerHead = (lq + block - 1) / block
    let tasks = b * heads * blocksPerHead
    q.withUnsafeBufferPointer { pq in
        k.withUnsafeBufferPointer { pk in
            v.withUnsafeBufferPointer { pv in
                out.withUnsafeMutableBufferPointer { po in
                    let threads = kernelThreadCount
                    // Parallel over (batch, head, query block); each GEMM runs on its worker's thread.
                    let workers = min(tasks, threads)
                    parallelChunks(workers, costPerItem: 1 << 20) { workerRange in
                        var scores = [Float](repeating: 0, count: block * lk)
                        for worker in workerRange {
                            var t = worker
                            while t < tasks {
                                let qb = t % blocksPerHead
                                let h = (t / blocksPerHead) % heads
                                let bi = t / (blocksPerHead * heads)
                                let q0 = qb * block
                                let rows = min(block, lq - q0)
                                let qPtr = pq.baseAddress! + (bi * lq + q0) * width + h * d
                                let kPtr = pk.baseAddress! + bi * lk * width + h * d
                                let vPtr = pv.baseAddress! + bi * lk * width + h * d
                                let oPtr = po.baseAddress! + (bi * lq + q0) * width + h * d
                                scores.withUnsafeMutableBufferPointer { ps in
                                    let s = ps.baseAddress!
                                    sgemm(
                                        transA: false, transB: true, m: rows, n: lk, k: d, alpha: alpha,
                                        a: qPtr, lda: width, b: kPtr, ldb: width, c: s, ldc: lk)
                                    for r in 0..<rows { softmaxRow(s + r * lk, length: lk) }
                                    sgemm(
                                        transA: false, transB: false, m: rows, n: d, k: lk,
                                        a: s, lda: lk, b: vPtr, ldb: width, c: oPtr, ldc: width)
                                }
                                t += workers
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}
