import Checkpoints
import Foundation
import Tensors

/// diffusers `UNet2DConditionModel` for the SD v1/v2 family: `conv_in`, sinusoidal time projection and
/// `time_embedding`, `CrossAttnDownBlock2D`/`DownBlock2D` down blocks, `UNetMidBlock2DCrossAttn`,
/// `UpBlock2D`/`CrossAttnUpBlock2D` up blocks, `conv_norm_out` + SiLU + `conv_out`. Sized entirely by the
/// config, as diffusers 0.42 builds it: `attention_head_dim` is the number of heads (the legacy naming),
/// up blocks take the per-block lists reversed, the mid block their last entries.
public struct UNet2DConditionModel: Sendable {
    public let config: UNet2DConditionConfig
    let convIn: Conv2d
    let timeLinear1, timeLinear2: Linear
    let downBlocks: [UNetDownBlock]
    let midBlock: UNetMidBlockCrossAttn?
    let upBlocks: [UNetUpBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    /// Binds every tensor of a diffusers UNet state dict from `w` (keys `conv_in.*`, `time_embedding.*`,
    /// `down_blocks.N.*`, `mid_block.*`, `up_blocks.N.*`, `conv_norm_out.*`, `conv_out.*`). Structure comes from
    /// `config` alone. A config value this port does not run is a `CheckpointError` naming the key.
    public init(config: UNet2DConditionConfig, weights w: WeightBinder) throws {
        try config.validate()
        try Self.refuseUnsupported(config)
        self.config = config
        let channels = config.blockOutChannels
        let n = channels.count
        let heads = config.headsPerBlock
        let tembChannels = 4 * channels[0]
        let settings = UNetBlockSettings(
            tembChannels: tembChannels, groups: config.normNumGroups ?? 32, eps: Float(config.normEps),
            linearProjection: config.useLinearProjection)

        convIn = try Conv2d(
            w.scoped("conv_in"), inChannels: config.inChannels, outChannels: channels[0], kernel: 3, padding: 1)
        timeLinear1 = try Linear(
            w.scoped("time_embedding.linear_1"), inFeatures: channels[0], outFeatures: tembChannels)
        timeLinear2 = try Linear(
            w.scoped("time_embedding.linear_2"), inFeatures: tembChannels, outFeatures: tembChannels)

        var down: [UNetDownBlock] = []
        var output = channels[0]
        for (i, type) in config.downBlockTypes.enumerated() {
            let input = output
            output = channels[i]
            let attention =
                type == "CrossAttnDownBlock2D"
                ? (
                    heads: heads[i], layers: config.transformerLayersPerBlock[i],
                    contextDim: config.crossAttentionDim[i]
                )
                : nil
            down.append(
                try UNetDownBlock(
                    w.scoped("down_blocks.\(i)"), inChannels: input, outChannels: output,
                    layers: config.layersPerBlock[i], attention: attention, addDownsample: i < n - 1,
                    downsamplePadding: config.downsamplePadding, settings: settings))
        }
        downBlocks = down

        midBlock =
            config.midBlockType == nil
            ? nil
            : try UNetMidBlockCrossAttn(
                w.scoped("mid_block"), channels: channels[n - 1], heads: heads[n - 1],
                transformerLayers: config.transformerLayersPerBlock[n - 1],
                contextDim: config.crossAttentionDim[n - 1], outputScaleFactor: Float(config.midBlockScaleFactor),
                settings: settings)

        let reversedChannels = Array(channels.reversed())
        var up: [UNetUpBlock] = []
        output = reversedChannels[0]
        for (i, type) in config.upBlockTypes.enumerated() {
            let r = n - 1 - i  // the down block this up block mirrors
            let prevOutput = output
            output = reversedChannels[i]
            let input = reversedChannels[min(i + 1, n - 1)]
            let attention =
                type == "CrossAttnUpBlock2D"
                ? (
                    heads: heads[r], layers: config.transformerLayersPerBlock[r],
                    contextDim: config.crossAttentionDim[r]
                )
                : nil
            up.append(
                try UNetUpBlock(
                    w.scoped("up_blocks.\(i)"), inChannels: input, outChannels: output, prevOutputChannels: prevOutput,
                    layers: config.layersPerBlock[r] + 1, attention: attention, addUpsample: i < n - 1,
                    settings: settings))
        }
        upBlocks = up

        convNormOut = try GroupNorm(
            w.scoped("conv_norm_out"), groups: settings.groups, channels: channels[0], eps: settings.eps)
        convOut = try Conv2d(
            w.scoped("conv_out"), inChannels: channels[0], outChannels: config.outChannels, kernel: 3, padding: 1)
    }

    /// Number of weight elements (859,520,964 for SD v1).
    public var parameterCount: Int { countParameters(self) }

    /// How the weights are held (float32 or float16, mapped or copied).
    public var weightSummary: WeightSummary { summarizeWeights(self) }

    /// Config values that `validate()` lets through but this network does not implement.
    private static func refuseUnsupported(_ c: UNet2DConditionConfig) throws {
        if c.numAttentionHeads != nil {
            // diffusers 0.42 raises on it too (the attention_head_dim naming issue, diffusers #2011).
            throw CheckpointError(
                file: c.source, key: "num_attention_heads",
                "unsupported: diffusers' UNet2DConditionModel refuses it; give heads as attention_head_dim")
        }
        if let v = c.numClassEmbeds {
            throw CheckpointError(file: c.source, key: "num_class_embeds", "unsupported value \(v) (supported: null)")
        }
        if let v = c.encoderHidDim {
            throw CheckpointError(file: c.source, key: "encoder_hid_dim", "unsupported value \(v) (supported: null)")
        }
        if c.blockOutChannels[0] % 2 != 0 {
            throw CheckpointError(
                file: c.source, key: "block_out_channels", "time projection width \(c.blockOutChannels[0]) must be even"
            )
        }
    }

    /// Sinusoidal time projection (`Timesteps` / `get_timestep_embedding`, max period 10000), `[1, width]`,
    /// in float32 as torch computes it.
    func timeProjection(_ t: Float) throws -> Tensor {
        let width = config.blockOutChannels[0]
        let half = width / 2
        let logPeriod = Float(-log(10000.0))
        let denominator = Float(half - config.freqShift)
        var sines = [Float](repeating: 0, count: half)
        var cosines = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let exponent = logPeriod * Float(i) / denominator
            let frequency = Float(Foundation.exp(Double(exponent)))
            let arg = Double(t * frequency)
            sines[i] = Float(Foundation.sin(arg))
            cosines[i] = Float(Foundation.cos(arg))
        }
        let values = config.flipSinToCos ? cosines + sines : sines + cosines
        return try Tensor(shape: [1, width], values: values)
    }

