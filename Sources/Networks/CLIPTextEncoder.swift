import Checkpoints
import Foundation
import Tensors

/// Multi-head attention with a causal mask: `q`, `k`, `v` `[B, L, H·D]` (heads side by side), each head
/// `softmax(q_h·k_hᵀ/√D + mask)·v_h` where the mask hides keys after the query. Result `[B, L, H·D]`.
func causalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int) throws -> Tensor {
    guard q.rank == 3, q.shape == k.shape, q.shape == v.shape, heads > 0, q.shape[2] % heads == 0 else {
        throw TensorError(
            "causalAttention", "q, k, v must be equal [B, L, H·D]; got \(q.shape), \(k.shape), \(v.shape)")
    }
    let (b, l, width) = (q.shape[0], q.shape[1], q.shape[2])
    let d = width / heads
    func split(_ x: Tensor) throws -> Tensor { try permute(x.reshaped([b, l, heads, d]), [0, 2, 1, 3]) }
    var scores = try matmul(split(q), split(k), transposeB: true)  // [B, H, L, L]
    let scale = 1 / Float(d).squareRoot()
    scores.withUnsafeMutableBufferPointer { p in
        for row in 0..<(b * heads * l) {
            let i = row % l  // the query's position: keys 0...i are visible
            let base = row * l
            var top = -Float.infinity
            for j in 0...i {
                p[base + j] *= scale
                top = max(top, p[base + j])
            }
            var sum: Float = 0
            for j in 0...i {
                let e = expf(p[base + j] - top)
                p[base + j] = e
                sum += e
            }
            for j in 0...i { p[base + j] /= sum }
            for j in (i + 1)..<l { p[base + j] = 0 }
        }
    }
    let out = try matmul(scores, split(v))  // [B, H, L, D]
    return try permute(out, [0, 2, 1, 3]).reshaped([b, l, width])
}

/// Output of the CLIP text tower.
public struct CLIPTextOutput: Sendable {
    /// `[B, L, hidden]` after the final layer norm.
    public let lastHiddenState: Tensor
    /// The final hidden state at each sequence's end-of-text position: `[B, hidden]`.
    public let pooled: Tensor
    /// The pooled position of each sequence.
    public let positions: [Int]
}

/// transformers `CLIPTextTransformer` (the `text_model` of `CLIPTextModel`): token and position embeddings,
/// pre-LN encoder layers with a causal mask, `final_layer_norm`, and the pooled output at the end-of-text token.
/// Sized entirely by `config`.
public struct CLIPTextTransformer: Sendable {
    public let config: CLIPTextConfig
    let tokenEmbedding: Tensor  // [vocab, hidden]
    let positionEmbedding: Tensor  // [max positions, hidden]
    let finalNorm: LayerNorm
    let layers: [CLIPEncoderLayer]

    /// Binds the tower's weights under `w` (keys `embeddings.*`, `encoder.layers.N.*`, `final_layer_norm.*`).
    public init(config: CLIPTextConfig, weights w: WeightBinder) throws {
        self.config = config
        let act = try HiddenActivation(configValue: config.hiddenAct, file: config.source)
        let hidden = config.hiddenSize
        tokenEmbedding = try w.take("embeddings.token_embedding.weight", shape: [config.vocabSize, hidden])
        positionEmbedding = try w.take(
            "embeddings.position_embedding.weight", shape: [config.maxPositionEmbeddings, hidden])
        w.ignore("embeddings.position_ids")  // an int64 buffer checkpoints before transformers 4.31 carry
        finalNorm = try LayerNorm(w.scoped("final_layer_norm"), size: hidden, eps: Float(config.layerNormEps))
        layers = try (0..<config.numHiddenLayers).map {
            try CLIPEncoderLayer(
                w.scoped("encoder.layers.\($0)"), hidden: config.hiddenSize, intermediate: config.intermediateSize,
                heads: config.numAttentionHeads, eps: config.layerNormEps, act: act, causal: true)
        }
    }

    /// The position pooled for `ids`, as transformers picks it: the first `eos_token_id` when the config's
    /// `eos_token_id` is not 2, else (configs written before transformers 4.31) the first highest id.
    public func pooledPosition(_ ids: [Int]) -> Int {
        if config.eosTokenId != 2 {
            return ids.firstIndex(of: config.eosTokenId) ?? 0  // torch's argmax of all-zero flags: 0
        }
        var best = 0
        for (i, id) in ids.enumerated() where id > ids[best] { best = i }
        return best
    }

