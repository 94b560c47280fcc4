import Foundation

/// Which GELU formula to use (`torch.nn.functional.gelu(approximate=)`).
public enum GELUApproximation: Sendable {
    /// `0.5·x·(1 + erf(x/√2))`, torch's default.
    case none
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    case tanh
}

/// Applies `f` to every element (in parallel for large tensors).
public func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    var out = Tensor(uninitialized: x.shape)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            parallelChunks(x.count, costPerItem: 8) { range in
                for i in range { po[i] = f(px[i]) }
            }
        }
    }
    return out
}

/// SiLU / swish: `x·sigmoid(x)` (vectorized exponential, within a few ulps of torch).
public func silu(_ x: Tensor) -> Tensor {
    sigmoidGate(x, scale: 1)
}

/// GELU, exact (erf) or tanh-approximated.
public func gelu(_ x: Tensor, approximation: GELUApproximation = .none) -> Tensor {
    switch approximation {
    case .none:
        return map(x) { v in Float(0.5 * Double(v) * (1 + erf(Double(v) * 0.7071067811865476))) }
    case .tanh:
        return map(x) { v in
            let u = Double(v)
            return Float(0.5 * u * (1 + tanh(0.7978845608028654 * (u + 0.044715 * u * u * u))))
        }
    }
}

/// CLIP's quick GELU: `x·sigmoid(1.702·x)` (vectorized exponential).
public func quickGELU(_ x: Tensor) -> Tensor {
    sigmoidGate(x, scale: 1.702)
}

/// Softmax over the last axis, numerically stable (the row maximum is subtracted first).
public func softmax(_ x: Tensor) throws -> Tensor {
    guard let d = x.shape.last, d > 0 else {
        throw TensorError("softmax", "input \(x.shape) has no last axis")
    }
    var out = x
    out.withUnsafeMutableBufferPointer { p in
        softmaxRows(p.baseAddress!, rows: x.count / d, length: d)
    }
    return out
}

/// In-place softmax of `rows` contiguous rows of `length` elements.
func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, length d: Int) {
    parallelChunks(rows, costPerItem: d * 4) { range in
        for r in range { softmaxRow(p + r * d, length: d) }
    }
}
