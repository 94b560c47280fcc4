import Foundation
import Tensors

/// Image resampling kernels reproduced from the references (docs/algorithms.md#resampling-kernels).
public enum Resample {
    /// Bicubic resize of a float `[C, H, W]` tensor to `[C, height, width]`, matching torch's
    /// `F.interpolate(mode="bicubic", align_corners=False, antialias=False)` on CPU (what torchvision's
    /// `Resize(..., BICUBIC, antialias=False)` runs for float input): A = −0.75, half-pixel centres, clamped
    /// source indices, no renormalization and no clamping of values (overshoot is kept).
    public static func bicubicTorch(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        guard x.rank == 3, height > 0, width > 0 else {
            throw TensorError(
                "bicubicTorch", "input must be [C, H, W] and size positive; got \(x.shape) → \(height)×\(width)")
        }
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let ys = torchCubicTaps(input: h, output: height)
        let xs = torchCubicTaps(input: w, output: width)
        var values = [Float](repeating: 0, count: c * height * width)
        x.withUnsafeBufferPointer { px in
            for ch in 0..<c {
                let plane = px.baseAddress! + ch * h * w
                for oy in 0..<height {
                    let ty = ys[oy]
                    for ox in 0..<width {
                        let tx = xs[ox]
                        var acc: Float = 0
                        for j in 0..<4 {
                            let row = plane + ty.index[j] * w
                            var inner: Float = 0
                            for k in 0..<4 { inner += tx.weight[k] * row[tx.index[k]] }
                            acc += ty.weight[j] * inner
                        }
                        values[(ch * height + oy) * width + ox] = acc
                    }
                }
            }
        }
        return try Tensor(shape: [c, height, width], values: values)
    }

    /// PIL's `Image.resize(size, Image.BICUBIC)` on an 8-bit RGB image (`libImaging/Resample.c`): separable
    /// a = −0.5 cubic with support scaled for downsampling (antialiasing), weights computed in double and
    /// quantized to 22-bit fixed point, horizontal pass first, each pass rounded and clipped to 8 bits.
    public static func bicubicPIL(_ image: RGBImage, width: Int, height: Int) throws -> RGBImage {
        guard width > 0, height > 0 else {
            throw ImagingError("bicubicPIL: target size \(width)×\(height) must be positive")
        }
        var pixels = image.pixels
        var curW = image.width
        let curH = image.height
        if width != curW {
            let taps = pilTaps(input: curW, output: width)
            var out = [UInt8](repeating: 0, count: width * curH * 3)
            for y in 0..<curH {
                for x in 0..<width {
                    let t = taps[x]
                    for ch in 0..<3 {
                        var acc: Int32 = 1 << 21
                        for (k, weight) in t.weights.enumerated() {
                            acc &+= Int32(pixels[(y * curW + t.first + k) * 3 + ch]) &* weight
                        }
                        out[(y * width + x) * 3 + ch] = clip8(acc)
                    }
                }
            }
            pixels = out
            curW = width
        }
        if height != curH {
            let taps = pilTaps(input: curH, output: height)
            var out = [UInt8](repeating: 0, count: width * height * 3)
            for y in 0..<height {
                let t = taps[y]
                for x in 0..<width {
                    for ch in 0..<3 {
                        var acc: Int32 = 1 << 21
                        for (k, weight) in t.weights.enumerated() {
                            acc &+= Int32(pixels[((t.first + k) * width + x) * 3 + ch]) &* weight
                        }
                        out[(y * width + x) * 3 + ch] = clip8(acc)
                    }
                }
            }
            pixels = out
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }
}

/// Source taps per output coordinate, as ATen's `upsample_bicubic2d` computes them in float32.
private func torchCubicTaps(input: Int, output: Int) -> [(index: [Int], weight: [Float])] {
    let a: Float = -0.75
    let scale = Float(input) / Float(output)
    // K2 with the fused multiply-adds the reference build uses (bit-exact weights, docs/algorithms.md#torch-bicubic).
    func k1(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
    func k2(_ x: Float) -> Float { (8 * a).addingProduct((-5 * a).addingProduct(a, x), x) * x + (-4 * a) }
    return (0..<output).map { i in
        // `scale·(i + 0.5) − 0.5` as one fused multiply-add, as the reference build computes it.
        let src = Float(-0.5).addingProduct(scale, Float(i) + 0.5)
        let i0 = min(Int(src.rounded(.down)), input - 1)
        let t = min(max(src - Float(i0), 0), 1)
        let weights = [k2(t + 1), k1(t), k1(1 - t), k2(2 - t)]
        let indices = (0..<4).map { k in min(max(i0 - 1 + k, 0), input - 1) }
        return (indices, weights)
    }
}

/// PIL's bicubic taps for one axis: first source index and 22-bit fixed-point weights per output.
private func pilTaps(input: Int, output: Int) -> [(first: Int, weights: [Int32])] {
    let scale = Double(input) / Double(output)
    let filterScale = max(scale, 1)
    let support = 2 * filterScale
    func bicubic(_ v: Double) -> Double {
        let x = abs(v)
        let a = -0.5
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }
    return (0..<output).map { i in
        let center = (Double(i) + 0.5) * scale
        let xmin = max(Int(center - support + 0.5), 0)
        let xmax = min(Int(center + support + 0.5), input) - xmin
        var weights = [Double](repeating: 0, count: max(xmax, 0))
        var total = 0.0
        for x in 0..<max(xmax, 0) {
            let w = bicubic((Double(x + xmin) - center + 0.5) / filterScale)
            weights[x] = w
            total += w
        }
        let fixed = weights.map { w -> Int32 in
            let k = total != 0 ? w / total : w
            return Int32(k < 0 ? -0.5 + k * Double(1 << 22) : 0.5 + k * Double(1 << 22))
        }
        return (xmin, fixed)
    }
}

@inline(__always)
private func clip8(_ acc: Int32) -> UInt8 {
    let v = acc >> 22
    return v < 0 ? 0 : (v > 255 ? 255 : UInt8(v))
}
