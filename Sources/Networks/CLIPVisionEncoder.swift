import Checkpoints
import Tensors

/// The activation between a transformer MLP's two projections, from a config's `hidden_act`.
public enum HiddenActivation: String, Sendable {
    case quickGELU = "quick_gelu"
    case gelu
    case geluTanh = "gelu_pytorch_tanh"
    case geluNew = "gelu_new"
    case silu

    /// Reads `hidden_act`; an unknown name is an error naming the key.
    public init(configValue: String, file: String) throws {
        guard let act = HiddenActivation(rawValue: configValue) else {
            throw CheckpointError(
                file: file, key: "hidden_act",
                "unsupported value \(configValue) (supported: quick_gelu, gelu, gelu_pytorch_tanh, gelu_new, silu)")
        }
        self = act
    }

    /// The `scale` of `x·sigmoid(scale·x)` when the activation is one (fused into the preceding GEMM).
    var sigmoidGateScale: Float? {
        switch self {
        case .quickGELU: 1.702
        case .silu: 1
        case .gelu, .geluTanh, .geluNew: nil
        }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .quickGELU: return Tensors.quickGELU(x)
        case .gelu: return Tensors.gelu(x)
        case .geluTanh, .geluNew: return Tensors.gelu(x, approximation: .tanh)
        case .silu: return Tensors.silu(x)
        }
    }
}

/// transformers `CLIPAttention`: multi-head self-attention with biased q/k/v/out projections.
struct CLIPAttention {
    let q, k, v, out: Linear
    let heads: Int

    init(_ w: WeightBinder, hidden: Int, heads: Int) throws {
        q = try Linear(w.scoped("q_proj"), inFeatures: hidden, outFeatures: hidden)
        k = try Linear(w.scoped("k_proj"), inFeatures: hidden, outFeatures: hidden)
        v = try Linear(w.scoped("v_proj"), inFeatures: hidden, outFeatures: hidden)
        out = try Linear(w.scoped("out_proj"), inFeatures: hidden, outFeatures: hidden)
        self.heads = heads
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let o = try attention(q(x), k(x), v(x), heads: heads)  // [B, L, hidden]
        return try out(o)
    }
}

/// transformers `CLIPEncoderLayer` (pre-LN): `x += attn(LN1 x)`, then `x += fc2(act(fc1(LN2 x)))`. The text
/// tower's layers are the same with causal self-attention (a token sees itself and the tokens before it).
struct CLIPEncoderLayer {
    let norm1, norm2: LayerNorm
    let attn: CLIPAttention
    let fc1, fc2: Linear
    let act: HiddenActivation
    let causal: Bool

    init(
        _ w: WeightBinder, hidden: Int, intermediate: Int, heads: Int, eps: Double, act: HiddenActivation,
        causal: Bool = false
    ) throws {
        norm1 = try LayerNorm(w.scoped("layer_norm1"), size: hidden, eps: Float(eps))
        norm2 = try LayerNorm(w.scoped("layer_norm2"), size: hidden, eps: Float(eps))
        attn = try CLIPAttention(w.scoped("self_attn"), hidden: hidden, heads: heads)
        fc1 = try Linear(w.scoped("mlp.fc1"), inFeatures: hidden, outFeatures: intermediate)
        fc2 = try Linear(w.scoped("mlp.fc2"), inFeatures: intermediate, outFeatures: hidden)
        self.act = act
        self.causal = causal
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let n = try norm1(x)
        let (q, k, v) = (try attn.q(n), try attn.k(n), try attn.v(n))
        let o = causal ? try causalAttention(q, k, v, heads: attn.heads) : try attention(q, k, v, heads: attn.heads)
        return try mlp(attn.out(o, residual: x))  // x + attention, [B, L, hidden]
    }