    /// The noise prediction for `sample` `[B, in_channels, h, w]` at `timestep`, conditioned on
    /// `encoderHiddenStates` `[B, L, cross_attention_dim]`. Result `[B, out_channels, h, w]`.
    public func callAsFunction(_ sample: Tensor, timestep: Float, encoderHiddenStates context: Tensor) throws -> Tensor
    {
        guard sample.rank == 4, sample.shape[1] == config.inChannels else {
            throw TensorError(
                "UNet2DConditionModel", "expected sample [B, \(config.inChannels), h, w], got \(sample.shape)")
        }
        let crossDims = Set(config.crossAttentionDim)
        guard context.rank == 3, context.shape[0] == sample.shape[0], context.shape[1] >= 1,
            crossDims.count == 1, context.shape[2] == config.crossAttentionDim[0]
        else {
            throw TensorError(
                "UNet2DConditionModel",
                "expected encoder hidden states [\(sample.shape[0]), L, \(config.crossAttentionDim[0])], got \(context.shape)"
            )
        }
        // Time embedding, computed once (all batch entries share the timestep); resnets use silu(temb).
        let temb = try timeLinear2(silu(timeLinear1(timeProjection(timestep))))  // [1, 4·C0]
        let tembActivated = silu(temb)

        var h = config.centerInputSample ? map(sample) { 2 * $0 - 1 } : sample
        h = try convIn(h)  // [B, C0, h, w]
        var skips: [Tensor] = [h]
        for block in downBlocks {
            let (out, blockSkips) = try block(h, tembActivated: tembActivated, context: context)
            h = out
            skips += blockSkips
        }
        if let midBlock { h = try midBlock(h, tembActivated: tembActivated, context: context) }

        // diffusers forwards explicit upsample sizes when the input is not a multiple of 2^upsamplers.
        let factor = 1 << max(upBlocks.count - 1, 0)
        let forwardSize = sample.shape[2] % factor != 0 || sample.shape[3] % factor != 0
        for (i, block) in upBlocks.enumerated() {
            let count = block.resnets.count
            guard skips.count >= count else {
                throw TensorError(
                    "UNet2DConditionModel", "up block \(i) needs \(count) skip connections, \(skips.count) left")
            }
            let blockSkips = Array(skips.suffix(count))
            skips.removeLast(count)
            let size: (Int, Int)? =
                forwardSize && i < upBlocks.count - 1 ? skips.last.map { ($0.shape[2], $0.shape[3]) } : nil
            h = try block(h, skips: blockSkips, tembActivated: tembActivated, context: context, upsampleSize: size)
        }
        return try convOut(convNormOut(h, silu: true))  // [B, out, h, w]
    }
}
