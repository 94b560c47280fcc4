import Foundation

/// Kernels that fuse steps the diffusion networks run back to back, and the few resampling/padding
/// variants they need beyond the basic set.

/// Group normalization followed by SiLU (`silu(group_norm(x))`), in one pass over the output.
///
/// Same contract as `groupNorm`; the result equals `silu(groupNorm(x, …))` up to rounding.
public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
    var out = try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    out.withUnsafeMutableBufferPointer { p in
        let base = SendablePointer(p.baseAddress!)
        parallelChunks(p.count, costPerItem: 8) { range in
            let q = base.base
            for i in range {
                let v = q[i]
                q[i] = v / (1 + exp(-v))
            }
        }
    }
    return out
}

/// GEGLU gate, matching diffusers `GEGLU` after its projection: `x` `[..., 2·D]` is split into `hidden`
/// (first half) and `gate` (second half) along the last axis; result `[..., D]` = `hidden · gelu(gate)` with
/// the exact (erf) GELU.
public func geglu(_ x: Tensor) throws -> Tensor {
    guard let last = x.shape.last, last % 2 == 0, last > 0 else {
        throw TensorError("geglu", "last axis of \(x.shape) must be even (hidden and gate halves)")
    }
    let d = last / 2
    let rows = x.count / last
    var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [d])
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            let src = px.baseAddress!
            let dst = SendablePointer(po.baseAddress!)
            parallelChunks(rows, costPerItem: d * 8) { range in
                for r in range {
                    let h = src + r * last
                    let g = h + d
                    let o = dst.base + r * d
                    for i in 0..<d {
                        let u = Double(g[i])
                        o[i] = h[i] * Float(0.5 * u * (1 + erf(u * 0.7071067811865476)))
                    }
                }
            }
        }
    }
    return out
}

/// Nearest-neighbour resize of `[N, C, H, W]` to `[N, C, height, width]`, matching
/// `F.interpolate(size=(height, width), mode="nearest")`: source index `min(⌊dst · in/out⌋, in − 1)` with the
/// ratio computed in Float as torch does.
public func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
    guard x.rank == 4, height > 0, width > 0 else {
        throw TensorError("upsampleNearest", "input must be [N, C, H, W] and size positive, got \(x.shape) → \(height)×\(width)")
    }
    let (h, w) = (x.shape[2], x.shape[3])
    if height == 2 * h && width == 2 * w { return try upsampleNearest2x(x) }
    let sy = Float(h) / Float(height)
    let sx = Float(w) / Float(width)
    let ys = (0..<height).map { min(Int((Float($0) * sy).rounded(.down)), h - 1) }
    let xs = (0..<width).map { min(Int((Float($0) * sx).rounded(.down)), w - 1) }
    let planes = x.shape[0] * x.shape[1]
    var out = Tensor(uninitialized: [x.shape[0], x.shape[1], height, width])
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            let src = px.baseAddress!
            let dst = SendablePointer(po.baseAddress!)
            parallelChunks(planes, costPerItem: height * width) { range in
                for p in range {
                    for oy in 0..<height {
                        let line = src + p * h * w + ys[oy] * w
                        let o = dst.base + (p * height + oy) * width
                        for ox in 0..<width { o[ox] = line[xs[ox]] }
                    }
                }
            }
        }
    }
    return out
}

/// Zero padding of the last two axes of `[N, C, H, W]` (`F.pad(x, (left, right, top, bottom))`).
public func pad2d(_ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) throws -> Tensor {
    guard x.rank == 4, top >= 0, bottom >= 0, left >= 0, right >= 0 else {
        throw TensorError("pad2d", "input must be [N, C, H, W] with non-negative padding, got \(x.shape)")
    }
    let (h, w) = (x.shape[2], x.shape[3])
    let (oh, ow) = (h + top + bottom, w + left + right)
    var out = Tensor(zeros: [x.shape[0], x.shape[1], oh, ow])
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            for p in 0..<(x.shape[0] * x.shape[1]) {
                for y in 0..<h {
                    (po.baseAddress! + (p * oh + y + top) * ow + left)
                        .update(from: px.baseAddress! + (p * h + y) * w, count: w)
                }
            }
        }
    }
    return out
}
