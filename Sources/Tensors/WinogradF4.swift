/// 3×3, stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray 2016, with the
/// interpolation points 0, ±1, ±2, ∞): `Y = Aᵀ[Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)]A` per 4×4 output tile, from 6×6
/// input patches.
///
/// Same contract as `conv2d` with a 3×3 kernel and stride 1. 36 GEMMs of `[O, C] × [C, tiles]` replace one of
/// `[O, 9C] × [9C, pixels]`: 4× fewer multiplications (F(2×2) saves 2.25×). The transforms use 4, 5, ½, ¼
/// and 1/6, 1/24, so rounding grows a little over the direct method's; docs/algorithms.md gives the measured
/// error and `WinogradTests` bounds it.
public func conv2dWinograd4x4(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, padding: (Int, Int) = (1, 1)) throws
    -> Tensor
{
    try conv2dWinograd4x4(x, .plain(weight), bias: bias, padding: padding)
}

/// The same over a plain or packed weight.
func conv2dWinograd4x4(_ x: Tensor, _ weight: LayerWeight, bias: Tensor?, padding: (Int, Int)) throws -> Tensor {
    try winograd(
        WinogradMethod(
            tile: 4, points: 36, filters: winogradF4Filters, input: winogradF4Input, output: winogradF4Output),
        "conv2dWinograd4x4", x, weight: weight, bias: bias, padding: padding)
}

/// Six SIMD vectors: one row or column of a 6×6 transform, eight tiles (or filter pairs) per lane.
private struct Six {
    var v0, v1, v2, v3, v4, v5: SIMD8<Float>

    /// `Bᵀ d` for `d` = self: the input transform along one axis.
    @inline(__always) var inputTransformed: Six {
        let a = v4 - 4 * v2
        let b = v3 - 4 * v1
        let c = v4 - v2
        let d = 2 * (v3 - v1)
        return Six(
            v0: 4 * v0 - 5 * v2 + v4, v1: a + b, v2: a - b, v3: c + d, v4: c - d, v5: 4 * v1 - 5 * v3 + v5)
    }
}

/// `Aᵀ m` for the six values of `m`, with `Aᵀ = [[1,1,1,1,1,0],[0,1,−1,2,−2,0],[0,1,1,4,4,0],[0,1,−1,8,−8,1]]`.
@inline(__always)
private func outputTransformed(_ m: Six) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    let p12 = m.v1 + m.v2
    let m12 = m.v1 - m.v2
    let p34 = m.v3 + m.v4
    let m34 = m.v3 - m.v4
    return (m.v0 + p12 + p34, m12 + 2 * m34, p12 + 4 * p34, m12 + 8 * m34 + m.v5)
}

