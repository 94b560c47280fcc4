import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// Kernels against PyTorch's float32 CPU results (`tools/fixtures/make_kernels.py`).
/// Tolerance: 1e-4 relative error, with a floor of 1% of the reference's largest magnitude.
struct KernelTests {
    let ref: SafeTensorsFile
    let tolerance: Float = 1e-4

    init() throws { ref = try Fixtures.tensors("kernels/kernels.safetensors") }

    func t(_ key: String) throws -> Tensor { try ref.tensor(named: key) }

    @Test func matmulBatchedSharedAndTransposed() throws {
        #expect(try relativeError(try matmul(t("matmul.a"), t("matmul.b")), t("matmul.out")) < tolerance)
        #expect(
            try relativeError(try matmul(t("matmul_shared.a"), t("matmul_shared.b")), t("matmul_shared.out"))
                < tolerance)
        let bt = try matmul(t("matmul_bt.a"), t("matmul_bt.b"), transposeB: true)
        #expect(try relativeError(bt, t("matmul_bt.out")) < tolerance)
    }

    @Test func linearWithAndWithoutBias() throws {
        let y = try linear(t("linear.x"), weight: t("linear.w"), bias: t("linear.b"))
        #expect(y.shape == [2, 5, 8])
        #expect(try relativeError(y, t("linear.out")) < tolerance)
        #expect(try relativeError(try linear(t("linear.x"), weight: t("linear.w")), t("linear_nobias.out")) < tolerance)
    }

    @Test(arguments: [
        ("conv3x3", (1, 1), (1, 1)), ("conv_down", (2, 2), (1, 1)), ("conv_down_nopad", (2, 2), (0, 0)),
        ("conv1x1", (1, 1), (0, 0)), ("conv_patch", (14, 14), (0, 0)), ("conv_asym", (2, 1), (0, 2)),
    ])
    func conv2dMatchesTorch(_ c: (String, (Int, Int), (Int, Int))) throws {
        let (name, stride, padding) = c
        let bias = ref.keys.contains("\(name).b") ? try t("\(name).b") : nil
        let y = try conv2d(t("\(name).x"), weight: t("\(name).w"), bias: bias, stride: stride, padding: padding)
        let expected = try t("\(name).out")
        #expect(y.shape == expected.shape)
        #expect(try relativeError(y, expected) < tolerance, "\(name)")
    }

    @Test func normalizations() throws {
        let g = try groupNorm(t("groupnorm.x"), groups: 4, weight: t("groupnorm.w"), bias: t("groupnorm.b"), eps: 1e-5)
        #expect(try relativeError(g, t("groupnorm.out")) < tolerance)
        let g32 = try groupNorm(
            t("groupnorm32.x"), groups: 32, weight: t("groupnorm32.w"), bias: t("groupnorm32.b"), eps: 1e-6)
        #expect(try relativeError(g32, t("groupnorm32.out")) < tolerance)
        let l = try layerNorm(t("layernorm.x"), weight: t("layernorm.w"), bias: t("layernorm.b"), eps: 1e-5)
        #expect(try relativeError(l, t("layernorm.out")) < tolerance)
    }

    @Test func softmaxAndActivations() throws {
        let s = try softmax(t("softmax.x"))
        #expect(try relativeError(s, t("softmax.out")) < tolerance)
        let x = try t("act.x")
        #expect(try relativeError(silu(x), t("silu.out")) < tolerance)
        #expect(try relativeError(gelu(x), t("gelu.out")) < tolerance)
        #expect(try relativeError(gelu(x, approximation: .tanh), t("gelu_tanh.out")) < tolerance)
        #expect(try relativeError(quickGELU(x), t("quick_gelu.out")) < tolerance)
    }

    @Test func multiHeadAttention() throws {
        let o = try attention(t("attention.q"), t("attention.k"), t("attention.v"), heads: 4)
        #expect(try relativeError(o, t("attention.out")) < tolerance)
        let long = try attention(t("attention_long.q"), t("attention_long.k"), t("attention_long.v"), heads: 1)
        #expect(try relativeError(long, t("attention_long.out")) < tolerance)
    }

    @Test func shapeOperations() throws {
        let x = try t("bcast.a")
        // Pure data movement: exact.
        #expect(try upsampleNearest2x(x).scalars == t("upsample.out").scalars)
        #expect(try permute(x, [0, 2, 3, 1]).scalars == t("permute.out").scalars)
        #expect(try permute(x, [0, 2, 3, 1]).shape == [2, 4, 5, 3])
        #expect(try concat([x, t("concat.b")], axis: 1).scalars == t("concat.axis1").scalars)
        #expect(try concat([x, t("concat3.b")], axis: 3).scalars == t("concat.axis3").scalars)
        // Arithmetic: one rounding, identical to torch.
        #expect(try add(x, t("bcast.b")).scalars == t("bcast.add").scalars)
        #expect(try mul(x, t("bcast.b")).scalars == t("bcast.mul").scalars)
        #expect(try sub(x, t("bcast.b")).scalars == t("bcast.sub").scalars)
        let both = try add(t("bcast2.a"), t("bcast2.b"))
        #expect(both.shape == [2, 4, 6])
        #expect(try both.scalars == t("bcast2.add").scalars)
        #expect(try x.reshaped([6, -1]).shape == [6, 20])
    }

    @Test func shapeErrorsNameTheOperationAndShapes() throws {
        let a = try Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [4, 2], values: [Float](repeating: 1, count: 8))
        #expect(throws: TensorError.self) { try matmul(a, b) }
        do {
            _ = try matmul(a, b)
        } catch let e as TensorError {
            #expect(e.op == "matmul")
            #expect(e.description.contains("[2, 3]") && e.description.contains("[4, 2]"))
        }
        let img = Tensor(zeros: [1, 3, 8, 8])
        let w = Tensor(zeros: [4, 2, 3, 3])
        #expect(throws: TensorError.self) { try conv2d(img, weight: w) }
        #expect(throws: TensorError.self) { try groupNorm(img, groups: 2, weight: nil, bias: nil, eps: 1e-5) }
        #expect(throws: TensorError.self) { try add(a, b) }
        #expect(throws: TensorError.self) { try concat([a, b], axis: 1) }
        #expect(throws: TensorError.self) { try permute(a, [0, 0]) }
        #expect(throws: TensorError.self) { try a.reshaped([4, 2, 1, 3]) }
        #expect(throws: TensorError.self) {
            try attention(Tensor(zeros: [1, 2, 6]), Tensor(zeros: [1, 3, 6]), Tensor(zeros: [1, 3, 6]), heads: 4)
        }
    }

    /// The blocked attention's online softmax against a Float64 computation of the plain formula, on every kernel
    /// path the CPU has. Keys whose scores grow block by block (every key block raises each query's maximum, so
    /// the partial output is rescaled each time) and then shrink: 2 heads of 8, 150 queries (four full panels of
    /// 32 and a partial one), 1,100 keys (four key blocks, the last panel of keys padded). Then head sizes that are
    /// not multiples of 8 (3 heads of 12, 33 queries, 9 keys) and a single query and key. Tolerance 1e-5 of the
    /// largest output magnitude.
    @Test(arguments: GEMMPath.available)
    func blockedAttentionAgainstFloat64(path: GEMMPath) throws {
        for (lq, lk, heads, d, batch) in [(150, 1_100, 2, 8, 1), (33, 9, 3, 12, 2), (1, 1, 1, 5, 1)] {
            var state: UInt64 = 0x1234_5678
            func uniform() -> Float {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(state >> 40) / Float(1 << 24) * 2 - 1
            }
            let qs = (0..<(batch * lq * heads * d)).map { _ in uniform() }
            // Scores of key j scale with a growing, then falling, factor.
            let ks = (0..<(batch * lk * heads * d)).map { i -> Float in
                let j = (i / (heads * d)) % lk
                return uniform() * (j < 900 ? 0.5 + Float(j) / 200 : 1)
            }
            let vs = (0..<(batch * lk * heads * d)).map { _ in uniform() }
            let got = try attention(
                Tensor(shape: [batch, lq, heads * d], values: qs), Tensor(shape: [batch, lk, heads * d], values: ks),
                Tensor(shape: [batch, lk, heads * d], values: vs), heads: heads, path: path
            ).scalars
            var expected = [Float](repeating: 0, count: batch * lq * heads * d)
            let scale = 1 / Double(d).squareRoot()
            for b in 0..<batch {
                for h in 0..<heads {
                    for i in 0..<lq {
                        let qRow = ((b * lq + i) * heads + h) * d
                        var scores = [Double](repeating: 0, count: lk)
                        for j in 0..<lk {
                            let kRow = ((b * lk + j) * heads + h) * d
                            var dot = 0.0
                            for e in 0..<d { dot += Double(qs[qRow + e]) * Double(ks[kRow + e]) }
                            scores[j] = dot * scale
                        }
                        let top = scores.max()!
                        let weights = scores.map { Foundation.exp($0 - top) }
                        let total = weights.reduce(0, +)
                        for e in 0..<d {
                            var acc = 0.0
                            for j in 0..<lk { acc += weights[j] * Double(vs[((b * lk + j) * heads + h) * d + e]) }
                            expected[qRow + e] = Float(acc / total)
                        }
                    }
                }
            }
            let magnitude = expected.map(abs).max() ?? 0
            #expect(maxAbsDifference(got, expected) <= 1e-5 * magnitude, "\(path) \(lq)×\(lk), \(heads) heads of \(d)")
        }
    }
}
