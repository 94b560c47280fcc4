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
        let a =
            causal ? try attn.out(causalAttention(attn.q(n), attn.k(n), attn.v(n), heads: attn.heads)) : try attn(n)
        let h = try add(x, a)  // [B, L, hidden]
        return try add(h, fc2(act(fc1(norm2(h)))))
    }
}

/// Output of the CLIP vision tower.
public struct CLIPVisionOutput: Sendable {
    /// `[B, 1 + patches, hidden]` after the last encoder layer.
    public let lastHiddenState: Tensor
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

    /// Runs the tower on normalized pixels `[B, C, image_size, image_size]`.
    public func callAsFunction(_ pixels: Tensor) throws -> CLIPVisionOutput {
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
        var x = try concat([clsBatch, tokens], axis: 1)  // [B, 1+g², hidden]
        x = try add(x, positionEmbedding)
        x = try preNorm(x)
        for layer in layers { x = try layer(x) }
        let first = try firstToken(x)  // [B, hidden]
        return CLIPVisionOutput(lastHiddenState: x, pooled: try postNorm(first))
    }

    /// `x[:, 0]` of `[B, L, D]`.
    private func firstToken(_ x: Tensor) throws -> Tensor {
        let (b, l, d) = (x.shape[0], x.shape[1], x.shape[2])
        let all = x.scalars
        var values = [Float](repeating: 0, count: b * d)
        for i in 0..<b { values[(i * d)..<((i + 1) * d)] = all[(i * l * d)..<(i * l * d + d)] }
        return try Tensor(shape: [b, d], values: values)
    }
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
