import CKernels

/// 3×3, stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for
/// Convolutional Neural Networks", 2016, eqs. 7–8): `Y = Aᵀ[Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)]A` per 2×2 output tile.
///
/// Same contract as `conv2d` with a 3×3 kernel and stride 1 (`x` `[N, C, H, W]`, `weight` `[O, C, 3, 3]`,
/// `bias` `[O]`, symmetric zero `padding`). 16 GEMMs of `[O, C] × [C, tiles]` replace one of
/// `[O, 9C] × [9C, pixels]`: 2.25× fewer multiplications. The transforms only use ±1 and ½, so rounding is
/// close to the direct method's (agrees with `conv2d` to ~1e-6 relative).
public func conv2dWinograd3x3(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, padding: (Int, Int) = (1, 1)) throws
    -> Tensor
{
    try conv2dWinograd3x3(x, .plain(weight), bias: bias, padding: padding)
}

/// The same over a plain or packed weight.
func conv2dWinograd3x3(_ x: Tensor, _ weight: LayerWeight, bias: Tensor?, padding: (Int, Int)) throws -> Tensor {
    try winograd(
        WinogradMethod(
            tile: 2, points: 16, filters: winogradF2Filters, input: winogradInput, output: winogradOutput),
        "conv2dWinograd3x3", x, weight: weight, bias: bias, padding: padding)
}

/// `U[k] = (G g Gᵀ)[k]` for k = 4·row + column of the 4×4 transformed filter; eight output channels at a time
/// (see `WinogradMethod.filters` for the packed layouts).
private func winogradF2Filters(_ src: UnsafePointer<Float>, pairs plane: Int, into dst: SendablePointer<Float>) {
    parallelChunks(plane / 8, costPerItem: 512) { range in
        for block in range {
            let oc0 = block * 8
            func tap(_ j: Int) -> SIMD8<Float> { loadLanes(src + oc0 * 9 + 8 * j, 8) }
            let g = (tap(0), tap(1), tap(2), tap(3), tap(4), tap(5), tap(6), tap(7), tap(8))
            func put(_ k: Int, _ value: SIMD8<Float>) {
                storeLanes(value, to: dst.base + k * plane + oc0, 8)
            }
            // Row i of G g is (a, b, c) over the three columns; (G g) Gᵀ applies G to it again.
            func row(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) {
                put(4 * i, a)
                put(4 * i + 1, 0.5 * (a + b + c))
                put(4 * i + 2, 0.5 * (a - b + c))
                put(4 * i + 3, c)
            }
            // Rows of G g: g0, (g0+g1+g2)/2, (g0−g1+g2)/2, g2 where g0 = (g.0, g.1, g.2) etc.
            row(0, g.0, g.1, g.2)
            row(1, 0.5 * (g.0 + g.3 + g.6), 0.5 * (g.1 + g.4 + g.7), 0.5 * (g.2 + g.5 + g.8))
            row(2, 0.5 * (g.0 - g.3 + g.6), 0.5 * (g.1 - g.4 + g.7), 0.5 * (g.2 - g.5 + g.8))
            row(3, g.6, g.7, g.8)
        }
    }
}

/// One Winograd method's tile size, transformed-tile size and transforms.
struct WinogradMethod {
    /// Output tile side (2 or 4).
    let tile: Int
    /// Values per transformed tile: (tile + 2)².
    let points: Int
    /// The transformed filters of a block of output channels, from its weights packed for the left side of our
    /// GEMM (`[O/8][C·9][8]`: group g = 8 output channels at one input channel has its 9 taps as 9 runs of 8 floats
    /// at `src + 72g`) into `points` matrices `U[k]` of `pairs` = (O rounded up to 8) × C elements, each packed the
    /// same way (`[O/8][C][8]`, group g at `U[k] + 8g`), ready for the GEMMs.
    let filters: (_ src: UnsafePointer<Float>, _ pairs: Int, _ into: SendablePointer<Float>) -> Void
    /// `V[k][c][t]` for the tiles of a chunk.
    let input:
        (
            _ src: UnsafePointer<Float>, _ channels: Int, _ height: Int, _ width: Int, _ padding: (Int, Int),
            _ chunk: WinogradChunk, _ into: SendablePointer<Float>
        ) -> Void
    /// `Y = Aᵀ M A + bias` for `channels` output channels, written with `imageChannels` channels per image.
    let output:
        (
            _ m: SendablePointer<Float>, _ channels: Int, _ chunk: WinogradChunk, _ biases: [Float],
            _ into: SendablePointer<Float>, _ imageChannels: Int, _ height: Int, _ width: Int
        ) -> Void
}

