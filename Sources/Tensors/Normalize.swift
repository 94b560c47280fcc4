/// L2 normalization as torch's `F.normalize(x, dim=-1)`: `x / max(‖x‖₂, 1e-12)`, so a zero vector stays zero.
/// The norm is accumulated in double precision. The one implementation used for embeddings, concepts and
/// index queries.
public func l2Normalized(_ x: [Float]) -> [Float] {
    var sum = 0.0
    for v in x { sum += Double(v) * Double(v) }
    let norm = Float(max(sum.squareRoot(), 1e-12))
    return x.map { $0 / norm }
}

/// Each row of `x` `[n, d]` scaled as `l2Normalized` does, in place.
public func l2NormalizeRows(_ x: inout Tensor) {
    guard x.rank == 2, x.shape[1] > 0 else { return }
    let d = x.shape[1]
    x.withUnsafeMutableBufferPointer { p in
        for r in 0..<(p.count / d) {
            var sum = 0.0
            for i in 0..<d { sum += Double(p[r * d + i]) * Double(p[r * d + i]) }
            let norm = Float(max(sum.squareRoot(), 1e-12))
            for i in 0..<d { p[r * d + i] /= norm }
        }
    }
}
