import CKernels

/// Multi-head scaled dot-product attention, matching
/// `torch.nn.functional.scaled_dot_product_attention` applied per head (no mask, no dropout).
///
/// `q` `[B, Lq, H·D]`, `k` and `v` `[B, Lk, H·D]` with heads laid side by side in the last axis (the layout
/// of a linear projection's output). Each head computes `softmax(q_h·k_hᵀ · scale) · v_h`, with
/// `scale = 1/√D` unless given. Result `[B, Lq, H·D]`. Blocked with an online softmax on our GEMM kernel
/// (`ck_attention_queries`, docs/algorithms.md): each head's keys and values are packed once, then a panel of 32
/// queries meets the keys one block at a time, keeping each query's running maximum and sum and rescaling its
/// partial output when the maximum grows, so the scores held at once are one cache-sized tile, never the
/// `Lq × Lk` matrix. `path` picks the kernel path (tests run each one the CPU has).
public func attention(
    _ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, scale: Float? = nil, path: GEMMPath = .best
) throws -> Tensor {
    guard q.rank == 3, k.rank == 3, v.rank == 3, heads > 0 else {
        throw TensorError("attention", "q, k, v must be [B, L, H·D]; got \(q.shape), \(k.shape), \(v.shape)")
    }
    let (b, lq, width) = (q.shape[0], q.shape[1], q.shape[2])
    let lk = k.shape[1]
    guard k.shape == v.shape, k.shape[0] == b, k.shape[2] == width, width % heads == 0 else {
        throw TensorError(
            "attention", "shapes q \(q.shape), k \(k.shape), v \(v.shape) do not agree for \(heads) heads")
    }
    guard lk > 0 else { throw TensorError("attention", "no keys: k and v are \(k.shape)") }
    let d = width / heads
    let alpha = scale ?? 1 / Float(d).squareRoot()
    var out = Tensor(uninitialized: q.shape)
    FLOPCounter.add(2 * 2 * b * heads * lq * lk * d)  // q·kᵀ and p·v
    guard lq > 0, d > 0 else { return out }
    let panel = Int(CK_GEMM_NR)
    let panelsPerHead = (lq + panel - 1) / panel
    let pairs = b * heads
    let tasks = pairs * panelsPerHead
    let packedCount = ck_attention_packed_count(lk, d)
    let workspaceCount = ck_attention_workspace_count(d)
    ScratchPool.shared.with(2 * pairs * packedCount) { packed in
        let packedBase = SendablePointer(packed)
        q.withUnsafeBufferPointer { pq in
            k.withUnsafeBufferPointer { pk in
                v.withUnsafeBufferPointer { pv in
                    out.withUnsafeMutableBufferPointer { po in
                        let (qBase, kBase, vBase) = (
                            UncheckedSendable(pq.baseAddress!), UncheckedSendable(pk.baseAddress!),
                            UncheckedSendable(pv.baseAddress!)
                        )
                        let outBase = SendablePointer(po.baseAddress!)
                        // Each (batch, head) pair's keys and values, packed once for all its queries.
                        parallelChunks(pairs, costPerItem: lk * d * 4) { range in
                            for pair in range {
                                let (bi, h) = (pair / heads, pair % heads)
                                let offset = bi * lk * width + h * d
                                ck_attention_pack(
                                    path.rawValue, kBase.value + offset, vBase.value + offset, lk, d, width,
                                    packedBase.base + 2 * pair * packedCount,
                                    packedBase.base + (2 * pair + 1) * packedCount)
                            }
                        }
                        // Then the query panels, spread over the kernel threads.
                        parallelChunks(tasks, costPerItem: 4 * panel * lk * d) { range in
                            let workspace = UnsafeMutablePointer<Float>.allocate(capacity: workspaceCount)
                            defer { workspace.deallocate() }
                            for task in range {
                                let (pair, q0) = (task / panelsPerHead, (task % panelsPerHead) * panel)
                                let (bi, h) = (pair / heads, pair % heads)
                                let offset = (bi * lq + q0) * width + h * d
                                ck_attention_queries(
                                    path.rawValue, lk, d, packedBase.base + 2 * pair * packedCount,
                                    packedBase.base + (2 * pair + 1) * packedCount, qBase.value + offset,
                                    min(panel, lq - q0), width, alpha, outBase.base + offset, width, workspace)
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}