/// Filter-transform elements a block of output channels may take (8 M floats, 32 MB): wider layers are done
/// in equal blocks of output channels, so that the transformed filters of SD v1's deepest layers (up to 210 MB
/// whole) do not add to the network's peak memory. (With BLAS GEMMs, splitting the VAE's 512-channel layers in
/// two lost 20%; on our packed GEMM it costs nothing measurable, and a 512 px step peaks 40 MB lower than at
/// 16 M floats.)
let winogradFilterBlock = 1 << 23

/// The part every Winograd method shares: the shape checks (errors name `op`), blocks of output channels
/// (`winogradFilterBlock`), chunks of tile rows (`winogradChunkTarget`), the filter, input and output transforms
/// of `method`, and its `points` GEMMs of `[O, C] × [C, tiles]` on our packed-GEMM kernel, spread over the kernel
/// threads. A plain weight is packed a block at a time first. Same contract as `conv2d` with a 3×3 kernel and
/// stride 1.
func winograd(
    _ method: WinogradMethod, _ op: String, _ x: Tensor, weight: LayerWeight, bias: Tensor?,
    padding: (Int, Int)
) throws -> Tensor {
    guard x.rank == 4, weight.shape.count == 4, weight.shape[2] == 3, weight.shape[3] == 3,
        weight.shape[1] == x.shape[1]
    else {
        throw TensorError(op, "input \(x.shape) and weight \(weight.shape) must be [N, C, H, W] and [O, C, 3, 3]")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let o = weight.shape[0]
    let (ph, pw) = padding
    guard ph >= 0, pw >= 0, h + 2 * ph >= 3, w + 2 * pw >= 3 else {
        throw TensorError(op, "padding \(padding) too small for input \(x.shape)")
    }
    if let bias, bias.shape != [o] {
        throw TensorError(op, "bias \(bias.shape) does not match \(o) output channels")
    }
    let (hout, wout) = (h + 2 * ph - 2, w + 2 * pw - 2)
    var out = Tensor(uninitialized: [n, o, hout, wout])
    FLOPCounter.add(2 * n * o * hout * wout * c * 9)  // the direct convolution's count
    let tilesH = (hout + method.tile - 1) / method.tile
    let tilesW = (wout + method.tile - 1) / method.tile
    let k = method.points
    let biases = bias?.scalars ?? [Float](repeating: 0, count: o)
    // Tiles of all images form one index space (image-major, then tile row, then column), processed in
    // chunks of whole tile rows so the transformed buffers stay bounded.
    let totalRows = n * tilesH
    let rowsPerChunk = max(1, min(totalRows, winogradChunkTarget / max(max(c, o) * tilesW, 1)))
    let maxTiles = rowsPerChunk * tilesW
    let chunks = (totalRows + rowsPerChunk - 1) / rowsPerChunk
    let blocks = max(1, (k * o * c + winogradFilterBlock - 1) / winogradFilterBlock)
    // Blocks are whole panels of 8 output channels (the packed layout's).
    let outBlock = ((o + blocks - 1) / blocks + 7) / 8 * 8
    let blockRows = min(outBlock, (o + 7) / 8 * 8)
    let plainBlock: Int
    if case .plain = weight { plainBlock = blockRows * c * 9 } else { plainBlock = 0 }
    withScratch(k * blockRows * c, k * c * maxTiles, k * blockRows * maxTiles) { u, v, m in
        ScratchPool.shared.with(plainBlock) { packedPlain in
            let (uBase, vBase, mBase) = (UncheckedSendable(u), SendablePointer(v), SendablePointer(m))
            x.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { po in
                    var o0 = 0
                    while o0 < o {
                        let ob = min(outBlock, o - o0)
                        let obPadded = (ob + 7) / 8 * 8
                        let filterSource: UnsafePointer<Float>
                        switch weight {
                        case .packed(let p): filterSource = p.base + o0 * c * 9
                        case .plain(let t):
                            t.withUnsafeBufferPointer { pw in
                                let (src, dst) = (UncheckedSendable(pw.baseAddress! + o0 * c * 9), packedPlain)
                                ck_gemm_pack_rows(src.value, c * 9, ob, c * 9, 8, 0, obPadded / 8, dst)
                            }
                            filterSource = UnsafePointer(packedPlain)
                        }
                        method.filters(filterSource, obPadded * c, SendablePointer(u))
                        var row0 = 0
                        while row0 < totalRows {
                            let rows = min(rowsPerChunk, totalRows - row0)
                            let tiles = rows * tilesW
                            let geometry = WinogradChunk(
                                rows: row0..<(row0 + rows), tilesH: tilesH, tilesW: tilesW, tiles: tiles)
                            // With one chunk, the tiles transformed for the first block serve every block.
                            if o0 == 0 || chunks > 1 {
                                method.input(px.baseAddress!, c, h, w, padding, geometry, vBase)
                            }
                            parallelChunks(k, costPerItem: 1 << 20) { range in
                                for j in range {
                                    packedGEMM(
                                        m: ob, n: tiles, k: c,
                                        a: .panels(uBase.value + j * obPadded * c),
                                        b: .plain(vBase.base + j * c * tiles, ld: tiles),
                                        c: mBase.base + j * ob * tiles, ldc: tiles, threads: 1)
                                }
                            }
                            method.output(
                                mBase, ob, geometry, Array(biases[o0..<(o0 + ob)]),
                                SendablePointer(po.baseAddress! + o0 * hout * wout), o, hout, wout)
                            row0 += rows
                        }
                        o0 += ob
                    }
                }
            }
        }
    }
    return out
}

