import CKernels

/// Vectorized elementary functions for the hot elementwise loops (SiLU, quick GELU, softmax).

/// `e^x` on eight lanes, Cephes `expf` (range reduction by ln 2 in two parts, degree-6 polynomial): within
/// ~1 ulp of the correctly rounded result for x in [−87.3, 88.7]; inputs are clamped to that range, so
/// very negative inputs give ~1e−38 instead of 0.
@inline(__always)
func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // Clamp with compares and blends (the generic `clamped`/`pointwiseMin` are not inlined here).
    let lo = SIMD8<Float>(repeating: -87.33654)
    let hi = SIMD8<Float>(repeating: 88.72283)
    var v = x.replacing(with: lo, where: x .< lo)
    v.replace(with: hi, where: v .> hi)
    // n = round(x / ln 2) via the 1.5·2²³ trick (no SSE4.1 rounding instruction needed).
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let shifted = v * 1.442_695_04 + magic  // n sits in the low mantissa bits
    let n = shifted - magic
    v = v - n * 0.693_359_375
    v = v + n * 2.121_944_40e-4
    let z = v * v
    var p = SIMD8<Float>(repeating: 1.987_569_150e-4)
    p = p * v + 1.398_199_950_7e-3
    p = p * v + 8.333_451_907_3e-3
    p = p * v + 4.166_579_589_4e-2
    p = p * v + 1.666_666_545_9e-1
    p = p * v + 5.000_000_120_1e-1
    p = p * z + v + 1
    let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let bits = (ni &+ 127) &<< 23  // 2ⁿ as a float bit pattern
    return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// `x·sigmoid(scale·x)` on eight lanes (SiLU at scale 1, CLIP's quick GELU at 1.702).
@inline(__always)
func fastSigmoidGate(_ x: SIMD8<Float>, scale: Float = 1) -> SIMD8<Float> {
    x / (1 + fastExp(-scale * x))
}

/// Applies `x·sigmoid(scale·x)` in place to `count` floats: `ck_sigmoid_gate` (AVX-512, AVX2 or portable C,
/// chosen at run time), the same operations as `fastSigmoidGate`, so the same bits.
@inline(__always)
func sigmoidGateInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, scale: Float = 1, path: GEMMPath = .best) {
    ck_sigmoid_gate(path.rawValue, p, count, scale)
}

/// `x·sigmoid(scale·x)` of every element, in parallel chunks.
func sigmoidGate(_ x: Tensor, scale: Float) -> Tensor {
    var out = x
    out.withUnsafeMutableBufferPointer { p in
        guard let base = p.baseAddress else { return }
        sigmoidGateInParallel(base, count: p.count, scale: scale)
    }
    return out
}

/// `sigmoidGateInPlace` over `count` floats in parallel chunks.
func sigmoidGateInParallel(_ base: UnsafeMutablePointer<Float>, count n: Int, scale: Float) {
    let chunk = 4096
    parallelChunks((n + chunk - 1) / chunk, costPerItem: chunk * 4) { range in
        for c in range {
            let lo = c * chunk
            sigmoidGateInPlace(base + lo, count: min(chunk, n - lo), scale: scale)
        }
    }
}

/// In-place, max-subtracted softmax of one row, with the vectorized exponential.
@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, length d: Int) {
    let sum = expRow(row, length: d, shift: rowMax(row, length: d))
    scaleRow(row, length: d, by: 1 / sum)
}

/// The largest of `d` floats (−∞ for none).
@inline(__always)
func rowMax(_ row: UnsafePointer<Float>, length d: Int, path: GEMMPath = .best) -> Float {
    ck_row_max(path.rawValue, row, d)
}

/// Replaces each of `d` floats `x` by `e^(x − shift)` and returns their sum: Cephes' `expf` on AVX-512, AVX2 or
/// portable C, chosen at run time (`CKernels/cvecmath.h`).
@inline(__always)
func expRow(_ row: UnsafeMutablePointer<Float>, length d: Int, shift m: Float, path: GEMMPath = .best) -> Float {
    ck_exp_shift_sum(path.rawValue, row, d, m)
}

/// Multiplies `d` floats by `factor` in place.
@inline(__always)
func scaleRow(_ row: UnsafeMutablePointer<Float>, length d: Int, by factor: Float) {
    let raw = UnsafeMutableRawPointer(row)
    var i = 0
    while i + 8 <= d {
        let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * factor
        raw.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    for j in i..<d { row[j] *= factor }
}

/// One key block of the attention's column-wise online softmax (`ck_softmax_columns` in `CKernels/cvecmath.h`):
/// `s` holds `paddedRows` × `width` scores, the first `rows` of them real; updates the running `maxima` and `sums`,
/// writes each column's `correction` (unless `first`) and replaces the scores by their exponentials.
func softmaxColumns(
    _ s: UnsafeMutablePointer<Float>, rows: Int, paddedRows: Int, width: Int, maxima: UnsafeMutablePointer<Float>,
    sums: UnsafeMutablePointer<Float>, correction: UnsafeMutablePointer<Float>, first: Bool, path: GEMMPath = .best
) {
    ck_softmax_columns(path.rawValue, s, rows, paddedRows, width, maxima, sums, correction, first ? 1 : 0)
}
