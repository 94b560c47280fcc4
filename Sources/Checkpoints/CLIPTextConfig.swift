import Foundation

/// transformers `CLIPTextConfig` (defaults: those of the current class, ViT-B/32's text tower), read from a
/// text-encoder config (`CLIPTextModelWithProjection`'s `config.json`) or from a composite `CLIPConfig` (the
/// `config.json` of `openai/clip-vit-large-patch14`): then the fields come from `text_config` (overridden by the
/// legacy `text_config_dict`) and `projection_dim` from the top level (default 512), as `CLIPModel` reads them.
public struct CLIPTextConfig: CheckpointConfig, Equatable {
    public var source = "<memory>"
    /// Token vocabulary size (default 49408).
    public var vocabSize: Int
    /// Transformer width (default 512).
    public var hiddenSize: Int
    /// MLP width (default 2048).
    public var intermediateSize: Int
    /// Width of the text projection (default 512).
    public var projectionDim: Int
    /// Encoder layers (default 12).
    public var numHiddenLayers: Int
    /// Attention heads (default 8).
    public var numAttentionHeads: Int
    /// Longest token sequence, and the length texts are padded to (default 77).
    public var maxPositionEmbeddings: Int
    /// MLP activation (default "quick_gelu").
    public var hiddenAct: String
    /// LayerNorm epsilon (default 1e-5).
    public var layerNormEps: Double
    /// Padding token id of the config (default 1; the tokenizer's files decide the padding actually used).
    public var padTokenId: Int
    /// Start-of-text token id (default 49406).
    public var bosTokenId: Int
    /// End-of-text token id (default 49407). Checkpoints written before transformers 4.31 say 2, which makes
    /// the pooled output the position of the highest token id instead (see `CLIPTextTransformer`).
    public var eosTokenId: Int

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case padTokenId = "pad_token_id"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
    }

    /// Whether the JSON was a composite `CLIPConfig` (with `text_config`), not a text tower's own config.
    public var isComposite = false

    public init(from decoder: any Decoder) throws {
        let fields = try TowerFields<CodingKeys>(decoder, tower: "text")
        func field<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T { try fields.field(key, fallback) }
        isComposite = fields.isComposite
        vocabSize = try field(.vocabSize, 49408)
        hiddenSize = try field(.hiddenSize, 512)
        intermediateSize = try field(.intermediateSize, 2048)
        projectionDim = try fields.projectionDim(.projectionDim)
        numHiddenLayers = try field(.numHiddenLayers, 12)
        numAttentionHeads = try field(.numAttentionHeads, 8)
        maxPositionEmbeddings = try field(.maxPositionEmbeddings, 77)
        hiddenAct = try field(.hiddenAct, "quick_gelu")
        layerNormEps = try field(.layerNormEps, 1e-5)
        padTokenId = try field(.padTokenId, 1)
        bosTokenId = try field(.bosTokenId, 49406)
        eosTokenId = try field(.eosTokenId, 49407)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(projectionDim, forKey: .projectionDim)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(padTokenId, forKey: .padTokenId)
        try c.encode(bosTokenId, forKey: .bosTokenId)
        try c.encode(eosTokenId, forKey: .eosTokenId)
    }

    /// The key a field has in the file, for errors (`text_config.hidden_size` in a composite config).
    func keyPath(_ key: String) -> String { isComposite ? "text_config.\(key)" : key }

    public func validate() throws {
        if !SupportedConfigValues.clipActivations.contains(hiddenAct) {
            throw invalid(
                keyPath("hidden_act"),
                "unsupported value \(hiddenAct) (supported: "
                    + SupportedConfigValues.clipActivations.joined(separator: ", ") + ")")
        }
        guard numAttentionHeads > 0, hiddenSize > 0, hiddenSize % numAttentionHeads == 0 else {
            throw invalid(
                keyPath("num_attention_heads"),
                "hidden_size \(hiddenSize) cannot split into \(numAttentionHeads) heads")
        }
        if numHiddenLayers < 1 { throw invalid(keyPath("num_hidden_layers"), "must be ≥ 1, got \(numHiddenLayers)") }
        if vocabSize < 1 { throw invalid(keyPath("vocab_size"), "must be ≥ 1, got \(vocabSize)") }
        if intermediateSize < 1 {
            throw invalid(keyPath("intermediate_size"), "must be ≥ 1, got \(intermediateSize)")
        }
        if projectionDim < 1 { throw invalid("projection_dim", "must be ≥ 1, got \(projectionDim)") }
        if maxPositionEmbeddings < 2 {
            throw invalid(
                keyPath("max_position_embeddings"),
                "must be ≥ 2 (start and end of text), got \(maxPositionEmbeddings)")
        }
        if !(layerNormEps > 0) { throw invalid(keyPath("layer_norm_eps"), "must be > 0, got \(layerNormEps)") }
    }
}
