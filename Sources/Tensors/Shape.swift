/// Shape operations: permutation, concatenation, broadcasting arithmetic and nearest upsampling.

/// Reorders axes, matching `torch.permute(...).contiguous()`: result axis `i` is input axis `order[i]`.
public func permute(_ x: Tensor, _ order: [Int]) throws -> Tensor {
    guard order.count == x.rank, Set(order) == Set(0..<x.rank) else {
        throw TensorError("permute", "order \(order) is not a permutation of the axes of \(x.shape)")
    }
    let outShape = order.map { x.shape[$0] }
    let inStrides = contiguousStrides(x.shape)
    let strides = order.map { inStrides[$0] }
    var out = Tensor(uninitialized: outShape)
    guard x.count > 0 else { return out }
    let inner = outShape.last ?? 1
    let innerStride = strides.last ?? 1
    let outer = x.count / inner
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            parallelChunks(outer, costPerItem: inner) { range in
                for row in range {
                    // Offset of this output row in the input.
                    var rem = row
                    var offset = 0
                    for axis in stride(from: outShape.count - 2, through: 0, by: -1) {
                        offset += (rem % outShape[axis]) * strides[axis]
                        rem /= outShape[axis]
                    }
                    let dst = po.baseAddress! + row * inner
                    let src = px.baseAddress! + offset
                    for i in 0..<inner { dst[i] = src[i * innerStride] }
                }
            }
        }
    }
    return out
}

/// Joins tensors along `axis`, matching `torch.cat`: all other dimensions must agree.
public func concat(_ parts: [Tensor], axis: Int) throws -> Tensor {
    guard let first = parts.first else { throw TensorError("concat", "no tensors to concatenate") }
    guard axis >= 0, axis < first.rank else {
        throw TensorError("concat", "axis \(axis) out of range for \(first.shape)")
    }
    for p in parts
    where p.rank != first.rank
        || zip(p.shape, first.shape).enumerated().contains(where: { $0.offset != axis && $0.element.0 != $0.element.1 })
    {
        throw TensorError("concat", "shapes \(parts.map(\.shape)) differ outside axis \(axis)")
    }
    var outShape = first.shape
    outShape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
    let outer = first.shape[..<axis].reduce(1, *)
    let innerUnit = first.shape[(axis + 1)...].reduce(1, *)
    var out = Tensor(uninitialized: outShape)
    let outRow = outShape[axis] * innerUnit
    out.withUnsafeMutableBufferPointer { po in
        var column = 0
        for p in parts {
            let block = p.shape[axis] * innerUnit
            p.withUnsafeBufferPointer { pp in
                for o in 0..<outer where block > 0 {
                    (po.baseAddress! + o * outRow + column).update(from: pp.baseAddress! + o * block, count: block)
                }
            }
            column += block
        }
    }
    return out
}

/// Elementwise `a + b` with NumPy/torch broadcasting.
public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try broadcast("add", a, b, +)
}

/// Elementwise `a · b` with NumPy/torch broadcasting.
public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try broadcast("mul", a, b, *)
}

/// Elementwise `a − b` with NumPy/torch broadcasting.
public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try broadcast("sub", a, b, -)
}

/// Every element times `s`.
public func scale(_ x: Tensor, _ s: Float) -> Tensor {
    map(x) { $0 * s }
}

/// Nearest-neighbour 2× upsampling of `[N, C, H, W]` to `[N, C, 2H, 2W]`
/// (`F.interpolate(scale_factor=2, mode="nearest")`).
public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
    guard x.rank == 4 else { throw TensorError("upsampleNearest2x", "input must be [N, C, H, W], got \(x.shape)") }
    let (h, w) = (x.shape[2], x.shape[3])
    var out = Tensor(uninitialized: [x.shape[0], x.shape[1], 2 * h, 2 * w])
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            parallelChunks(x.shape[0] * x.shape[1] * h, costPerItem: 4 * w) { range in
                for row in range {
                    let src = px.baseAddress! + row * w
                    let dst = po.baseAddress! + row * 4 * w
                    for i in 0..<w {
                        dst[2 * i] = src[i]
                        dst[2 * i + 1] = src[i]
                    }
                    (dst + 2 * w).update(from: dst, count: 2 * w)
                }
            }
        }
    }
    return out
}

/// Row-major strides of a contiguous tensor of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = acc
        acc *= shape[i]
    }
    return strides
}

/// Applies `op` elementwise over the broadcast of `a` and `b`.
private func broadcast(
    _ name: String, _ a: Tensor, _ b: Tensor, _ op: @escaping (Float, Float) -> Float
) throws -> Tensor {
    let rank = max(a.rank, b.rank)
    let sa = [Int](repeating: 1, count: rank - a.rank) + a.shape
    let sb = [Int](repeating: 1, count: rank - b.rank) + b.shape
    var outShape = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        guard sa[i] == sb[i] || sa[i] == 1 || sb[i] == 1 else {
            throw TensorError(name, "shapes \(a.shape) and \(b.shape) cannot be broadcast")
        }
        outShape[i] = sa[i] == 1 ? sb[i] : sa[i]
    }
    // Strides with 0 on broadcast axes.
    let stA = zip(contiguousStrides(sa), sa).map { $1 == 1 ? 0 : $0 }
    let stB = zip(contiguousStrides(sb), sb).map { $1 == 1 ? 0 : $0 }
    var out = Tensor(uninitialized: outShape)
    let total = outShape.reduce(1, *)
    guard total > 0 else { return out }
    let inner = rank == 0 ? 1 : outShape[rank - 1]
    let ia = rank == 0 ? 0 : stA[rank - 1]
    let ib = rank == 0 ? 0 : stB[rank - 1]
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { po in
                parallelChunks(total / inner, costPerItem: inner) { range in
                    for row in range {
                        var rem = row
                        var offA = 0
                        var offB = 0
                        for axis in stride(from: rank - 2, through: 0, by: -1) {
                            let idx = rem % outShape[axis]
                            rem /= outShape[axis]
                            offA += idx * stA[axis]
                            offB += idx * stB[axis]
                        }
                        let dst = po.baseAddress! + row * inner
                        let xa = pa.baseAddress! + offA
                        let xb = pb.baseAddress! + offB
                        for i in 0..<inner { dst[i] = op(xa[i * ia], xb[i * ib]) }
                    }
                }
            }
        }
    }
    return out
}
