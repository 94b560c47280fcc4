import Foundation

/// diffusers `UNet2DConditionModel` config (`unet/config.json`); absent keys take diffusers' defaults.
///
/// Scalar-or-array fields (`attention_head_dim`, `layers_per_block`, `cross_attention_dim`,
/// `only_cross_attention`, `num_attention_heads`, `transformer_layers_per_block`) are normalized to one
/// value per down block.
public struct UNet2DConditionConfig: CheckpointConfig, Equatable {
    public var source = "<memory>"
    /// Latent height/width the model was trained at (default nil).
    public var sampleSize: Int?
    /// Input channels (default 4).
    public var inChannels: Int
    /// Output channels (default 4).
    public var outChannels: Int
    /// Whether the input is scaled to [-1, 1] first (default false).
    public var centerInputSample: Bool
    /// Timestep embedding: cos before sin (default true).
    public var flipSinToCos: Bool
    /// Timestep embedding frequency shift (default 0).
    public var freqShift: Int
    /// Down block types (default 3 × CrossAttnDownBlock2D, DownBlock2D).
    public var downBlockTypes: [String]
    /// Mid block type (default UNetMidBlock2DCrossAttn; nil means no mid block).
    public var midBlockType: String?
    /// Up block types (default UpBlock2D, 3 × CrossAttnUpBlock2D).
    public var upBlockTypes: [String]
    /// Per block: attention without self-attention (default false).
    public var onlyCrossAttention: [Bool]
    /// Channels per block (default 320, 640, 1280, 1280).
    public var blockOutChannels: [Int]
    /// Per block: resnets per down block (default 2; up blocks have one more).
    public var layersPerBlock: [Int]
    /// Padding of the downsampling convolutions (default 1).
    public var downsamplePadding: Int
    /// Output scale of the mid block (default 1).
    public var midBlockScaleFactor: Double
    /// Activation (default "silu").
    public var actFn: String
    /// Group norm groups (default 32).
    public var normNumGroups: Int?
    /// Group norm epsilon (default 1e-5).
    public var normEps: Double
    /// Per block: width of the conditioning (default 1280).
    public var crossAttentionDim: [Int]
    /// Per block: transformer layers per attention (default 1).
    public var transformerLayersPerBlock: [Int]
    /// Per block: `attention_head_dim` as written (default 8). diffusers reads it as the number of heads
    /// when `num_attention_heads` is absent; use `headsPerBlock`.
    public var attentionHeadDim: [Int]
    /// Per block: number of heads (default nil).
    public var numAttentionHeads: [Int]?
    /// Two cross-attention streams (default false).
    public var dualCrossAttention: Bool
    /// Linear instead of 1×1 conv projections in transformers (default false; true for SD 2).
    public var useLinearProjection: Bool
    /// Class embedding type (default nil).
    public var classEmbedType: String?
    /// Number of class embeddings (default nil).
    public var numClassEmbeds: Int?
    /// Attention computed in float32 (default false).
    public var upcastAttention: Bool
    /// ResNet time conditioning (default "default").
    public var resnetTimeScaleShift: String
    /// Time embedding type (default "positional").
    public var timeEmbeddingType: String
    /// Kernel of conv_in (default 3).
    public var convInKernel: Int
    /// Kernel of conv_out (default 3).
    public var convOutKernel: Int
    /// Additional embedding type (default nil; "text_time" for SDXL).
    public var additionEmbedType: String?
    /// Encoder hidden projection width (default nil).
    public var encoderHidDim: Int?
    /// Keys of `inertSettings` whose values would change the network (refused by `validate()`).
    public var changedSettings: [String] = []
    /// `_diffusers_version` of the writer (nil when absent).
    public var diffusersVersion: String?

    /// Whether the writer's diffusers version is below `major.minor` (false when unknown or unparsable).
    public func writtenBefore(_ major: Int, _ minor: Int) -> Bool {
        guard let v = diffusersVersion else { return false }
        let parts = v.split(separator: ".").map { Int($0.prefix { $0.isNumber }) }
        guard parts.count >= 2, let a = parts[0], let b = parts[1] else { return false }
        return (a, b) < (major, minor)
    }

