import Foundation

/// Multi-head scaled dot-product attention, matching
/// `torch.nn.functional.scaled_dot_product_attention` applied per head (no mask, no dropout).
///
/// `q` `[B, Lq, H·D]`, `k` and `v` `[B, Lk, H·D]` with heads laid side by side in the last axis (the layout
/// of a linear projection's output). Each head computes `softmax(q_h·k_hᵀ · scale) · v_h`, with
/// `scale = 1/√D` unless given. Result `[B, Lq, H·D]`. Heads are addressed in place through GEMM leading
/// dimensions. Blocked with an online softmax (docs/algorithms.md): a block of queries meets the keys one block
/// at a time, keeping each row's running maximum and sum and rescaling its partial output when the maximum
/// grows, so the scores held at once are one cache-sized tile, never the `Lq × Lk` matrix.
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
    let queryBlock = min(lq, attentionQueryBlock)
    let keyBlock = min(lk, attentionKeyBlock)
    let blocksPerHead = (lq + queryBlock - 1) / queryBlock
    let tasks = b * heads * blocksPerHead
    q.withUnsafeBufferPointer { pq in
        k.withUnsafeBufferPointer { pk in
            v.withUnsafeBufferPointer { pv in
                out.withUnsafeMutableBufferPointer { po in
                    // Parallel over (batch, head, query block); each GEMM runs on its worker's thread.
                    let workers = min(tasks, kernelThreadCount)
                    parallelChunks(workers, costPerItem: 1 << 20) { workerRange in
                        let scores = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * keyBlock)
                        let maxima = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock)
                        let sums = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock)
                        defer {
                            scores.deallocate()
                            maxima.deallocate()
                            sums.deallocate()
                        }
                        for worker in workerRange {
                            var t = worker
                            while t < tasks {
                                let qb = t % blocksPerHead
                                let h = (t / blocksPerHead) % heads
                                let bi = t / (blocksPerHead * heads)
                                let q0 = qb * queryBlock
                                let rows = min(queryBlock, lq - q0)
                                let task = AttentionTile(
                                    q: pq.baseAddress! + (bi * lq + q0) * width + h * d,
                                    k: pk.baseAddress! + bi * lk * width + h * d,
                                    v: pv.baseAddress! + bi * lk * width + h * d,
                                    out: po.baseAddress! + (bi * lq + q0) * width + h * d,
                                    rows: rows, keys: lk, headSize: d, stride: width)
                                task.run(
                                    alpha: alpha, keyBlock: keyBlock, scores: scores, maxima: maxima, sums: sums)
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

/// Queries per block of the blocked attention.
let attentionQueryBlock = 128
/// Keys per block: a 128 × 512 score tile is 256 KB, within a core's L2.
let attentionKeyBlock = 512

/// One query block of one head: pointers to its rows of q and of the output, and to the head's k and v.
private struct AttentionTile {
    let q: UnsafePointer<Float>
    let k: UnsafePointer<Float>
    let v: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
    let rows: Int
    let keys: Int
    let headSize: Int
    /// Distance between consecutive tokens in q, k, v and the output (all heads side by side).
    let stride: Int

    func run(
        alpha: Float, keyBlock: Int, scores s: UnsafeMutablePointer<Float>, maxima m: UnsafeMutablePointer<Float>,
        sums l: UnsafeMutablePointer<Float>
    ) {
        var k0 = 0
        while k0 < keys {
            let n = min(keyBlock, keys - k0)
            sgemm(
                transA: false, transB: true, m: rows, n: n, k: headSize, alpha: alpha,
                a: q, lda: stride, b: k + k0 * stride, ldb: stride, c: s, ldc: n)
            for r in 0..<rows {
                let row = s + r * n
                let blockMax = rowMax(row, length: n)
                if k0 == 0 {
                    m[r] = blockMax
                    l[r] = expRow(row, length: n, shift: blockMax)
                } else {
                    let newMax = max(m[r], blockMax)
                    let sum = expRow(row, length: n, shift: newMax)
                    if newMax > m[r] {
                        // Earlier blocks were weighted by e^(x − old max): bring them to the new one.
                        let correction = Foundation.exp(m[r] - newMax)
                        l[r] *= correction
                        scaleRow(out + r * stride, length: headSize, by: correction)
                        m[r] = newMax
                    }
                    l[r] += sum
                }
            }
            // out (+)= P · v for this block of keys.
            sgemm(
                transA: false, transB: false, m: rows, n: headSize, k: n,
                a: s, lda: n, b: v + k0 * stride, ldb: stride, beta: k0 == 0 ? 0 : 1, c: out, ldc: stride)
            k0 += n
        }
        for r in 0..<rows { scaleRow(out + r * stride, length: headSize, by: 1 / l[r]) }
    }
}