/// `U[k] = (G g Gᵀ)[k]` for k = 6·row + column of the 6×6 transformed filter, with
/// `G = [[¼,0,0],[−⅙,−⅙,−⅙],[−⅙,⅙,−⅙],[1/24,1/12,⅙],[1/24,−1/12,⅙],[0,0,1]]`; eight output channels at a
/// time (see `WinogradMethod.filters` for the packed layouts).
private func winogradF4Filters(_ src: UnsafePointer<Float>, pairs plane: Int, into dst: SendablePointer<Float>) {
    parallelChunks(plane / 8, costPerItem: 1024) { range in
        for block in range {
            let oc0 = block * 8
            func tap(_ j: Int) -> SIMD8<Float> { loadLanes(src + oc0 * 9 + 8 * j, 8) }
            // G applied to three values (one column or row of taps).
            func g6(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> Six {
                let ac = a + c
                let q = a / 24 + c / 6
                return Six(
                    v0: a / 4, v1: -(ac + b) / 6, v2: (b - ac) / 6, v3: q + b / 12, v4: q - b / 12, v5: c)
            }
            // G g: six rows, each three columns.
            let c0 = g6(tap(0), tap(3), tap(6))
            let c1 = g6(tap(1), tap(4), tap(7))
            let c2 = g6(tap(2), tap(5), tap(8))
            func put(_ k: Int, _ value: SIMD8<Float>) {
                storeLanes(value, to: dst.base + k * plane + oc0, 8)
            }
            func row(_ i: Int, _ r: Six) {
                put(6 * i, r.v0)
                put(6 * i + 1, r.v1)
                put(6 * i + 2, r.v2)
                put(6 * i + 3, r.v3)
                put(6 * i + 4, r.v4)
                put(6 * i + 5, r.v5)
            }
            row(0, g6(c0.v0, c1.v0, c2.v0))
            row(1, g6(c0.v1, c1.v1, c2.v1))
            row(2, g6(c0.v2, c1.v2, c2.v2))
            row(3, g6(c0.v3, c1.v3, c2.v3))
            row(4, g6(c0.v4, c1.v4, c2.v4))
            row(5, g6(c0.v5, c1.v5, c2.v5))
        }
    }
}

/// `V[k][c][t] = (Bᵀ d B)[k]` for the 6×6 input patch `d` of each tile `t` of the chunk, with
/// `Bᵀ = [[4,0,−5,0,1,0],[0,−4,−4,1,1,0],[0,4,−4,−1,1,0],[0,−2,−1,2,1,0],[0,2,−1,−2,1,0],[0,4,0,−5,0,1]]`.
/// Eight horizontally adjacent tiles at a time, one per SIMD lane, read from zero-padded copies of the six
/// input rows a tile row needs.
private func winogradF4Input(
    _ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, padding: (Int, Int),
    chunk: WinogradChunk, into v: SendablePointer<Float>
) {
    let (ph, pw) = padding
    let tiles = chunk.tiles
    let plane = c * tiles
    let groups = (chunk.tilesW + 7) / 8
    // Padded row: `pw` zeros, the row, zeros up to the last group's reach (32·groups + 4 + 32 columns).
    let rowLength = 32 * groups + 36
    parallelChunks(c, costPerItem: tiles * 160) { range in
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 6 * rowLength)
        defer { buffer.deallocate() }
        for ci in range {
            var t = ci * tiles  // index into V's [c][t] plane for k = 0
            for r in chunk.rows {
                let input = src + ((r / chunk.tilesH) * c + ci) * h * w
                let y0 = 4 * (r % chunk.tilesH) - ph
                buffer.update(repeating: 0, count: 6 * rowLength)
                for i in 0..<6 where y0 + i >= 0 && y0 + i < h {
                    let count = min(w, rowLength - pw)
                    (buffer + i * rowLength + pw).update(from: input + (y0 + i) * w, count: count)
                }
                let raw = UnsafeRawPointer(buffer)
                for group in 0..<groups {
                    // Columns 4l … 4l+5 of row i for the 8 tiles (lane l): stride-4 lanes of two loads.
                    func columns(_ i: Int) -> Six {
                        let offset = 4 * (i * rowLength + 32 * group)
                        let a = raw.loadUnaligned(fromByteOffset: offset, as: SIMD32<Float>.self)
                        let b = raw.loadUnaligned(fromByteOffset: offset + 16, as: SIMD32<Float>.self)
                        let (ae, ao, bo) = (a.evenHalf, a.oddHalf, b.oddHalf)
                        return Six(
                            v0: ae.evenHalf, v1: ao.evenHalf, v2: ae.oddHalf, v3: ao.oddHalf, v4: b.evenHalf.evenHalf,
                            v5: bo.evenHalf)
                    }
                    // Bᵀ d: the transform down each of the six columns (rows of d are `columns(i)`).
                    let d0 = columns(0)
                    let d1 = columns(1)
                    let d2 = columns(2)
                    let d3 = columns(3)
                    let d4 = columns(4)
                    let d5 = columns(5)
                    let c0 = Six(v0: d0.v0, v1: d1.v0, v2: d2.v0, v3: d3.v0, v4: d4.v0, v5: d5.v0).inputTransformed
                    let c1 = Six(v0: d0.v1, v1: d1.v1, v2: d2.v1, v3: d3.v1, v4: d4.v1, v5: d5.v1).inputTransformed
                    let c2 = Six(v0: d0.v2, v1: d1.v2, v2: d2.v2, v3: d3.v2, v4: d4.v2, v5: d5.v2).inputTransformed
                    let c3 = Six(v0: d0.v3, v1: d1.v3, v2: d2.v3, v3: d3.v3, v4: d4.v3, v5: d5.v3).inputTransformed
                    let c4 = Six(v0: d0.v4, v1: d1.v4, v2: d2.v4, v3: d3.v4, v4: d4.v4, v5: d5.v4).inputTransformed
                    let c5 = Six(v0: d0.v5, v1: d1.v5, v2: d2.v5, v3: d3.v5, v4: d4.v5, v5: d5.v5).inputTransformed
                    let lanes = min(8, chunk.tilesW - 8 * group)
                    func put(_ k: Int, _ value: SIMD8<Float>) { storeLanes(value, to: v.base + k * plane + t, lanes) }
                    // (Bᵀ d) B: row i of the result is the transform across row i of Bᵀ d.
                    func row(_ i: Int, _ r: Six) {
                        let s = r.inputTransformed
                        put(6 * i, s.v0)
                        put(6 * i + 1, s.v1)
                        put(6 * i + 2, s.v2)
                        put(6 * i + 3, s.v3)
                        put(6 * i + 4, s.v4)
                        put(6 * i + 5, s.v5)
                    }
                    row(0, Six(v0: c0.v0, v1: c1.v0, v2: c2.v0, v3: c3.v0, v4: c4.v0, v5: c5.v0))
                    row(1, Six(v0: c0.v1, v1: c1.v1, v2: c2.v1, v3: c3.v1, v4: c4.v1, v5: c5.v1))
                    row(2, Six(v0: c0.v2, v1: c1.v2, v2: c2.v2, v3: c3.v2, v4: c4.v2, v5: c5.v2))
                    row(3, Six(v0: c0.v3, v1: c1.v3, v2: c2.v3, v3: c3.v3, v4: c4.v3, v5: c5.v3))
                    row(4, Six(v0: c0.v4, v1: c1.v4, v2: c2.v4, v3: c3.v4, v4: c4.v4, v5: c5.v4))
                    row(5, Six(v0: c0.v5, v1: c1.v5, v2: c2.v5, v3: c3.v5, v4: c4.v5, v5: c5.v5))
                    t += lanes
                }
            }
        }
    }
}