    /// Heads per down block, as diffusers computes them: `num_attention_heads ?? attention_head_dim`.
    public var headsPerBlock: [Int] { numAttentionHeads ?? attentionHeadDim }

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size"
        case diffusersVersion = "_diffusers_version"
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case centerInputSample = "center_input_sample"
        case flipSinToCos = "flip_sin_to_cos"
        case freqShift = "freq_shift"
        case downBlockTypes = "down_block_types"
        case midBlockType = "mid_block_type"
        case upBlockTypes = "up_block_types"
        case onlyCrossAttention = "only_cross_attention"
        case blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block"
        case downsamplePadding = "downsample_padding"
        case midBlockScaleFactor = "mid_block_scale_factor"
        case actFn = "act_fn"
        case normNumGroups = "norm_num_groups"
        case normEps = "norm_eps"
        case crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads"
        case dualCrossAttention = "dual_cross_attention"
        case useLinearProjection = "use_linear_projection"
        case classEmbedType = "class_embed_type"
        case numClassEmbeds = "num_class_embeds"
        case upcastAttention = "upcast_attention"
        case resnetTimeScaleShift = "resnet_time_scale_shift"
        case timeEmbeddingType = "time_embedding_type"
        case convInKernel = "conv_in_kernel"
        case convOutKernel = "conv_out_kernel"
        case additionEmbedType = "addition_embed_type"
        case encoderHidDim = "encoder_hid_dim"
    }

    /// diffusers' defaults (the SD 1.x topology with cross-attention width 1280).
    public init() {
        // Decoding an empty object cannot fail: every key has a default.
        self = (try? pythonJSONDecoder().decode(Self.self, from: Data("{}".utf8))) ?? Self.fallback
    }

    private static var fallback: Self { preconditionFailure("UNet2DConditionConfig defaults failed to decode") }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        diffusersVersion = try c.decodeIfPresent(String.self, forKey: .diffusersVersion)
        inChannels = try c.value(.inChannels, 4)
        outChannels = try c.value(.outChannels, 4)
        centerInputSample = try c.value(.centerInputSample, false)
        flipSinToCos = try c.value(.flipSinToCos, true)
        freqShift = try c.value(.freqShift, 0)
        downBlockTypes = try c.value(
            .downBlockTypes, ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        midBlockType =
            c.contains(.midBlockType)
            ? try c.decodeIfPresent(String.self, forKey: .midBlockType) : "UNetMidBlock2DCrossAttn"
        upBlockTypes = try c.value(
            .upBlockTypes, ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        blockOutChannels = try c.value(.blockOutChannels, [320, 640, 1280, 1280])
        let n = downBlockTypes.count
        onlyCrossAttention = try c.perBlock(.onlyCrossAttention, false, count: n)
        layersPerBlock = try c.perBlock(.layersPerBlock, 2, count: n)
        downsamplePadding = try c.value(.downsamplePadding, 1)
        midBlockScaleFactor = try c.value(.midBlockScaleFactor, 1)
        actFn = try c.value(.actFn, "silu")
        normNumGroups = c.contains(.normNumGroups) ? try c.decodeIfPresent(Int.self, forKey: .normNumGroups) : 32
        normEps = try c.value(.normEps, 1e-5)
        crossAttentionDim = try c.perBlock(.crossAttentionDim, 1280, count: n)
        transformerLayersPerBlock = try c.perBlock(.transformerLayersPerBlock, 1, count: n)
        attentionHeadDim = try c.perBlock(.attentionHeadDim, 8, count: n)
        numAttentionHeads = try c.perBlockIfPresent(.numAttentionHeads, Int.self, count: n)
        dualCrossAttention = try c.value(.dualCrossAttention, false)
        useLinearProjection = try c.value(.useLinearProjection, false)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        numClassEmbeds = try c.decodeIfPresent(Int.self, forKey: .numClassEmbeds)
        upcastAttention = try c.value(.upcastAttention, false)
        resnetTimeScaleShift = try c.value(.resnetTimeScaleShift, "default")
        timeEmbeddingType = try c.value(.timeEmbeddingType, "positional")
        convInKernel = try c.value(.convInKernel, 3)
        convOutKernel = try c.value(.convOutKernel, 3)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        encoderHidDim = try c.decodeIfPresent(Int.self, forKey: .encoderHidDim)
        changedSettings = try Self.changedSettings(in: decoder, inert: Self.inertSettings)
    }

    /// Settings diffusers' `UNet2DConditionModel` knows that would change the network in ways not implemented
    /// here, with the value that leaves it unchanged (`null` and absence also do); `validate()` refuses others.
    static let inertSettings: [String: JSONValue] = [
        "attention_type": .string("default"), "resnet_out_scale_factor": .double(1),
        "resnet_skip_time_act": .bool(false), "time_embedding_dim": .null, "time_embedding_act_fn": .null,
        "timestep_post_act": .null, "time_cond_proj_dim": .null, "cross_attention_norm": .null,
        "class_embeddings_concat": .bool(false), "encoder_hid_dim_type": .null,
        "projection_class_embeddings_input_dim": .null, "addition_time_embed_dim": .null,
        "mid_block_only_cross_attention": .null, "reverse_transformer_layers_per_block": .null,
    ]

    public func validate() throws {
        try refuseChanged(changedSettings, inert: Self.inertSettings)
        let known = SupportedConfigValues.self
        try require("act_fn", [actFn], in: known.activations)
        try require("down_block_types", downBlockTypes, in: known.unetDownBlocks)
        try require("up_block_types", upBlockTypes, in: known.unetUpBlocks)
        try require("mid_block_type", [midBlockType], in: known.unetMidBlocks)
        try require("time_embedding_type", [timeEmbeddingType], in: known.timeEmbeddings)
        try require("resnet_time_scale_shift", [resnetTimeScaleShift], in: known.resnetTimeScaleShifts)
        if let t = classEmbedType { throw unsupported("class_embed_type", t, supported: ["null"]) }
        if let t = additionEmbedType { throw unsupported("addition_embed_type", t, supported: ["null"]) }
        if dualCrossAttention { throw unsupported("dual_cross_attention", true, supported: ["false"]) }
        if onlyCrossAttention.contains(true) { throw unsupported("only_cross_attention", true, supported: ["false"]) }
        if convInKernel != 3 { throw unsupported("conv_in_kernel", convInKernel, supported: ["3"]) }
        if convOutKernel != 3 { throw unsupported("conv_out_kernel", convOutKernel, supported: ["3"]) }
        guard !blockOutChannels.isEmpty, downBlockTypes.count == blockOutChannels.count,
            upBlockTypes.count == blockOutChannels.count
        else {
            throw invalid(
                "block_out_channels",
                "\(blockOutChannels.count) channels for \(downBlockTypes.count) down and \(upBlockTypes.count) up blocks"
            )
        }
        guard let groups = normNumGroups, groups > 0 else {
            throw unsupported("norm_num_groups", normNumGroups.map(String.init) ?? "null", supported: ["> 0"])
        }
        for ch in blockOutChannels where ch <= 0 || ch % groups != 0 {
            throw invalid("block_out_channels", "\(ch) channels are not divisible into \(groups) groups")
        }
        for (i, heads) in headsPerBlock.enumerated() where heads <= 0 || blockOutChannels[i] % heads != 0 {
            throw invalid("attention_head_dim", "\(blockOutChannels[i]) channels cannot split into \(heads) heads")
        }
        if layersPerBlock.contains(where: { $0 < 1 }) { throw invalid("layers_per_block", "must be ≥ 1") }
        if transformerLayersPerBlock.contains(where: { $0 < 1 }) {
            throw invalid("transformer_layers_per_block", "must be ≥ 1")
        }
        if inChannels < 1 || outChannels < 1 { throw invalid("in_channels", "channels must be ≥ 1") }
    }
}
