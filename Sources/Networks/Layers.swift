import Checkpoints
import Tensors

/// Layers shared by the networks: thin wrappers that bind a checkpoint's tensors by key and call one kernel.

/// `nn.Linear`: `x · Wᵀ + b`.
struct Linear {
    let weight: Tensor  // [out, in]
    let bias: Tensor?

    init(_ w: WeightBinder, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try w.take("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try w.take("bias", shape: [outFeatures]) : nil
    }

    /// A linear layer over given tensors (e.g. a 1×1 convolution's weight viewed as `[out, in]`).
    init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    var outFeatures: Int { weight.shape[0] }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try linear(x, weight: weight, bias: bias) }
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

/// `nn.Conv2d` with square kernel, symmetric zero padding, groups 1.
struct Conv2d {
    let weight: Tensor  // [out, in, k, k]
    let bias: Tensor?
    let stride: Int
    let padding: Int

    init(
        _ w: WeightBinder, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true
    ) throws {
        weight = try w.take("weight", shape: [outChannels, inChannels, kernel, kernel])
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
        if weight.shape[2] == 3, stride == 1, x.rank == 4 {
            // Winograd pays off once there are enough 2×2 output tiles to amortize the filter transform.
            let tiles = x.shape[0] * ((x.shape[2] + 2 * padding - 1) / 2) * ((x.shape[3] + 2 * padding - 1) / 2)
            if tiles >= Self.winogradMinTiles {
                return try conv2dWinograd3x3(x, weight: weight, bias: bias, padding: (padding, padding))
            }
        }
        return try conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding))
    }

    /// Output tiles from which 3×3 stride-1 convolutions use Winograd F(2×2, 3×3).
    static let winogradMinTiles = 64
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

/// Number of weight elements held by a network value (its `Tensor`s, found by reflection).
func countParameters(_ value: Any) -> Int {
    if let t = value as? Tensor { return t.count }
    return Mirror(reflecting: value).children.reduce(0) { $0 + countParameters($1.value) }
}