/// `Y = Aᵀ M A + bias` per tile, written into the `[N, O, H, W]` output (edge tiles clipped to the output
/// size). Eight horizontally adjacent tiles at a time, one per SIMD lane.
private func winogradF4Output(
    _ m: SendablePointer<Float>, channels o: Int, chunk: WinogradChunk, biases: [Float],
    into out: SendablePointer<Float>, imageChannels: Int, height hout: Int, width wout: Int
) {
    let plane = o * chunk.tiles
    let groups = (chunk.tilesW + 7) / 8
    parallelChunks(o, costPerItem: chunk.tiles * 120) { range in
        for oi in range {
            var t = oi * chunk.tiles
            let b = biases[oi]
            for r in chunk.rows {
                let image = out.base + ((r / chunk.tilesH) * imageChannels + oi) * hout * wout
                let y = 4 * (r % chunk.tilesH)
                for group in 0..<groups {
                    let lanes = min(8, chunk.tilesW - 8 * group)
                    func load(_ k: Int) -> SIMD8<Float> { loadLanes(m.base + k * plane + t, lanes) }
                    func column(_ j: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                        outputTransformed(
                            Six(
                                v0: load(j), v1: load(6 + j), v2: load(12 + j), v3: load(18 + j), v4: load(24 + j),
                                v5: load(30 + j)))
                    }
                    // Aᵀ M: four rows (of six column vectors), then · A along each row.
                    let a0 = column(0)
                    let a1 = column(1)
                    let a2 = column(2)
                    let a3 = column(3)
                    let a4 = column(4)
                    let a5 = column(5)
                    let x = 32 * group
                    let width = min(32, wout - x)
                    func put(_ dy: Int, _ s: Six) {
                        guard y + dy < hout else { return }
                        let (q0, q1, q2, q3) = outputTransformed(s)
                        // Lane l's four outputs go to columns 4l … 4l+3: interleave the four vectors.
                        var lo = SIMD16<Float>()
                        lo.evenHalf = q0 + b
                        lo.oddHalf = q2 + b
                        var hi = SIMD16<Float>()
                        hi.evenHalf = q1 + b
                        hi.oddHalf = q3 + b
                        var line = SIMD32<Float>()
                        line.evenHalf = lo
                        line.oddHalf = hi
                        let dst = image + (y + dy) * wout + x
                        if width == 32 {
                            UnsafeMutableRawPointer(dst).storeBytes(of: line, as: SIMD32<Float>.self)
                        } else {
                            for j in 0..<width { dst[j] = line[j] }
                        }
                    }
                    put(0, Six(v0: a0.0, v1: a1.0, v2: a2.0, v3: a3.0, v4: a4.0, v5: a5.0))
                    put(1, Six(v0: a0.1, v1: a1.1, v2: a2.1, v3: a3.1, v4: a4.1, v5: a5.1))
                    put(2, Six(v0: a0.2, v1: a1.2, v2: a2.2, v3: a3.2, v4: a4.2, v5: a5.2))
                    put(3, Six(v0: a0.3, v1: a1.3, v2: a2.3, v3: a3.3, v4: a4.3, v5: a5.3))
                    t += lanes
                }
            }
        }
    }
}
