import Checkpoints
import Tensors

/// diffusers `Attention` as used inside `BasicTransformerBlock`: `to_q`/`to_k`/`to_v` without bias,
/// `to_out.0` with bias, scaled dot-product attention with `heads` heads (scale `1/√head_dim`).
/// `upcast_attention` changes nothing in float32.
struct TransformerAttention {
    let toQ, toK, toV, toOut: Linear
    let heads: Int

    init(_ w: WeightBinder, queryDim: Int, contextDim: Int, heads: Int) throws {
        toQ = try Linear(w.scoped("to_q"), inFeatures: queryDim, outFeatures: queryDim, bias: false)
        toK = try Linear(w.scoped("to_k"), inFeatures: contextDim, outFeatures: queryDim, bias: false)
        toV = try Linear(w.scoped("to_v"), inFeatures: contextDim, outFeatures: queryDim, bias: false)
        toOut = try Linear(w.scoped("to_out.0"), inFeatures: queryDim, outFeatures: queryDim)
        self.heads = heads
    }

    /// `x` `[B, L, dim]`, `context` `[B, Lc, contextDim]` (nil: self-attention). Result `[B, L, dim]`, or
    /// `[B, 1, dim]` — to be broadcast over the queries — when the context is a single token: the softmax
    /// over one key is exactly 1, so every query's output is `to_out(to_v(context))`.
    /// See docs/algorithms.md#single-token-cross-attention.
    func callAsFunction(_ x: Tensor, context: Tensor? = nil) throws -> Tensor {
        let ctx = context ?? x
        if ctx.shape[1] == 1 { return try toOut(toV(ctx)) }  // [B, 1, dim]
        let o = try attention(toQ(x), toK(ctx), toV(ctx), heads: heads)  // [B, L, dim]
        return try toOut(o)
    }
}

/// diffusers `FeedForward` with `activation_fn="geglu"`: `net.2(geglu(net.0.proj(x)))`, inner width 4·dim.
struct GEGLUFeedForward {
    let proj, out: Linear

    init(_ w: WeightBinder, dim: Int) throws {
        let inner = 4 * dim
        proj = try Linear(w.scoped("net.0.proj"), inFeatures: dim, outFeatures: 2 * inner)
        out = try Linear(w.scoped("net.2"), inFeatures: inner, outFeatures: dim)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try out(geglu(proj(x)))  // [B, L, 2·inner] → [B, L, inner] → [B, L, dim]
    }
}

/// diffusers `BasicTransformerBlock` (`norm_type="layer_norm"`, LayerNorm eps 1e-5):
/// `x += attn1(norm1 x)`, `x += attn2(norm2 x, context)`, `x += ff(norm3 x)`.
struct BasicTransformerBlock {
    let norm1, norm2, norm3: LayerNorm
    let attn1, attn2: TransformerAttention
    let ff: GEGLUFeedForward

    init(_ w: WeightBinder, dim: Int, contextDim: Int, heads: Int) throws {
        norm1 = try LayerNorm(w.scoped("norm1"), size: dim, eps: 1e-5)
        attn1 = try TransformerAttention(w.scoped("attn1"), queryDim: dim, contextDim: dim, heads: heads)
        norm2 = try LayerNorm(w.scoped("norm2"), size: dim, eps: 1e-5)
        attn2 = try TransformerAttention(w.scoped("attn2"), queryDim: dim, contextDim: contextDim, heads: heads)
        norm3 = try LayerNorm(w.scoped("norm3"), size: dim, eps: 1e-5)
        ff = try GEGLUFeedForward(w.scoped("ff"), dim: dim)
    }

    /// `x` `[B, L, dim]`, `context` `[B, Lc, contextDim]`.
    func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        var h = try residualAdd(x, attn1(norm1(x)))  // [B, L, dim]
        h = try add(h, attn2(norm2(h), context: context))  // broadcasts a [B, 1, dim] shortcut
        return try residualAdd(h, ff(norm3(h)))
    }
}

/// diffusers `Transformer2DModel` for continuous input, as the UNet's attention blocks use it:
/// GroupNorm (eps 1e-6) → `proj_in` → transformer blocks over the `H·W` tokens → `proj_out` → + input.
/// `proj_in`/`proj_out` are 1×1 convolutions, or linear layers with `use_linear_projection`; both are
/// applied as linear maps over the channel axis of the tokens (the same arithmetic).
struct Transformer2DModel {
    let norm: GroupNorm
    let projIn, projOut: Linear
    let blocks: [BasicTransformerBlock]

    init(
        _ w: WeightBinder, channels: Int, heads: Int, layers: Int, contextDim: Int, groups: Int,
        linearProjection: Bool
    ) throws {
        norm = try GroupNorm(w.scoped("norm"), groups: groups, channels: channels, eps: 1e-6)
        func projection(_ key: String) throws -> Linear {
            linearProjection
                ? try Linear(w.scoped(key), inFeatures: channels, outFeatures: channels)
                : try Conv2d(w.scoped(key), inChannels: channels, outChannels: channels, kernel: 1).asLinear()
        }
        projIn = try projection("proj_in")
        blocks = try (0..<layers).map {
            try BasicTransformerBlock(
                w.scoped("transformer_blocks.\($0)"), dim: channels, contextDim: contextDim, heads: heads)
        }
        projOut = try projection("proj_out")
    }

    /// `x` `[B, C, H, W]`, `context` `[B, Lc, contextDim]`.
    func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        var t = try projIn(tokens(norm(x)))  // [B, HW, C]
        for block in blocks { t = try block(t, context: context) }
        t = try projOut(t)
        return try residualAdd(featureMap(t, height: h, width: w), x)  // [B, C, H, W]
    }
}