/// Tile-buffer elements a Winograd chunk aims at per transformed matrix (`channels × tiles`), measured at
/// SD v1 sizes on our packed GEMM: 2^18 was no faster and peaked 37 MB higher on a 512 px step; much smaller
/// chunks make the GEMMs too narrow.
let winogradChunkTarget = 1 << 17

/// Eight consecutive floats at `p`, or only the first `lanes` of them (the other lanes zero): a group of
/// tiles or filter pairs at the edge of a row.
@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    var s = SIMD8<Float>()
    for l in 0..<lanes { s[l] = p[l] }
    return s
}

/// Stores the first `lanes` of `value` at `p` (all eight in one store when `lanes` is 8).
@inline(__always)
func storeLanes(_ value: SIMD8<Float>, to p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 {
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: SIMD8<Float>.self)
    } else {
        for l in 0..<lanes { p[l] = value[l] }
    }
}

/// Which tiles a chunk covers: global tile rows `rows` (row `r` is tile row `r % tilesH` of image
/// `r / tilesH`), `tiles = rows.count · tilesW` tiles in all.
struct WinogradChunk {
    let rows: Range<Int>
    let tilesH: Int
    let tilesW: Int
    let tiles: Int
}

/// `V[k][c][t] = (Bᵀ d B)[k]` for the 4×4 input patch `d` of each tile `t` of the chunk, with
/// `Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]]`. Eight horizontally adjacent tiles at a time, one per
/// SIMD lane, read from zero-padded copies of the four input rows a tile row needs.
private func winogradInput(
    _ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, padding: (Int, Int),
    chunk: WinogradChunk, into v: SendablePointer<Float>
) {
    let (ph, pw) = padding
    let tiles = chunk.tiles
    let plane = c * tiles
    let groups = (chunk.tilesW + 7) / 8
    // Padded row: `pw` zeros, the row, zeros up to the last group's reach (16·groups + 2 columns).
    let rowLength = 16 * groups + 2 + 16
    parallelChunks(c, costPerItem: tiles * 48) { range in
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 4 * rowLength)
        defer { buffer.deallocate() }
        for ci in range {
            var t = ci * tiles  // index into V's [c][t] plane for k = 0
            for r in chunk.rows {
                let input = src + ((r / chunk.tilesH) * c + ci) * h * w
                let y0 = 2 * (r % chunk.tilesH) - ph
                buffer.update(repeating: 0, count: 4 * rowLength)
                for i in 0..<4 where y0 + i >= 0 && y0 + i < h {
                    let count = min(w, rowLength - pw)
                    (buffer + i * rowLength + pw).update(from: input + (y0 + i) * w, count: count)
                }
                let raw = UnsafeRawPointer(buffer)
                for group in 0..<groups {
                    // Columns 2l … 2l+3 of each row for the 8 tiles (lane l): even/odd halves of two loads.
                    func columns(_ i: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                        let offset = 4 * (i * rowLength + 16 * group)
                        let a = raw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                        let b = raw.loadUnaligned(fromByteOffset: offset + 8, as: SIMD16<Float>.self)
                        return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                    }
                    let d0 = columns(0)
                    let d1 = columns(1)
                    let d2 = columns(2)
                    let d3 = columns(3)
                    let lanes = min(8, chunk.tilesW - 8 * group)
                    // Bᵀ d (rows), then (·) B (columns), each row one 4-tuple of lanes.
                    func put(_ k: Int, _ value: SIMD8<Float>) { storeLanes(value, to: v.base + k * plane + t, lanes) }
                    func store(_ i: Int, _ r: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
                        put(4 * i, r.0 - r.2)
                        put(4 * i + 1, r.1 + r.2)
                        put(4 * i + 2, r.2 - r.1)
                        put(4 * i + 3, r.1 - r.3)
                    }
                    store(0, (d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3))
                    store(1, (d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3))
                    store(2, (d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3))
                    store(3, (d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3))
                    t += lanes
                }
            }
        }
    }
}

