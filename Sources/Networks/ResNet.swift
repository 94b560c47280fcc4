import Checkpoints
import Tensors

/// diffusers `ResnetBlock2D` (`time_embedding_norm="default"`, SiLU, no up/down sampling inside):
/// `h = conv1(silu(norm1(x))) + time_emb_proj(silu(temb))`, `h = conv2(silu(norm2(h)))`,
/// `out = (shortcut(x) + h) / output_scale_factor`, where the shortcut is the 1×1 `conv_shortcut` when the
/// channel count changes.
struct ResnetBlock2D {
    let norm1, norm2: GroupNorm
    let conv1, conv2: Conv2d
    let timeEmbProj: Linear?
    let convShortcut: Conv2d?
    let outputScaleFactor: Float

    /// `tembChannels` nil: no time conditioning (the VAE's resnets).
    init(
        _ w: WeightBinder, inChannels: Int, outChannels: Int, tembChannels: Int?, groups: Int, eps: Float,
        outputScaleFactor: Float = 1
    ) throws {
        norm1 = try GroupNorm(w.scoped("norm1"), groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(w.scoped("conv1"), inChannels: inChannels, outChannels: outChannels, kernel: 3, padding: 1)
        timeEmbProj = try tembChannels.map {
            try Linear(w.scoped("time_emb_proj"), inFeatures: $0, outFeatures: outChannels)
        }
        norm2 = try GroupNorm(w.scoped("norm2"), groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(w.scoped("conv2"), inChannels: outChannels, outChannels: outChannels, kernel: 3, padding: 1)
        convShortcut =
            inChannels == outChannels
            ? nil : try Conv2d(w.scoped("conv_shortcut"), inChannels: inChannels, outChannels: outChannels, kernel: 1)
        self.outputScaleFactor = outputScaleFactor
    }

    /// `x` `[B, in, H, W]`; `tembActivated` is `silu(temb)` `[1 or B, temb]` (computed once per network call).
    func callAsFunction(_ x: Tensor, tembActivated: Tensor?) throws -> Tensor {
        var h = try norm1(x, silu: true)
        if let timeEmbProj, let tembActivated {
            let t = try timeEmbProj(tembActivated)  // [1 or B, out]
            if t.shape[0] == 1, let b = conv1.bias {
                // One time embedding for the whole batch: fold it into conv1's bias.
                h = try conv1(h, bias: add(b, t.reshaped([t.shape[1]])))  // [B, out, H, W]
            } else {
                h = try add(conv1(h), t.reshaped([t.shape[0], t.shape[1], 1, 1]))
            }
        } else {
            h = try conv1(h)
        }
        h = try conv2(norm2(h, silu: true))
        let shortcut = try convShortcut.map { try $0(x) } ?? x
        return try residualAdd(shortcut, h, scale: 1 / outputScaleFactor)
    }
}

/// diffusers `Downsample2D` with `use_conv=True` (key `conv`): a stride-2 3×3 convolution. With padding 0,
/// the input is first padded by one on the right and bottom, as diffusers does.
struct Downsample2D {
    let conv: Conv2d
    let padRightBottom: Bool

    init(_ w: WeightBinder, channels: Int, padding: Int) throws {
        conv = try Conv2d(
            w.scoped("conv"), inChannels: channels, outChannels: channels, kernel: 3, stride: 2, padding: padding)
        padRightBottom = padding == 0
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let input = padRightBottom ? try pad2d(x, top: 0, bottom: 1, left: 0, right: 1) : x
        return try conv(input)
    }
}

/// diffusers `Upsample2D` with `use_conv=True` (key `conv`): nearest-neighbour 2× (or to `size` when the
/// UNet forwards one), then a 3×3 convolution.
struct Upsample2D {
    let conv: Conv2d

    init(_ w: WeightBinder, channels: Int) throws {
        conv = try Conv2d(w.scoped("conv"), inChannels: channels, outChannels: channels, kernel: 3, padding: 1)
    }

    func callAsFunction(_ x: Tensor, size: (Int, Int)? = nil) throws -> Tensor {
        let up =
            if let size { try upsampleNearest(x, height: size.0, width: size.1) } else { try upsampleNearest2x(x) }
        return try conv(up)
    }
}
