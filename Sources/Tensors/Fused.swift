import CKernels
import Foundation

/// Kernels that fuse steps the diffusion networks run back to back, and the few resampling/padding
/// variants they need beyond the basic set.

/// Group normalization followed by SiLU (`silu(group_norm(x))`), in one pass over the output.
///
/// Same contract as `groupNorm` (statistics accumulated in Double, biased variance); the SiLU uses the
/// vectorized exponential, so the result equals `silu(groupNorm(x, …))` to a few ulps.
public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
    guard x.rank >= 2, groups > 0, x.shape[1] % groups == 0 else {
        throw TensorError("groupNormSiLU", "input \(x.shape) channels not divisible into \(groups) groups")
    }
    let (n, c) = (x.shape[0], x.shape[1])
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let t, t.shape != [c] {
            throw TensorError("groupNormSiLU", "\(name) \(t.shape) does not match \(c) channels of \(x.shape)")
        }
    }
    let plane = x.count / max(n * c, 1)
    let perGroup = c / groups
    var out = Tensor(uninitialized: x.shape)
    let scale = weight?.scalars ?? [Float](repeating: 1, count: c)
    let shift = bias?.scalars ?? [Float](repeating: 0, count: c)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            let src0 = px.baseAddress!
            let dst0 = SendablePointer(po.baseAddress!)
            parallelChunks(n * groups, costPerItem: perGroup * plane * 4) { range in
                for ng in range {
                    let start = ng * perGroup * plane
                    let (mean, rstd) = vectorMoments(src0 + start, count: perGroup * plane, eps: eps)
                    let g = ng % groups
                    for ci in 0..<perGroup {
                        let ch = g * perGroup + ci
                        let a = scale[ch] * rstd
                        let b = shift[ch] - mean * a
                        let src = UnsafeRawPointer(src0 + start + ci * plane)
                        let dst = UnsafeMutableRawPointer(dst0.base + start + ci * plane)
                        var i = 0
                        while i + 8 <= plane {
                            let v = src.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * a + b
                            dst.storeBytes(of: fastSigmoidGate(v), toByteOffset: 4 * i, as: SIMD8<Float>.self)
                            i += 8
                        }
                        let s = src.assumingMemoryBound(to: Float.self)
                        let d = dst.assumingMemoryBound(to: Float.self)
                        for j in i..<plane { d[j] = s[j] * a + b }
                        if i < plane { sigmoidGateInPlace(d + i, count: plane - i) }
                    }
                }
            }
        }
    }
    return out
}

/// Mean and `1/sqrt(var + eps)` (biased, two-pass) of `count` floats: Float SIMD partial sums over blocks
/// of 256, accumulated in Double.
@inline(__always)
func vectorMoments(_ p: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
    let raw = UnsafeRawPointer(p)
    func blockSum(_ f: (SIMD8<Float>) -> SIMD8<Float>, _ scalar: (Float) -> Float) -> Double {
        var total = 0.0
        var i = 0
        while i + 8 <= count {
            var acc = SIMD8<Float>()
            let end = min(count - (count - i) % 8, i + 256)
            while i < end {
                acc += f(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
                i += 8
            }
            total += Double(acc.sum())
        }
        for j in i..<count { total += Double(scalar(p[j])) }
        return total
    }
    let mean = blockSum({ $0 }, { $0 }) / Double(count)
    let m = Float(mean)
    // Deviations from the Float mean, corrected for its rounding: Σ(x−m)² − n(μ−m)².
    let sq = blockSum({ ($0 - m) * ($0 - m) }, { ($0 - m) * ($0 - m) })
    let offset = mean - Double(m)
    let variance = max(sq / Double(count) - offset * offset, 0)
    return (m, Float(1 / (variance + Double(eps)).squareRoot()))
}

/// GEGLU gate, matching diffusers `GEGLU` after its projection: `x` `[..., 2·D]` is split into `hidden`
/// (first half) and `gate` (second half) along the last axis; result `[..., D]` = `hidden · gelu(gate)` with
/// the exact (erf) GELU, erf by Abramowitz & Stegun 7.1.26 (within 2e-7) in C (`ck_geglu`: AVX-512, AVX2 or
/// portable, chosen at run time, the same bits on each).
public func geglu(_ x: Tensor) throws -> Tensor { try geglu(x, path: .best) }

func geglu(_ x: Tensor, path: GEMMPath) throws -> Tensor {
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
                    ck_geglu(path.rawValue, h, h + d, dst.base + r * d, d)
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
        throw TensorError(
            "upsampleNearest", "input must be [N, C, H, W] and size positive, got \(x.shape) → \(height)×\(width)")
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

/// `(a + b) · scale` for tensors of the same shape (the residual connections), vectorized.
public func residualAdd(_ a: Tensor, _ b: Tensor, scale: Float = 1) throws -> Tensor {
    guard a.shape == b.shape else {
        throw TensorError("residualAdd", "shapes \(a.shape) and \(b.shape) differ")
    }
    var out = Tensor(uninitialized: a.shape)
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { po in
                let (x, y) = (UnsafeRawPointer(pa.baseAddress!), UnsafeRawPointer(pb.baseAddress!))
                let z = SendablePointer(po.baseAddress!)
                let n = a.count
                let chunk = 8192
                parallelChunks((n + chunk - 1) / chunk, costPerItem: chunk) { range in
                    let dst = UnsafeMutableRawPointer(z.base)
                    for c in range {
                        var i = c * chunk
                        let end = min(n, i + chunk)
                        while i + 8 <= end {
                            let s =
                                (x.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                                    + y.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)) * scale
                            dst.storeBytes(of: s, toByteOffset: 4 * i, as: SIMD8<Float>.self)
                            i += 8
                        }
                        while i < end {
                            z.base[i] = (pa[i] + pb[i]) * scale
                            i += 1
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Swaps the last two axes of a rank-3 tensor, `[B, M, N]` → `[B, N, M]` (`x.transpose(1, 2).contiguous()`),
/// in cache-sized 32×32 blocks.
public func transposeLastTwo(_ x: Tensor) throws -> Tensor {
    guard x.rank == 3 else { throw TensorError("transposeLastTwo", "input must be [B, M, N], got \(x.shape)") }
    let (b, m, n) = (x.shape[0], x.shape[1], x.shape[2])
    var out = Tensor(uninitialized: [b, n, m])
    let block = 32
    let rowBlocks = (m + block - 1) / block
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            let src = px.baseAddress!
            let dst = SendablePointer(po.baseAddress!)
            parallelChunks(b * rowBlocks, costPerItem: block * n) { range in
                for task in range {
                    let bi = task / rowBlocks
                    let i0 = (task % rowBlocks) * block
                    let i1 = min(i0 + block, m)
                    let s = src + bi * m * n
                    let d = dst.base + bi * m * n
                    var j0 = 0
                    while j0 < n {
                        let j1 = min(j0 + block, n)
                        for j in j0..<j1 {
                            for i in i0..<i1 { d[j * m + i] = s[i * n + j] }
                        }
                        j0 = j1
                    }
                }
            }
        }
    }
    return out
}
