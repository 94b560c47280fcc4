import Checkpoints
import Tensors

/// Settings every UNet block shares, from the UNet config.
struct UNetBlockSettings {
    let tembChannels: Int
    let groups: Int
    let eps: Float
    let linearProjection: Bool
}

/// diffusers `CrossAttnDownBlock2D` (with `attentions`) or `DownBlock2D` (without): resnets, each followed by
/// a transformer when there are attentions, then an optional `Downsample2D`. Every resnet/transformer output
/// and the downsampler's output are kept as skip connections.
struct UNetDownBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let downsampler: Downsample2D?

    /// `attention`: heads, transformer layers and context width when this is a `CrossAttnDownBlock2D`.
    init(
        _ w: WeightBinder, inChannels: Int, outChannels: Int, layers: Int,
        attention: (heads: Int, layers: Int, contextDim: Int)?, addDownsample: Bool, downsamplePadding: Int,
        settings s: UNetBlockSettings
    ) throws {
        resnets = try (0..<layers).map {
            try ResnetBlock2D(
                w.scoped("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                tembChannels: s.tembChannels, groups: s.groups, eps: s.eps)
        }
        attentions =
            try attention.map { a in
                try (0..<layers).map {
                    try Transformer2DModel(
                        w.scoped("attentions.\($0)"), channels: outChannels, heads: a.heads, layers: a.layers,
                        contextDim: a.contextDim, groups: s.groups, linearProjection: s.linearProjection)
                }
            } ?? []
        downsampler =
            addDownsample
            ? try Downsample2D(w.scoped("downsamplers.0"), channels: outChannels, padding: downsamplePadding) : nil
    }

    /// Returns the block output and its skip connections (in order).
    func callAsFunction(_ x: Tensor, tembActivated: Tensor, context: Tensor) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for (i, resnet) in resnets.enumerated() {
            h = try resnet(h, tembActivated: tembActivated)
            if !attentions.isEmpty { h = try attentions[i](h, context: context) }
            skips.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            skips.append(h)
        }
        return (h, skips)
    }
}

/// diffusers `UNetMidBlock2DCrossAttn` (one layer): `resnets.0`, then `attentions.0` and `resnets.1`.
/// The resnets divide by `output_scale_factor` (`mid_block_scale_factor`).
struct UNetMidBlockCrossAttn {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]

    init(
        _ w: WeightBinder, channels: Int, heads: Int, transformerLayers: Int, contextDim: Int,
        outputScaleFactor: Float, settings s: UNetBlockSettings
    ) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(
                w.scoped("resnets.\($0)"), inChannels: channels, outChannels: channels, tembChannels: s.tembChannels,
                groups: s.groups, eps: s.eps, outputScaleFactor: outputScaleFactor)
        }
        attentions = [
            try Transformer2DModel(
                w.scoped("attentions.0"), channels: channels, heads: heads, layers: transformerLayers,
                contextDim: contextDim, groups: s.groups, linearProjection: s.linearProjection)
        ]
    }

    func callAsFunction(_ x: Tensor, tembActivated: Tensor, context: Tensor) throws -> Tensor {
        var h = try resnets[0](x, tembActivated: tembActivated)
        for (attn, resnet) in zip(attentions, resnets.dropFirst()) {
            h = try attn(h, context: context)
            h = try resnet(h, tembActivated: tembActivated)
        }
        return h
    }
}

/// diffusers `CrossAttnUpBlock2D` (with `attentions`) or `UpBlock2D` (without): each resnet takes the
/// previous output concatenated (channels) with the last unused skip connection; then an optional
/// `Upsample2D`.
struct UNetUpBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let upsampler: Upsample2D?

    /// Channel accounting as diffusers: resnet `i` takes `(i == 0 ? prevOutput : out) + (i == layers−1 ? in : out)`.
    init(
        _ w: WeightBinder, inChannels: Int, outChannels: Int, prevOutputChannels: Int, layers: Int,
        attention: (heads: Int, layers: Int, contextDim: Int)?, addUpsample: Bool, settings s: UNetBlockSettings
    ) throws {
        resnets = try (0..<layers).map { i in
            let skip = i == layers - 1 ? inChannels : outChannels
            let input = i == 0 ? prevOutputChannels : outChannels
            return try ResnetBlock2D(
                w.scoped("resnets.\(i)"), inChannels: input + skip, outChannels: outChannels,
                tembChannels: s.tembChannels, groups: s.groups, eps: s.eps)
        }
        attentions =
            try attention.map { a in
                try (0..<layers).map {
                    try Transformer2DModel(
                        w.scoped("attentions.\($0)"), channels: outChannels, heads: a.heads, layers: a.layers,
                        contextDim: a.contextDim, groups: s.groups, linearProjection: s.linearProjection)
                }
            } ?? []
        upsampler = addUpsample ? try Upsample2D(w.scoped("upsamplers.0"), channels: outChannels) : nil
    }

    /// `skips` holds exactly `resnets.count` skip connections, consumed last first.
    func callAsFunction(
        _ x: Tensor, skips: [Tensor], tembActivated: Tensor, context: Tensor, upsampleSize: (Int, Int)?
    ) throws -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            let skip = skips[skips.count - 1 - i]
            h = try resnet(concat([h, skip], axis: 1), tembActivated: tembActivated)
            if !attentions.isEmpty { h = try attentions[i](h, context: context) }
        }
        if let upsampler { h = try upsampler(h, size: upsampleSize) }
        return h
    }
}