    /// The layer's output for the first (class) token only, `[B, 1, hidden]`: its query attends to every token's
    /// key and value, and the rest of the layer runs on that one row (for a last layer whose only output used is
    /// the pooled class token).
    func firstToken(_ x: Tensor) throws -> Tensor {
        precondition(!causal, "the class-token shortcut is for the vision tower")
        let n = try norm1(x)
        let first = try tokenSlice(n, 0..<1)
        let o = try attention(attn.q(first), attn.k(n), attn.v(n), heads: attn.heads)
        // The reference computes the other rows too: counted, so the effective GFLOP/s stays comparable.
        let (b, l, hidden) = (x.shape[0], x.shape[1], x.shape[2])
        let inner = fc1.outFeatures
        FLOPCounter.add(2 * b * (l - 1) * (2 * hidden * hidden + 2 * hidden * inner + 2 * l * hidden))
        return try mlp(attn.out(o, residual: tokenSlice(x, 0..<1)))
    }

    /// `h + fc2(act(fc1(LN2 h)))`, the activation and the residual add fused into the GEMMs when they can be.
    private func mlp(_ h: Tensor) throws -> Tensor {
        let inner =
            if let scale = act.sigmoidGateScale { try fc1(norm2(h), gate: scale) } else { try act(fc1(norm2(h))) }
        return try fc2(inner, residual: h)
    }
}

/// Output of the CLIP vision tower.
public struct CLIPVisionOutput: Sendable {
    /// `post_layernorm` of the class token: `[B, hidden]`.
    public let pooled: Tensor
}

/// transformers `CLIPVisionTransformer` (the `vision_model` of `CLIPVisionModel`): patch embedding without
/// bias, class and position embeddings, `pre_layrnorm`, pre-LN encoder layers, `post_layernorm` on the class
/// token. Sized entirely by `config`.
public struct CLIPVisionTransformer: Sendable {
    public let config: CLIPVisionConfig
    let patchEmbedding: Tensor  // [hidden, C, p, p]
    let classEmbedding: Tensor  // [hidden]
    let positionEmbedding: Tensor  // [1 + patches, hidden]
    let preNorm, postNorm: LayerNorm
    let layers: [CLIPEncoderLayer]

    /// Binds the tower's weights under `w` (keys `embeddings.*`, `pre_layrnorm.*`, `encoder.layers.N.*`,
    /// `post_layernorm.*`).
    public init(config: CLIPVisionConfig, weights w: WeightBinder) throws {
        self.config = config
        let act = try HiddenActivation(configValue: config.hiddenAct, file: config.source)
        let (hidden, p, g) = (config.hiddenSize, config.patchSize, config.imageSize / config.patchSize)
        patchEmbedding = try w.take("embeddings.patch_embedding.weight", shape: [hidden, config.numChannels, p, p])
        classEmbedding = try w.take("embeddings.class_embedding", shape: [hidden])
        positionEmbedding = try w.take("embeddings.position_embedding.weight", shape: [g * g + 1, hidden])
        w.ignore("embeddings.position_ids")  // an int64 buffer some checkpoints carry
        preNorm = try LayerNorm(w.scoped("pre_layrnorm"), size: hidden, eps: Float(config.layerNormEps))
        postNorm = try LayerNorm(w.scoped("post_layernorm"), size: hidden, eps: Float(config.layerNormEps))
        layers = try (0..<config.numHiddenLayers).map {
            try CLIPEncoderLayer(
                w.scoped("encoder.layers.\($0)"), hidden: config.hiddenSize, intermediate: config.intermediateSize,
                heads: config.numAttentionHeads, eps: config.layerNormEps, act: act)
        }
    }

    /// Runs the tower on normalized pixels `[B, C, image_size, image_size]`. Only the class token's row of the
    /// last layer is computed: the pooled output is all that is read from it.
    public func callAsFunction(_ pixels: Tensor) throws -> CLIPVisionOutput {
        var x = try embeddings(pixels)
        for layer in layers.dropLast() { x = try layer(x) }
        x = try layers.last.map { try $0.firstToken(x) } ?? tokenSlice(x, 0..<1)  // [B, 1, hidden]
        return CLIPVisionOutput(pooled: try postNorm(x.reshaped([x.shape[0], config.hiddenSize])))
    }

