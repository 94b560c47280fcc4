import Foundation

/// Group normalization, matching `torch.nn.functional.group_norm`.
///
/// `x` `[N, C, *]` is split into `groups` groups of `C / groups` channels; each group is normalized with its
/// biased variance, then scaled by `weight[c]` and shifted by `bias[c]` (both `[C]`). Statistics are
/// accumulated in Double.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
    guard x.rank >= 2, groups > 0, x.shape[1] % groups == 0 else {
        throw TensorError("groupNorm", "input \(x.shape) channels not divisible into \(groups) groups")
    }
    let (n, c) = (x.shape[0], x.shape[1])
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let t, t.shape != [c] {
            throw TensorError("groupNorm", "\(name) \(t.shape) does not match \(c) channels of \(x.shape)")
        }
    }
    let plane = x.count / max(n * c, 1)
    let perGroup = c / groups
    var out = Tensor(uninitialized: x.shape)
    let scale = weight?.scalars
    let shift = bias?.scalars
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            parallelChunks(n * groups, costPerItem: perGroup * plane) { range in
                for ng in range {
                    let start = ng * perGroup * plane
                    let len = perGroup * plane
                    let (mean, rstd) = moments(px.baseAddress! + start, count: len, eps: eps)
                    let g = ng % groups
                    for ci in 0..<perGroup {
                        let ch = g * perGroup + ci
                        let a = (scale?[ch] ?? 1) * rstd
                        let b = (shift?[ch] ?? 0) - mean * a
                        let src = px.baseAddress! + start + ci * plane
                        let dst = po.baseAddress! + start + ci * plane
                        for i in 0..<plane { dst[i] = src[i] * a + b }
                    }
                }
            }
        }
    }
    return out
}

/// Layer normalization over the last axis, matching `torch.nn.functional.layer_norm` with
/// `normalized_shape = [D]`: `weight` and `bias` are `[D]`.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
    guard x.rank >= 1, let d = x.shape.last, d > 0 else {
        throw TensorError("layerNorm", "input \(x.shape) has no last axis to normalize")
    }
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let t, t.shape != [d] {
            throw TensorError("layerNorm", "\(name) \(t.shape) does not match last axis of \(x.shape)")
        }
    }
    var out = Tensor(uninitialized: x.shape)
    let rows = x.count / d
    let scale = weight?.scalars ?? [Float](repeating: 1, count: d)
    let shift = bias?.scalars ?? [Float](repeating: 0, count: d)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            scale.withUnsafeBufferPointer { pw in
                shift.withUnsafeBufferPointer { pb in
                    let (w, b) = (UnsafeRawPointer(pw.baseAddress!), UnsafeRawPointer(pb.baseAddress!))
                    parallelChunks(rows, costPerItem: d) { range in
                        for r in range {
                            let src = px.baseAddress! + r * d
                            let dst = po.baseAddress! + r * d
                            let (mean, rstd) = moments(src, count: d, eps: eps)
                            let (m, s) = (SIMD8<Float>(repeating: mean), SIMD8<Float>(repeating: rstd))
                            var i = 0
                            while i + 8 <= d {
                                let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                                let y =
                                    (v - m) * s * w.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                                    + b.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                                UnsafeMutableRawPointer(dst + i).storeBytes(of: y, as: SIMD8<Float>.self)
                                i += 8
                            }
                            while i < d {
                                dst[i] = (src[i] - mean) * rstd * pw[i] + pb[i]
                                i += 1
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Mean and `1/sqrt(var + eps)` (biased variance) of `count` floats, accumulated in Double: eight lanes at a time
/// into independent partial sums (a single running sum waits on each addition's latency).
@inline(__always)
private func moments(_ p: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
    let raw = UnsafeRawPointer(p)
    let vectors = count / 8
    var lanes = SIMD8<Double>()
    for v in 0..<vectors { lanes += SIMD8<Double>(raw.loadUnaligned(fromByteOffset: 32 * v, as: SIMD8<Float>.self)) }
    var sum = lanes.sum()
    for i in (8 * vectors)..<count { sum += Double(p[i]) }
    let mean = sum / Double(count)
    var squares = SIMD8<Double>()
    let center = SIMD8<Double>(repeating: mean)
    for v in 0..<vectors {
        let d = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: 32 * v, as: SIMD8<Float>.self)) - center
        squares += d * d
    }
    var sq = squares.sum()
    for i in (8 * vectors)..<count {
        let d = Double(p[i]) - mean
        sq += d * d
    }
    let variance = sq / Double(count)
    return (Float(mean), Float(1 / (variance + Double(eps)).squareRoot()))
}