    /// Runs the tower on token ids, all sequences of one length `L ≤ max_position_embeddings`.
    public func callAsFunction(_ ids: [[Int]]) throws -> CLIPTextOutput {
        let hidden = config.hiddenSize
        guard let l = ids.first?.count, l > 0, ids.allSatisfy({ $0.count == l }) else {
            throw TensorError("CLIPTextTransformer", "expected a non-empty batch of equally long token sequences")
        }
        guard l <= config.maxPositionEmbeddings else {
            throw TensorError(
                "CLIPTextTransformer",
                "sequence length \(l) exceeds max_position_embeddings \(config.maxPositionEmbeddings)"
            )
        }
        if let bad = ids.joined().first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw TensorError(
                "CLIPTextTransformer", "token id \(bad) is outside the vocabulary (size \(config.vocabSize))")
        }
        let b = ids.count
        var x = Tensor(zeros: [b, l, hidden])
        tokenEmbedding.withUnsafeBufferPointer { tok in
            positionEmbedding.withUnsafeBufferPointer { pos in
                x.withUnsafeMutableBufferPointer { out in
                    for (s, row) in ids.enumerated() {
                        for (t, id) in row.enumerated() {
                            let o = (s * l + t) * hidden
                            for c in 0..<hidden { out[o + c] = tok[id * hidden + c] + pos[t * hidden + c] }
                        }
                    }
                }
            }
        }
        for layer in layers { x = try layer(x) }
        x = try finalNorm(x)
        let positions = ids.map(pooledPosition)
        var pooled = Tensor(zeros: [b, hidden])
        x.withUnsafeBufferPointer { all in
            pooled.withUnsafeMutableBufferPointer { out in
                for (s, p) in positions.enumerated() {
                    for c in 0..<hidden { out[s * hidden + c] = all[(s * l + p) * hidden + c] }
                }
            }
        }
        return CLIPTextOutput(lastHiddenState: x, pooled: pooled, positions: positions)
    }
}

/// transformers `CLIPTextModelWithProjection`: the text tower plus `text_projection` (no bias), giving
/// `text_embeds` (not L2-normalized) in the space CLIP shares with `CLIPVisionModelWithProjection`'s
/// `image_embeds`.
public struct CLIPTextEncoder: Sendable {
    public let tower: CLIPTextTransformer
    let projection: Linear

    /// Binds `text_model.*` and `text_projection.weight` from `w`; every other key is an error at `finish()`.
    public init(config: CLIPTextConfig, weights w: WeightBinder) throws {
        tower = try CLIPTextTransformer(config: config, weights: w.scoped("text_model"))
        projection = try Linear(
            w.scoped("text_projection"), inFeatures: config.hiddenSize, outFeatures: config.projectionDim, bias: false)
    }

    public var config: CLIPTextConfig { tower.config }

    /// Text embeddings `[B, projection_dim]` and the tower's output.
    public func callAsFunction(_ ids: [[Int]]) throws -> (textEmbeds: Tensor, output: CLIPTextOutput) {
        let out = try tower(ids)
        return (try projection(out.pooled), out)
    }
}

/// A CLIP text encoder read from disk with its tokenizer.
public struct LoadedCLIPTextEncoder: Sendable {
    public let encoder: CLIPTextEncoder
    public let tokenizer: CLIPTokenizer
    public var config: CLIPTextConfig { encoder.config }
    /// The folder holding `config.json` and the weights.
    public let directory: URL
    /// The weights file (`model.safetensors` or `pytorch_model.bin`).
    public let weightsURL: URL

    /// The projected embeddings of `texts`, one row each in order: `[N, projection_dim]` (not normalized).
    /// Texts are encoded `batch` at a time.
    public func embed(_ texts: [String], batch: Int = 16) throws -> Tensor {
        var rows: [Tensor] = []
        for start in stride(from: 0, to: texts.count, by: max(batch, 1)) {
            let ids = texts[start..<min(start + max(batch, 1), texts.count)].map(tokenizer.encode)
            rows.append(try encoder(ids).textEmbeds)
        }
        guard !rows.isEmpty else { return Tensor(zeros: [0, config.projectionDim]) }
        return try concat(rows, axis: 0)
    }
}

extension CLIPTextEncoder {
    /// Loads a CLIP model folder (`config.json` with `text_config`, weights with `text_model.*`,
    /// `text_projection.weight` and the vision tower's keys, which are skipped) or a text-encoder folder
    /// (`CLIPTextModelWithProjection`), and the tokenizer beside it (see `CLIPTokenizer.folder(for:)`), which
    /// pads to `max_position_embeddings`. Weights are bound strictly: missing, unused or mis-shaped text tensors
    /// are errors naming the file and key.
    public static func load(directory: URL) throws -> LoadedCLIPTextEncoder {
        let configURL = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw CheckpointError(file: directory.path, "not a CLIP model or text-encoder folder (no config.json)")
        }
        let config = try CLIPTextConfig.load(url: configURL)
        let weightsURL = try DiffusersPipelineFolder.weightsURL(in: directory)
        let weights = WeightBinder(try loadTensorArchive(url: weightsURL))
        guard weights.contains("text_projection.weight") else {
            throw CheckpointError(
                file: weightsURL.path, key: "text_projection.weight",
                "missing tensor: a text encoder without a projection (CLIPTextModel) has no embedding in the space "
                    + "CLIP shares with images; use a CLIPModel or CLIPTextModelWithProjection checkpoint")
        }
        let encoder = try CLIPTextEncoder(config: config, weights: weights)
        // A full CLIPModel also holds the vision tower, its projection and the logit scale.
        weights.ignore(prefix: "vision_model")
        weights.ignore("visual_projection.weight")
        weights.ignore("logit_scale")
        try weights.finish()
        let tokenizer = try CLIPTokenizer.load(directory: directory, maxLength: config.maxPositionEmbeddings)
        return LoadedCLIPTextEncoder(
            encoder: encoder, tokenizer: tokenizer, directory: directory, weightsURL: weightsURL)
    }
}
