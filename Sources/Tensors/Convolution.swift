/// 2-D convolution, matching `torch.nn.functional.conv2d` (groups = 1, dilation = 1).
///
/// `x` `[N, C, H, W]`, `weight` `[O, C, kh, kw]`, `bias` `[O]`; zero padding `padding` on each side.
/// Result `[N, O, (H + 2ph − kh)/sh + 1, (W + 2pw − kw)/sw + 1]`. Lowered to GEMM over im2col tiles of
/// output rows, so the column buffer stays bounded (≈ 4 M floats) whatever the image size; each GEMM is
/// split over the kernel threads.
public func conv2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil,
    stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)
) throws -> Tensor {
    try conv2d(x, .plain(weight), bias: bias, stride: stride, padding: padding)
}

/// The same over a plain weight (BLAS GEMMs) or a packed one (our GEMM, with the bias added in its output pass).
func conv2d(
    _ x: Tensor, _ weight: LayerWeight, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)
) throws -> Tensor {
    guard x.rank == 4, weight.shape.count == 4 else {
        throw TensorError(
            "conv2d", "input must be [N, C, H, W] and weight [O, C, kh, kw], got \(x.shape) and \(weight.shape)")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    let (sh, sw) = stride
    let (ph, pw) = padding
    guard weight.shape[1] == c else {
        throw TensorError(
            "conv2d", "input \(x.shape) has \(c) channels but weight \(weight.shape) expects \(weight.shape[1])")
    }
    guard sh > 0, sw > 0, ph >= 0, pw >= 0, kh > 0, kw > 0 else {
        throw TensorError("conv2d", "invalid stride \(stride) or padding \(padding) for weight \(weight.shape)")
    }
    if let bias, bias.shape != [o] {
        throw TensorError("conv2d", "bias \(bias.shape) does not match \(o) output channels")
    }
    let hout = (h + 2 * ph - kh) / sh + 1
    let wout = (w + 2 * pw - kw) / sw + 1
    guard h + 2 * ph >= kh, w + 2 * pw >= kw else {
        throw TensorError("conv2d", "kernel \(kh)×\(kw) larger than padded input \(x.shape) with padding \(padding)")
    }
    var out = Tensor(uninitialized: [n, o, hout, wout])
    let kdim = c * kh * kw
    FLOPCounter.add(2 * n * o * hout * wout * kdim)
    let pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0
    // Output rows per tile so that the im2col buffer holds at most ~4M floats.
    let rowsPerTile = pointwise ? hout : max(1, min(hout, (1 << 22) / max(kdim * wout, 1)))
    let plane = hout * wout
    // [O, kdim] × [kdim, span] → dst (leading dimension ldc): BLAS over a plain weight, our kernel (bias included)
    // over a packed one.
    func gemm(_ b: UnsafePointer<Float>, span: Int, into dst: UnsafeMutablePointer<Float>, ldc: Int = plane) {
        switch weight {
        case .plain(let t):
            t.withUnsafeBufferPointer { pwt in
                splitSgemm(
                    transB: false, m: o, n: span, k: kdim, a: pwt.baseAddress!, lda: kdim, b: b, ldb: span, c: dst,
                    ldc: ldc)
            }
        case .packed(let p):
            withOptionalPointer(bias) { pb in
                packedGEMM(
                    m: o, n: span, k: kdim, a: .packed(p), b: .plain(b, ld: span), c: dst, ldc: ldc, rowBias: pb)
            }
        }
    }
    // Small images (the UNet's deepest levels): every image's columns side by side in one GEMM, so the weight
    // streams once rather than once per image and the GEMM is wide enough for the kernel's 32-column tiles (one
    // 4×4 image fills half a tile). The product lands in scratch `[O, N·plane]` and is copied out per image.
    let batched = n > 1 && plane < 1024 && kdim * n * plane <= 1 << 22
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            guard let px = px.baseAddress, let po = po.baseAddress else { return }
            if batched {
                let span = n * plane
                ScratchPool.shared.with(kdim * span) { pcols in
                    ScratchPool.shared.with(o * span) { product in
                        for b in 0..<n {
                            let src = px + b * c * h * w
                            if pointwise {
                                for ci in 0..<c {
                                    (pcols + ci * span + b * plane).update(from: src + ci * plane, count: plane)
                                }
                            } else {
                                im2col(
                                    src, channels: c, height: h, width: w, kernel: (kh, kw), stride: stride,
                                    padding: padding, outWidth: wout, rows: 0..<hout,
                                    into: SendablePointer(pcols + b * plane), ld: span)
                            }
                        }
                        gemm(pcols, span: span, into: product, ldc: span)
                        for b in 0..<n {
                            for oi in 0..<o {
                                (po + (b * o + oi) * plane).update(from: product + oi * span + b * plane, count: plane)
                            }
                        }
                    }
                }
            } else {
                ScratchPool.shared.with(pointwise ? 0 : kdim * rowsPerTile * wout) { pcols in
                    for b in 0..<n {
                        let src = px + b * c * h * w
                        let dst = po + b * o * plane
                        if pointwise {
                            gemm(src, span: plane, into: dst)
                            continue
                        }
                        var row0 = 0
                        while row0 < hout {
                            let rows = min(rowsPerTile, hout - row0)
                            im2col(
                                src, channels: c, height: h, width: w, kernel: (kh, kw), stride: stride,
                                padding: padding, outWidth: wout, rows: row0..<(row0 + rows),
                                into: SendablePointer(pcols), ld: rows * wout)
                            gemm(pcols, span: rows * wout, into: dst + row0 * wout)
                            row0 += rows
                        }
                    }
                }
            }
            if let bias, case .plain = weight {
                addChannelBias(bias, to: po, batches: n, channels: o, plane: plane)
            }
        }
    }
    return out
}

/// Unfolds the receptive fields of output rows `rows` into `cols` `[C·kh·kw, rows·wout]` (leading dimension `ld`).
private func im2col(
    _ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int,
    kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), outWidth wout: Int,
    rows: Range<Int>, into cols: SendablePointer<Float>, ld: Int
) {
    let (kh, kw) = kernel
    let (sh, sw) = stride
    let (ph, pw) = padding
    let span = rows.count * wout
    parallelChunks(c * kh * kw, costPerItem: span) { range in
        for r in range {
            let ci = r / (kh * kw)
            let ky = (r / kw) % kh
            let kx = r % kw
            let plane = src + ci * h * w
            var dst = cols.base + r * ld
            for oy in rows {
                let iy = oy * sh - ph + ky
                if iy < 0 || iy >= h {
                    dst.update(repeating: 0, count: wout)
                } else {
                    let line = plane + iy * w
                    for ox in 0..<wout {
                        let ix = ox * sw - pw + kx
                        dst[ox] = (ix >= 0 && ix < w) ? line[ix] : 0
                    }
                }
                dst += wout
            }
        }
    }
}

/// Adds `bias[c]` to every element of channel `c` in an `[N, C, plane]` buffer.
func addChannelBias(_ bias: Tensor, to p: UnsafeMutablePointer<Float>, batches: Int, channels: Int, plane: Int) {
    let out = SendablePointer(p)
    bias.withUnsafeBufferPointer { pb in
        parallelChunks(batches * channels, costPerItem: plane) { range in
            for bc in range {
                let v = pb[bc % channels]
                let row = out.base + bc * plane
                for i in 0..<plane { row[i] += v }
            }
        }
    }
}
