import Foundation

/// transformers `CLIPVisionConfig` (defaults: ViT-B/32), read from a vision config (`image_encoder/config.json`)
/// or from a composite `CLIPConfig` (`safety_checker/config.json`): then the fields come from `vision_config`
/// (overridden by the legacy `vision_config_dict`) and `projection_dim` from the top level (default 512).
public struct CLIPVisionConfig: CheckpointConfig, Equatable {
    public var source = "<memory>"
    /// Transformer width (default 768).
    public var hiddenSize: Int
    /// MLP width (default 3072).
    public var intermediateSize: Int
    /// Width of the visual projection (default 512).
    public var projectionDim: Int
    /// Encoder layers (default 12).
    public var numHiddenLayers: Int
    /// Attention heads (default 12).
    public var numAttentionHeads: Int
    /// Image channels (default 3).
    public var numChannels: Int
    /// Input resolution (default 224).
    public var imageSize: Int
    /// Patch size (default 32).
    public var patchSize: Int
    /// MLP activation (default "quick_gelu").
    public var hiddenAct: String
    /// LayerNorm epsilon (default 1e-5).
    public var layerNormEps: Double

    /// Number of patches plus the class token.
    public var sequenceLength: Int { (imageSize / max(patchSize, 1)) * (imageSize / max(patchSize, 1)) + 1 }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numChannels = "num_channels"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
    }

    public init(from decoder: any Decoder) throws {
        let fields = try TowerFields<CodingKeys>(decoder, tower: "vision")
        func field<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T { try fields.field(key, fallback) }
        hiddenSize = try field(.hiddenSize, 768)
        intermediateSize = try field(.intermediateSize, 3072)
        projectionDim = try fields.projectionDim(.projectionDim)
        numHiddenLayers = try field(.numHiddenLayers, 12)
        numAttentionHeads = try field(.numAttentionHeads, 12)
        numChannels = try field(.numChannels, 3)
        imageSize = try field(.imageSize, 224)
        patchSize = try field(.patchSize, 32)
        hiddenAct = try field(.hiddenAct, "quick_gelu")
        layerNormEps = try field(.layerNormEps, 1e-5)
    }

    public func validate() throws {
        let known = SupportedConfigValues.self
        try require("hidden_act", [hiddenAct], in: known.clipActivations)
        guard numAttentionHeads > 0, hiddenSize > 0, hiddenSize % numAttentionHeads == 0 else {
            throw invalid(
                "num_attention_heads", "hidden_size \(hiddenSize) cannot split into \(numAttentionHeads) heads")
        }
        guard patchSize > 0, imageSize > 0, imageSize % patchSize == 0 else {
            throw invalid("patch_size", "image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
        if numHiddenLayers < 1 { throw invalid("num_hidden_layers", "must be ≥ 1") }
        if projectionDim < 1 || intermediateSize < 1 { throw invalid("projection_dim", "widths must be ≥ 1") }
    }
}
