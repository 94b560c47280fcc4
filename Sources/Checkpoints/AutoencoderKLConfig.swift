import Foundation

/// diffusers `AutoencoderKL` config (`vae/config.json`); absent keys take diffusers' defaults.
public struct AutoencoderKLConfig: CheckpointConfig, Equatable {
    public var source = "<memory>"
    /// Image channels in (default 3).
    public var inChannels: Int
    /// Image channels out (default 3).
    public var outChannels: Int
    /// Encoder blocks (default one DownEncoderBlock2D).
    public var downBlockTypes: [String]
    /// Decoder blocks (default one UpDecoderBlock2D).
    public var upBlockTypes: [String]
    /// Channels per block (default [64]).
    public var blockOutChannels: [Int]
    /// ResNets per encoder block (default 1; decoder blocks have one more).
    public var layersPerBlock: Int
    /// Activation (default "silu").
    public var actFn: String
    /// Latent channels (default 4).
    public var latentChannels: Int
    /// Group norm groups (default 32).
    public var normNumGroups: Int
    /// Image size trained at (default 32).
    public var sampleSize: Int
    /// Latents are multiplied by this before the UNet (default 0.18215).
    public var scalingFactor: Double
    /// Latent shift (default nil).
    public var shiftFactor: Double?
    /// Run the VAE in float32 (default true).
    public var forceUpcast: Bool
    /// Whether quant_conv exists (default true).
    public var useQuantConv: Bool
    /// Whether post_quant_conv exists (default true).
    public var usePostQuantConv: Bool
    /// Whether the mid block has attention (default true).
    public var midBlockAddAttention: Bool

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block"
        case actFn = "act_fn"
        case latentChannels = "latent_channels"
        case normNumGroups = "norm_num_groups"
        case sampleSize = "sample_size"
        case scalingFactor = "scaling_factor"
        case shiftFactor = "shift_factor"
        case forceUpcast = "force_upcast"
        case useQuantConv = "use_quant_conv"
        case usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.value(.inChannels, 3)
        outChannels = try c.value(.outChannels, 3)
        downBlockTypes = try c.value(.downBlockTypes, ["DownEncoderBlock2D"])
        upBlockTypes = try c.value(.upBlockTypes, ["UpDecoderBlock2D"])
        blockOutChannels = try c.value(.blockOutChannels, [64])
        layersPerBlock = try c.value(.layersPerBlock, 1)
        actFn = try c.value(.actFn, "silu")
        latentChannels = try c.value(.latentChannels, 4)
        normNumGroups = try c.value(.normNumGroups, 32)
        sampleSize = try c.value(.sampleSize, 32)
        scalingFactor = try c.value(.scalingFactor, 0.18215)
        shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
        forceUpcast = try c.value(.forceUpcast, true)
        useQuantConv = try c.value(.useQuantConv, true)
        usePostQuantConv = try c.value(.usePostQuantConv, true)
        midBlockAddAttention = try c.value(.midBlockAddAttention, true)
    }

    public func validate() throws {
        let known = SupportedConfigValues.self
        try require("act_fn", [actFn], in: known.activations)
        try require("down_block_types", downBlockTypes, in: known.vaeDownBlocks)
        try require("up_block_types", upBlockTypes, in: known.vaeUpBlocks)
        guard !blockOutChannels.isEmpty, downBlockTypes.count == blockOutChannels.count,
            upBlockTypes.count == blockOutChannels.count
        else {
            throw invalid(
                "block_out_channels",
                "\(blockOutChannels.count) channels for \(downBlockTypes.count) down and \(upBlockTypes.count) up blocks"
            )
        }
        for ch in blockOutChannels where normNumGroups <= 0 || ch <= 0 || ch % normNumGroups != 0 {
            throw invalid("norm_num_groups", "\(ch) channels are not divisible into \(normNumGroups) groups")
        }
        if layersPerBlock < 1 { throw invalid("layers_per_block", "must be ≥ 1") }
        if latentChannels < 1 { throw invalid("latent_channels", "must be ≥ 1") }
        if !(scalingFactor > 0) { throw invalid("scaling_factor", "must be > 0") }
    }
}