    /// transformers' `last_hidden_state`, `[B, 1 + patches, hidden]`: every token through every layer.
    public func lastHiddenState(_ pixels: Tensor) throws -> Tensor {
        var x = try embeddings(pixels)
        for layer in layers { x = try layer(x) }
        return x
    }

    /// Patch, class and position embeddings and `pre_layrnorm`: the first layer's input `[B, 1 + patches, hidden]`.
    private func embeddings(_ pixels: Tensor) throws -> Tensor {
        let (hidden, s) = (config.hiddenSize, config.imageSize)
        guard pixels.rank == 4, pixels.shape[1] == config.numChannels, pixels.shape[2] == s, pixels.shape[3] == s
        else {
            throw TensorError(
                "CLIPVisionTransformer", "expected pixels [B, \(config.numChannels), \(s), \(s)], got \(pixels.shape)")
        }
        let b = pixels.shape[0]
        let p = config.patchSize
        let patches = try conv2d(pixels, weight: patchEmbedding, stride: (p, p))  // [B, hidden, g, g]
        let tokens = try permute(patches.reshaped([b, hidden, -1]), [0, 2, 1])  // [B, g², hidden]
        let cls = try classEmbedding.reshaped([1, 1, hidden])
        let clsBatch = try concat([Tensor](repeating: cls, count: b), axis: 0)  // [B, 1, hidden]
        let x = try concat([clsBatch, tokens], axis: 1)  // [B, 1+g², hidden]
        return try preNorm(add(x, positionEmbedding))
    }
}

/// `x[:, range, :]` of `[B, L, D]`.
func tokenSlice(_ x: Tensor, _ range: Range<Int>) throws -> Tensor {
    guard x.rank == 3, range.lowerBound >= 0, range.upperBound <= x.shape[1] else {
        throw TensorError("tokenSlice", "tokens \(range) of \(x.shape)")
    }
    let (b, l, d) = (x.shape[0], x.shape[1], x.shape[2])
    let (start, width) = (range.lowerBound * d, range.count * d)
    var out = Tensor(zeros: [b, range.count, d])
    out.withUnsafeMutableBufferPointer { po in
        x.withUnsafeBufferPointer { px in
            for i in 0..<b where width > 0 {
                (po.baseAddress! + i * width).update(from: px.baseAddress! + i * l * d + start, count: width)
            }
        }
    }
    return out
}

/// transformers `CLIPVisionModelWithProjection`: the vision tower plus `visual_projection` (no bias), giving
/// `image_embeds` (not L2-normalized), as the image-variations pipeline's `image_encoder`.
public struct CLIPVisionEncoder: Sendable {
    public let tower: CLIPVisionTransformer
    let projection: Linear

    /// Binds `vision_model.*` and `visual_projection.weight` from `w`; every other key is an error at `finish()`.
    public init(config: CLIPVisionConfig, weights w: WeightBinder) throws {
        tower = try CLIPVisionTransformer(config: config, weights: w.scoped("vision_model"))
        projection = try Linear(
            w.scoped("visual_projection"), inFeatures: config.hiddenSize, outFeatures: config.projectionDim,
            bias: false)
    }

    /// How the weights are held (float32 or float16, mapped or copied).
    public var weightSummary: WeightSummary { summarizeWeights(self) }

    /// Image embeddings `[B, projection_dim]` and the pooled output `[B, hidden]`.
    public func callAsFunction(_ pixels: Tensor) throws -> (imageEmbeds: Tensor, pooled: Tensor) {
        let out = try tower(pixels)
        return (try projection(out.pooled), out.pooled)
    }
}