/// `Y = Aᵀ M A + bias` per tile with `Aᵀ = [[1,1,1,0],[0,1,−1,−1]]`, written into the `[N, O, H, W]` output
/// (edge tiles clipped to the output size). Eight horizontally adjacent tiles at a time, one per SIMD lane.
private func winogradOutput(
    _ m: SendablePointer<Float>, channels o: Int, chunk: WinogradChunk, biases: [Float],
    into out: SendablePointer<Float>, imageChannels: Int, height hout: Int, width wout: Int
) {
    let plane = o * chunk.tiles
    let groups = (chunk.tilesW + 7) / 8
    parallelChunks(o, costPerItem: chunk.tiles * 32) { range in
        for oi in range {
            var t = oi * chunk.tiles
            let b = biases[oi]
            for r in chunk.rows {
                let image = out.base + ((r / chunk.tilesH) * imageChannels + oi) * hout * wout
                let y = 2 * (r % chunk.tilesH)
                for group in 0..<groups {
                    let lanes = min(8, chunk.tilesW - 8 * group)
                    func load(_ k: Int) -> SIMD8<Float> { loadLanes(m.base + k * plane + t, lanes) }
                    // Aᵀ M: two rows (of four column vectors), then · A.
                    var s0 = (load(0), load(1), load(2), load(3))
                    var s1 = s0
                    let r1 = (load(4), load(5), load(6), load(7))
                    let r2 = (load(8), load(9), load(10), load(11))
                    let r3 = (load(12), load(13), load(14), load(15))
                    s0 = (s0.0 + r1.0 + r2.0, s0.1 + r1.1 + r2.1, s0.2 + r1.2 + r2.2, s0.3 + r1.3 + r2.3)
                    s1 = (r1.0 - r2.0 - r3.0, r1.1 - r2.1 - r3.1, r1.2 - r2.2 - r3.2, r1.3 - r2.3 - r3.3)
                    var top = SIMD16<Float>()
                    top.evenHalf = s0.0 + s0.1 + s0.2 + b
                    top.oddHalf = s0.1 - s0.2 - s0.3 + b
                    var bottom = SIMD16<Float>()
                    bottom.evenHalf = s1.0 + s1.1 + s1.2 + b
                    bottom.oddHalf = s1.1 - s1.2 - s1.3 + b
                    let x = 16 * group
                    let width = min(16, wout - x)
                    func put(_ dy: Int, _ row: SIMD16<Float>) {
                        guard y + dy < hout else { return }
                        let line = image + (y + dy) * wout + x
                        if width == 16 {
                            UnsafeMutableRawPointer(line).storeBytes(of: row, as: SIMD16<Float>.self)
                        } else {
                            for j in 0..<width { line[j] = row[j] }
                        }
                    }
                    put(0, top)
                    put(1, bottom)
                    t += lanes
                }
            }
        }
    }
}
