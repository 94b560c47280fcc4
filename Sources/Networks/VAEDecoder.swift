import Checkpoints
import Tensors

/// diffusers `Attention` as the VAE mid block builds it (`_from_deprecated_attn_block`): GroupNorm, one head
/// over all channels, biased `to_q`/`to_k`/`to_v`/`to_out.0`, residual connection, output scale 1.
///
/// Checkpoints written before diffusers 0.14 (e.g. lambdalabs/sd-image-variations-diffusers v2.0) name the
/// projections `query`/`key`/`value`/`proj_attn`; diffusers renames each key on load, and so do we: a key is
/// read under its current name if present, else under its old name.
struct VAEAttention {
    let groupNorm: GroupNorm
    let toQ, toK, toV, toOut: Linear

    /// Current and pre-0.14 names of the projections.
    static let renames = [("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")]

    init(_ w: WeightBinder, channels: Int, groups: Int, eps: Float) throws {
        groupNorm = try GroupNorm(w.scoped("group_norm"), groups: groups, channels: channels, eps: eps)
        // A block written with old names reports a missing tensor under its old name.
        let legacy = Self.renames.contains { old in ["weight", "bias"].contains { w.contains("\(old.1).\($0)") } }
        func key(_ current: String, _ old: String, _ leaf: String) -> String {
            if w.contains("\(current).\(leaf)") { return "\(current).\(leaf)" }
            return w.contains("\(old).\(leaf)") || legacy ? "\(old).\(leaf)" : "\(current).\(leaf)"
        }
        func projection(_ current: String, _ old: String) throws -> Linear {
            Linear(
                weight: try w.takeWeight(key(current, old, "weight"), shape: [channels, channels]),
                bias: try w.take(key(current, old, "bias"), shape: [channels]))
        }
        let p = try Self.renames.map { try projection($0.0, $0.1) }
        (toQ, toK, toV, toOut) = (p[0], p[1], p[2], p[3])
    }

    /// `x` `[B, C, H, W]` → same shape.
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        let t = try tokens(groupNorm(x))  // [B, HW, C]
        let o = try toOut(attention(toQ(t), toK(t), toV(t), heads: 1))  // [B, HW, C]
        return try residualAdd(featureMap(o, height: h, width: w), x)
    }
}

/// diffusers `UNetMidBlock2D` as the VAE decoder builds it: `resnets.0`, then (`attentions.0`, `resnets.1`);
/// resnets without time conditioning, eps 1e-6. Without `mid_block_add_attention` there is no attention.
struct VAEMidBlock {
    let resnets: [ResnetBlock2D]
    let attention: VAEAttention?

    init(_ w: WeightBinder, channels: Int, groups: Int, addAttention: Bool) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(
                w.scoped("resnets.\($0)"), inChannels: channels, outChannels: channels, tembChannels: nil,
                groups: groups, eps: 1e-6)
        }
        attention =
            addAttention
            ? try VAEAttention(w.scoped("attentions.0"), channels: channels, groups: groups, eps: 1e-6) : nil
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try resnets[0](x, tembActivated: nil)
        if let attention { h = try attention(h) }
        return try resnets[1](h, tembActivated: nil)
    }
}

/// diffusers `UpDecoderBlock2D`: `layers_per_block + 1` resnets (eps 1e-6), then an optional `Upsample2D`.
struct VAEUpBlock {
    let resnets: [ResnetBlock2D]
    let upsampler: Upsample2D?

    init(_ w: WeightBinder, inChannels: Int, outChannels: Int, layers: Int, groups: Int, addUpsample: Bool) throws {
        resnets = try (0..<layers).map {
            try ResnetBlock2D(
                w.scoped("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                tembChannels: nil, groups: groups, eps: 1e-6)
        }
        upsampler = addUpsample ? try Upsample2D(w.scoped("upsamplers.0"), channels: outChannels) : nil
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        for resnet in resnets { h = try resnet(h, tembActivated: nil) }
        if let upsampler { h = try upsampler(h) }
        return h
    }
}

/// The decoding path of diffusers `AutoencoderKL`: `post_quant_conv` (1×1), `decoder.conv_in`,
/// `decoder.mid_block`, `decoder.up_blocks`, `decoder.conv_norm_out` (eps 1e-6) + SiLU, `decoder.conv_out`.
/// Matches `vae.decode(z).sample`.
public struct VAEDecoder: Sendable {
    public let config: AutoencoderKLConfig
    let postQuantConv: Conv2d?
    let convIn: Conv2d
    let midBlock: VAEMidBlock
    let upBlocks: [VAEUpBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    /// Binds the decoder from a whole `AutoencoderKL` state dict in `w`: `encoder.*` and `quant_conv.*` are
    /// marked unused on purpose; every other key must be consumed. Structure comes from `config` alone.
    public init(config: AutoencoderKLConfig, weights w: WeightBinder) throws {
        try config.validate()
        self.config = config
        let channels = config.blockOutChannels
        let n = channels.count
        let (z, groups) = (config.latentChannels, config.normNumGroups)
        w.ignore(prefix: "encoder")
        w.ignore(prefix: "quant_conv")
        postQuantConv =
            config.usePostQuantConv
            ? try Conv2d(w.scoped("post_quant_conv"), inChannels: z, outChannels: z, kernel: 1) : nil
        let d = w.scoped("decoder")
        convIn = try Conv2d(d.scoped("conv_in"), inChannels: z, outChannels: channels[n - 1], kernel: 3, padding: 1)
        midBlock = try VAEMidBlock(
            d.scoped("mid_block"), channels: channels[n - 1], groups: groups, addAttention: config.midBlockAddAttention)
        let reversed = Array(channels.reversed())
        upBlocks = try (0..<n).map { i in
            try VAEUpBlock(
                d.scoped("up_blocks.\(i)"), inChannels: reversed[max(i - 1, 0)], outChannels: reversed[i],
                layers: config.layersPerBlock + 1, groups: groups, addUpsample: i < n - 1)
        }
        convNormOut = try GroupNorm(d.scoped("conv_norm_out"), groups: groups, channels: channels[0], eps: 1e-6)
        convOut = try Conv2d(
            d.scoped("conv_out"), inChannels: channels[0], outChannels: config.outChannels, kernel: 3, padding: 1)
    }

    /// Number of weight elements (49,490,199 for the SD v1 VAE's decoder and `post_quant_conv`).
    public var parameterCount: Int { countParameters(self) }

    /// How the weights are held (float32 or float16, mapped or copied).
    public var weightSummary: WeightSummary { summarizeWeights(self) }

    /// Decodes latents `[B, latent_channels, h, w]` (already divided by `scaling_factor`) to images
    /// `[B, out_channels, h·2^(blocks−1), w·2^(blocks−1)]`, nominally in [-1, 1] and not clamped.
    public func decode(_ z: Tensor) throws -> Tensor {
        guard z.rank == 4, z.shape[1] == config.latentChannels else {
            throw TensorError("VAEDecoder", "expected latents [B, \(config.latentChannels), h, w], got \(z.shape)")
        }
        var h = try postQuantConv.map { try $0(z) } ?? z
        h = try convIn(h)
        h = try midBlock(h)
        for block in upBlocks { h = try block(h) }
        return try convOut(convNormOut(h, silu: true))
    }
}
