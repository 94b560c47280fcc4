import Checkpoints
import Tensors

/// Layers shared by the networks: thin wrappers that bind a checkpoint's tensors by key and call one kernel.

/// `nn.Linear`: `x · Wᵀ + b`. The weight is in the binder's precision (float16 is widened per call), the bias
/// float32.
struct Linear {
    let weight: WeightTensor  // [out, in]
    let bias: Tensor?

    init(_ w: WeightBinder, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try w.takeWeight("weight", shape: [outFeatures, inFeatures], packedFor: .right)
        self.bias = bias ? try w.take("bias", shape: [outFeatures]) : nil
    }

    /// A linear layer over given tensors (e.g. a 1×1 convolution's weight viewed as `[out, in]`); a float32
    /// weight is packed for our GEMM.
    init(weight: WeightTensor, bias: Tensor?) {
        self.weight = weight.packed(for: .right)
        self.bias = bias
    }

    var outFeatures: Int { weight.shape[0] }

    /// `x · Wᵀ + b`, plus `residual` when given, then gated by `x·sigmoid(gate·x)` when `gate` is given — in the
    /// GEMM's store for a packed weight.
    func callAsFunction(_ x: Tensor, gate: Float? = nil, residual: Tensor? = nil) throws -> Tensor {
        if let y = try weight.withPacked(
            for: .right, { try linear(x, packed: $0, bias: bias, gate: gate, residual: residual) })
        {
            return y
        }
        return try weight.withFloat32 { try linear(x, weight: $0, bias: bias, gate: gate, residual: residual) }
    }
}

/// `nn.LayerNorm` over the last axis.
struct LayerNorm {
    let weight: Tensor
    let bias: Tensor
    let eps: Float

    init(_ w: WeightBinder, size: Int, eps: Float) throws {
        weight = try w.take("weight", shape: [size])
        bias = try w.take("bias", shape: [size])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// `nn.Conv2d` with square kernel, symmetric zero padding, groups 1. The weight is in the binder's precision
/// (float16 is widened per call), the bias float32.
struct Conv2d {
    let weight: WeightTensor  // [out, in, k, k]
    let bias: Tensor?
    let stride: Int
    let padding: Int

    init(
        _ w: WeightBinder, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true
    ) throws {
        weight = try w.takeWeight("weight", shape: [outChannels, inChannels, kernel, kernel], packedFor: .left)
        self.bias = bias ? try w.take("bias", shape: [outChannels]) : nil
        self.stride = stride
        self.padding = padding
    }

    /// The layer as a `Linear` over the channel axis (only for a 1×1 kernel): `[out, in]`.
    func asLinear() throws -> Linear {
        Linear(weight: try weight.reshaped([weight.shape[0], weight.shape[1]]), bias: bias)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try self(x, bias: bias) }

    /// The convolution with `bias` in place of the layer's own.
    func callAsFunction(_ x: Tensor, bias: Tensor?) throws -> Tensor {
        let packed = try weight.withPacked(for: .left) {
            try convolution(x, packed: $0, bias: bias, stride: (stride, stride), padding: (padding, padding))
        }
        if let packed { return packed }
        return try weight.withFloat32 {
            try convolution(x, weight: $0, bias: bias, stride: (stride, stride), padding: (padding, padding))
        }
    }
}

/// `nn.GroupNorm` (affine), optionally followed by SiLU in the same pass.
struct GroupNorm {
    let weight: Tensor
    let bias: Tensor
    let groups: Int
    let eps: Float

    init(_ w: WeightBinder, groups: Int, channels: Int, eps: Float) throws {
        guard groups > 0, channels % groups == 0 else {
            throw CheckpointError(
                file: "<network>", key: w.prefix, "\(channels) channels cannot be split into \(groups) groups")
        }
        weight = try w.take("weight", shape: [channels])
        bias = try w.take("bias", shape: [channels])
        self.groups = groups
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor, silu: Bool = false) throws -> Tensor {
        silu
            ? try groupNormSiLU(x, groups: groups, weight: weight, bias: bias, eps: eps)
            : try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// `[B, C, H, W]` → `[B, H·W, C]` (tokens for attention).
func tokens(_ x: Tensor) throws -> Tensor {
    let (b, c) = (x.shape[0], x.shape[1])
    return try transposeLastTwo(x.reshaped([b, c, -1]))
}

/// `[B, H·W, C]` → `[B, C, H, W]`.
func featureMap(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
    let (b, c) = (x.shape[0], x.shape[2])
    return try transposeLastTwo(x).reshaped([b, c, height, width])
}

/// How a network holds its weights: elements by precision, and how many of the float16 ones are borrowed from a
/// memory-mapped checkpoint rather than copied.
public struct WeightSummary: Sendable, Equatable {
    /// Elements held as float32 (norms, biases, embeddings; every weight of a float32 network).
    public var float32Elements = 0
    /// Elements held as float16 (the linear and convolution weights of a float16 network).
    public var float16Elements = 0
    /// Of `float16Elements`, those read in place from a memory-mapped file.
    public var borrowedFloat16Elements = 0

    /// Bytes the weights occupy (mapped or allocated).
    public var bytes: Int { 4 * float32Elements + 2 * float16Elements }

    static func + (a: WeightSummary, b: WeightSummary) -> WeightSummary {
        WeightSummary(
            float32Elements: a.float32Elements + b.float32Elements,
            float16Elements: a.float16Elements + b.float16Elements,
            borrowedFloat16Elements: a.borrowedFloat16Elements + b.borrowedFloat16Elements)
    }
}

/// The `WeightSummary` of a network value (its `Tensor`s and `WeightTensor`s, found by reflection).
func summarizeWeights(_ value: Any) -> WeightSummary {
    if let t = value as? Tensor { return WeightSummary(float32Elements: t.count) }
    if let w = value as? WeightTensor {
        switch w {
        case .float32(let t): return WeightSummary(float32Elements: t.count)
        case .float16(let h):
            return WeightSummary(float16Elements: h.count, borrowedFloat16Elements: h.storage.isBorrowed ? h.count : 0)
        case .packed(let p): return WeightSummary(float32Elements: p.count)
        }
    }
    return Mirror(reflecting: value).children.reduce(WeightSummary()) { $0 + summarizeWeights($1.value) }
}

/// Number of weight elements held by a network value (its `Tensor`s and `WeightTensor`s, found by reflection).
func countParameters(_ value: Any) -> Int {
    if let t = value as? Tensor { return t.count }
    if let w = value as? WeightTensor { return w.count }
    return Mirror(reflecting: value).children.reduce(0) { $0 + countParameters($1.value) }
}
