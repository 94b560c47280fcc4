import Foundation
import TestSupport
import Testing

@testable import Tensors

#if canImport(Glibc)
    import Glibc
#endif

/// Our packed GEMM on every kernel path this CPU runs (portable, AVX2, AVX-512), against a Float64 product.
/// Tolerance per element: 1e-6 of Σₖ|aᵢₖ·bₖⱼ| plus the biases and the accumulated value (float32 rounding over
/// at most a few hundred terms per depth block stays well inside it); the layers over packed weights are checked
/// against the BLAS ones within 1e-5 of the largest output.
struct PackedGEMMTests {
    /// What the product is added to: nothing, C itself (accumulating), or another matrix read as tiles are stored.
    enum Addend: CaseIterable { case none, c, other }

    /// Shapes around the 8×32 register tile, the 384-deep blocks and the 512-column blocks.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 33, 5), (8, 32, 384), (9, 65, 385), (17, 545, 40), (257, 100, 769), (40, 31, 1),
    ]

    @Test(arguments: GEMMPath.available)
    func everyOperandFormAgainstFloat64(_ path: GEMMPath) throws {
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            let seed = UInt64(index * 10)
            let a = randomTensor([m, k], seed: seed + 1)
            let b = randomTensor([k, n], seed: seed + 2)  // [K, N]
            let bT = randomTensor([n, k], seed: seed + 3)  // a linear weight [N, K]; B = bTᵀ
            let rowBias = randomTensor([m], seed: seed + 4)
            let columnBias = randomTensor([n], seed: seed + 5)
            let start = randomTensor([m, n], seed: seed + 6)
            let (av, bv, btv) = (a.scalars, b.scalars, bT.scalars)
            for aPacked in [false, true] {
                for bPacked in [false, true] {
                    for addend in Addend.allCases {
                        let accumulate = addend != .none
                        let withBias = accumulate != aPacked
                        // B's elements: from bTᵀ when packed (as a linear weight), from b otherwise.
                        func bElement(_ p: Int, _ j: Int) -> Float { bPacked ? btv[j * k + p] : bv[p * n + j] }
                        let packedA = PackedMatrix(packing: a, side: .left)
                        let packedB = PackedMatrix(packing: bT, side: .right)
                        // Accumulating onto C, or C = another matrix (`start`, read in place) + the product.
                        var out = addend == .other ? randomTensor([m, n], seed: seed + 7) : start
                        out.withUnsafeMutableBufferPointer { po in
                            start.withUnsafeBufferPointer { pstart in
                                let ps = pstart.baseAddress!
                                a.withUnsafeBufferPointer { pa in
                                    b.withUnsafeBufferPointer { pb in
                                        rowBias.withUnsafeBufferPointer { prb in
                                            columnBias.withUnsafeBufferPointer { pcb in
                                                packedGEMM(
                                                    m: m, n: n, k: k,
                                                    a: aPacked ? .packed(packedA) : .plain(pa.baseAddress!, ld: k),
                                                    b: bPacked ? .packed(packedB) : .plain(pb.baseAddress!, ld: n),
                                                    c: po.baseAddress!, ldc: n,
                                                    addend: addend == .none
                                                        ? nil : addend == .c ? UnsafePointer(po.baseAddress!) : ps,
                                                    rowBias: withBias ? prb.baseAddress : nil,
                                                    columnBias: withBias ? pcb.baseAddress : nil, path: path, threads: 3
                                                )
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        let got = out.scalars
                        let (s, rb, cb) = (start.scalars, rowBias.scalars, columnBias.scalars)
                        var worst = 0.0
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0
                                var magnitude = 0.0
                                for p in 0..<k {
                                    let term = Double(av[i * k + p]) * Double(bElement(p, j))
                                    sum += term
                                    magnitude += abs(term)
                                }
                                var expected = sum
                                if withBias {
                                    expected += Double(rb[i]) + Double(cb[j])
                                    magnitude += abs(Double(rb[i])) + abs(Double(cb[j]))
                                }
                                if accumulate {
                                    expected += Double(s[i * n + j])
                                    magnitude += abs(Double(s[i * n + j]))
                                }
                                worst = max(worst, abs(Double(got[i * n + j]) - expected) / (magnitude + 1e-30))
                            }
                        }
                        #expect(
                            worst <= 1e-6,
                            "\(path) m=\(m) n=\(n) k=\(k) A packed \(aPacked) B packed \(bPacked) addend \(addend): \(worst)"
                        )
                    }
                }
            }
        }
    }

    @Test func packingRoundTripsAndReshapes() throws {
        let w = randomTensor([37, 5, 3, 3], seed: 9)
        for side in [PackedSide.left, .right] {
            let p = PackedMatrix(packing: w, side: side)
            #expect(p.rows == 37 && p.depth == 45 && p.count == w.count)
            #expect(p.unpacked().scalars == w.scalars)
            #expect(try p.reshaped([37, 45]).unpacked().scalars == w.scalars)
            #expect(throws: TensorError.self) { try p.reshaped([45, 37]) }
        }
    }

    /// Every packed element sits where the documented layout puts it, `panel[q][p][i] = w[q·width + i][p]`,
    /// and the rows that pad a last panel are zero: rows and depths with whole 8×8 blocks and ragged edges
    /// (the packing transposes whole blocks in registers and the edges element by element).
    @Test func packedLayoutAndPaddingAreExact() {
        for (rows, depth) in [(37, 45), (64, 24), (3, 7), (33, 64)] {
            let w = randomTensor([rows, depth], seed: UInt64(rows * 100 + depth))
            let values = w.scalars
            for side in [PackedSide.left, .right] {
                let p = PackedMatrix(packing: w, side: side)
                let width = side.width
                let panels = (rows + width - 1) / width
                let packed = Array(UnsafeBufferPointer(start: p.base, count: panels * depth * width))
                var expected = [Float](repeating: 0, count: packed.count)
                for q in 0..<panels {
                    for k in 0..<depth {
                        for i in 0..<width where q * width + i < rows {
                            expected[(q * depth + k) * width + i] = values[(q * width + i) * depth + k]
                        }
                    }
                }
                let wrong = zip(packed, expected).enumerated().filter { $0.element.0 != $0.element.1 }
                #expect(
                    wrong.isEmpty,
                    "\(rows)×\(depth), \(side): \(wrong.count) of \(packed.count) wrong, first at \(wrong.first?.offset ?? -1)"
                )
            }
        }
    }

    /// A float16 weight widened straight into packed panels holds exactly its widened values (both sides, rows
    /// and depths that leave partial panels), and a linear layer over it matches BLAS over the widened weight.
    @Test func float16WeightsWidenIntoPackedPanels() throws {
        for shape in [[37, 5, 3, 3], [33, 70], [1, 1], [8, 1030]] {
            let half = HalfTensor(narrowing: randomTensor(shape, seed: UInt64(shape.reduce(0, +))))
            let weight = WeightTensor.float16(half)
            let widened = half.widened()
            for side in [PackedSide.left, .right] {
                let values = weight.withPacked(for: side) { p -> [Float] in
                    #expect(p.shape == shape && p.side == side)
                    return p.unpacked().scalars
                }
                #expect(values == widened.scalars, "\(shape) \(side)")
            }
            #expect(WeightTensor.float32(widened).withPacked(for: .right) { _ in 0 } == nil)
            guard shape.count == 2 else { continue }
            let x = randomTensor([19, shape[1]], seed: 7)
            let expected = try linear(x, weight: widened).scalars
            let got = try weight.withPacked(for: .right) { try linear(x, packed: $0) }!.scalars
            let scale = expected.map(abs).max() ?? 1
            #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-5 * scale }, "\(shape)")
        }
    }

    @Test func linearOverPackedWeightMatchesBLAS() throws {
        for (rows, inF, outF) in [(1, 3, 2), (257, 96, 130), (2, 1024, 40), (300, 20, 7)] {
            let x = randomTensor([rows, inF], seed: UInt64(rows))
            let w = randomTensor([outF, inF], seed: 3)
            let bias = randomTensor([outF], seed: 4)
            let expected = try linear(x, weight: w, bias: bias).scalars
            let got = try linear(x, packed: PackedMatrix(packing: w, side: .right), bias: bias).scalars
            let scale = expected.map(abs).max() ?? 1
            #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
            #expect(throws: TensorError.self) {
                try linear(x, packed: PackedMatrix(packing: w, side: .left), bias: bias)
            }
        }
    }

    /// `residual + x·Wᵀ + b`, then gated by `y·sigmoid(g·y)`, over a plain weight (BLAS, gate after) and a packed
    /// one (gate in the GEMM's store) on every path, against Float64; the fused result has the same bits as the
    /// unfused `linear` → add → `quickGELU`/`silu` when the sums are the same.
    @Test(arguments: GEMMPath.available)
    func linearWithResidualAndGateAgainstFloat64(_ path: GEMMPath) throws {
        for (rows, inF, outF) in [(1, 3, 2), (257, 96, 130), (9, 400, 33)] {
            let x = randomTensor([rows, inF], seed: UInt64(rows) + 20)
            let w = randomTensor([outF, inF], seed: 21)
            let bias = randomTensor([outF], seed: 22)
            let residual = randomTensor([rows, outF], seed: 23, scale: 3)
            let (xv, wv, bv, rv) = (x.scalars, w.scalars, bias.scalars, residual.scalars)
            for gate: Float in [1, 1.702] {
                var expected = [Double](repeating: 0, count: rows * outF)
                for i in 0..<rows {
                    for j in 0..<outF {
                        var y = Double(rv[i * outF + j]) + Double(bv[j])
                        for p in 0..<inF { y += Double(xv[i * inF + p]) * Double(wv[j * inF + p]) }
                        expected[i * outF + j] = y / (1 + Foundation.exp(-Double(gate) * y))
                    }
                }
                let packed = PackedMatrix(packing: w, side: .right)
                // residual + x·Wᵀ + bias through packedGEMM on `path`, gated in its store by `g` (0: not gated).
                func gemm(gate g: Float) -> Tensor {
                    var out = residual
                    out.withUnsafeMutableBufferPointer { po in
                        x.withUnsafeBufferPointer { px in
                            bias.withUnsafeBufferPointer { pb in
                                packedGEMM(
                                    m: rows, n: outF, k: inF, a: .plain(px.baseAddress!, ld: inF),
                                    b: .packed(packed), c: po.baseAddress!, ldc: outF,
                                    addend: UnsafePointer(po.baseAddress!),
                                    columnBias: pb.baseAddress, gate: g, path: path, threads: 2)
                            }
                        }
                    }
                    return out
                }
                let fused = gemm(gate: gate)
                let plain = try linear(x, weight: w, bias: bias, gate: gate, residual: residual)
                let viaLayer = try linear(x, packed: packed, bias: bias, gate: gate, residual: residual)
                let scale = expected.map(abs).max()!
                for (label, got) in [("fused \(path)", fused), ("BLAS", plain), ("packed layer", viaLayer)] {
                    let worst = zip(got.scalars, expected).map { abs(Double($0) - $1) }.max()!
                    #expect(worst <= 1e-5 * scale, "\(label) \(rows)×\(inF)→\(outF) gate \(gate): \(worst / scale)")
                }
                // Unfused: the same sums gated afterwards give the same bits.
                let sums = gemm(gate: 0)
                let after = gate == 1 ? silu(sums) : quickGELU(sums)
                #expect(after.scalars == fused.scalars, "\(path) gate \(gate): fused and unfused bits differ")
            }
            #expect(throws: TensorError.self) {
                try linear(x, weight: w, bias: bias, residual: randomTensor([rows, outF + 1], seed: 1))
            }
        }
    }

    /// Every convolution method (pointwise, im2col with stride, Winograd F(2×2) and F(4×4), small images batched
    /// into one GEMM) over a packed weight, against the plain weight's result.
    @Test(arguments: [
        ([1, 5, 9, 9], 7, 1, 1, 0), ([2, 4, 9, 10], 12, 3, 2, 1), ([1, 6, 6, 6], 9, 3, 1, 1),
        ([2, 8, 18, 20], 10, 3, 1, 1), ([1, 130, 34, 34], 131, 3, 1, 1), ([1, 3, 28, 28], 16, 14, 14, 0),
        ([3, 5, 4, 4], 7, 1, 1, 0), ([3, 6, 4, 4], 9, 3, 1, 1),
    ])
    func convolutionOverPackedWeightMatchesPlain(
        _ shape: [Int], _ outChannels: Int, _ kernel: Int, _ stride: Int, _ padding: Int
    ) throws {
        let x = randomTensor(shape, seed: UInt64(shape.reduce(0, +)))
        let w = randomTensor([outChannels, shape[1], kernel, kernel], seed: 5)
        let bias = randomTensor([outChannels], seed: 6)
        let expected = try convolution(
            x, weight: w, bias: bias, stride: (stride, stride), padding: (padding, padding))
        let got = try convolution(
            x, packed: PackedMatrix(packing: w, side: .left), bias: bias, stride: (stride, stride),
            padding: (padding, padding))
        #expect(got.shape == expected.shape)
        let scale = expected.scalars.map(abs).max() ?? 1
        let worst = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-5 * scale, "\(shape) → \(outChannels), k\(kernel) s\(stride): \(worst / scale)")
    }
}

/// `n` floats spread over [from, from + width) by a 64-bit LCG started at `seed` (the element-wise kernel tests'
/// inputs).
private func uniformFloats(_ n: Int, seed: UInt64, from low: Double, width: Double) -> [Float] {
    var state = seed
    return (0..<n).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Double(state >> 40) / Double(1 << 24) * width + low)
    }
}

/// The softmax row kernels (exp with shift and sum, row maximum) on every path this CPU runs: each value within
/// 2e-7 relative of Double's exp of the same float argument (Cephes' expf is within ~1 ulp), the sum within 1e-6,
/// the maximum exact, and every path's bits equal to the portable path's.
struct SoftmaxRowKernelTests {
    @Test(arguments: GEMMPath.available)
    func expShiftSumAndMaxAgainstDouble(_ path: GEMMPath) {
        for n in [1, 7, 16, 31, 32, 33, 100, 515] {
            let values = uniformFloats(n, seed: 0x1234_5678 &+ UInt64(n), from: -40, width: 60)  // [−40, 20)
            let maximum = values.withUnsafeBufferPointer { rowMax($0.baseAddress!, length: n, path: path) }
            #expect(maximum == values.max()!, "\(path) n=\(n)")
            var row = values
            let sum = row.withUnsafeMutableBufferPointer {
                expRow($0.baseAddress!, length: n, shift: maximum, path: path)
            }
            var portable = values
            let portableSum = portable.withUnsafeMutableBufferPointer {
                expRow($0.baseAddress!, length: n, shift: maximum, path: .portable)
            }
            #expect(row == portable && sum == portableSum, "\(path) n=\(n): not the portable path's bits")
            let exact = values.map { Foundation.exp(Double($0 - maximum)) }
            let worst = zip(row, exact).map { abs(Double($0) - $1) / $1 }.max()!
            #expect(worst <= 2e-7, "\(path) n=\(n): \(worst)")
            let exactSum = exact.reduce(0, +)
            #expect(abs(Double(sum) - exactSum) <= 1e-6 * exactSum, "\(path) n=\(n) sum")
        }
    }
}

/// The sigmoid gate `x·sigmoid(s·x)` (SiLU, quick GELU) in C on every path this CPU runs: the same bits as the
/// portable path and as the Swift SIMD version the fused GroupNorm + SiLU uses, and within 1e-6 relative of
/// Double's formula plus 1e-7·|x| (the sigmoid factor within 1e-7: for very negative x the float product s·x
/// already carries that much relative error into the tiny result).
struct SigmoidGateKernelTests {
    @Test(arguments: GEMMPath.available)
    func gateAgainstSwiftAndDouble(_ path: GEMMPath) {
        for n in [1, 7, 8, 15, 16, 17, 100, 515] {
            var values = uniformFloats(n, seed: 0x9E37_79B9 &+ UInt64(n), from: -40, width: 80)  // [−40, 40)
            values[0] = 0
            for scale: Float in [1, 1.702] {
                var row = values
                row.withUnsafeMutableBufferPointer {
                    sigmoidGateInPlace($0.baseAddress!, count: n, scale: scale, path: path)
                }
                var portable = values
                portable.withUnsafeMutableBufferPointer {
                    sigmoidGateInPlace($0.baseAddress!, count: n, scale: scale, path: .portable)
                }
                #expect(row == portable, "\(path) n=\(n): not the portable path's bits")
                var swift = [Float]()
                for i in stride(from: 0, to: n, by: 8) {
                    var v = SIMD8<Float>()
                    for j in 0..<min(8, n - i) { v[j] = values[i + j] }
                    let r = fastSigmoidGate(v, scale: scale)
                    for j in 0..<min(8, n - i) { swift.append(r[j]) }
                }
                #expect(row == swift, "\(path) n=\(n): not the Swift SIMD version's bits")
                for (x, got) in zip(values, row) {
                    let exact = Double(x) / (1 + Foundation.exp(-Double(scale) * Double(x)))
                    let allowed = 1e-6 * abs(exact) + 1e-7 * abs(Double(x))
                    #expect(abs(Double(got) - exact) <= allowed, "\(path) x=\(x): \(got) vs \(exact)")
                }
            }
        }
    }
}

/// The allocator setting that keeps freed tensor memory in the process (`CKernels/callocator.h`) is applied on glibc:
/// it once compiled to its no-glibc stub, unnoticed, and every large tensor paid its page faults again.
struct AllocatorSettingTests {
    @Test func freedMemoryIsKeptOnGlibc() {
        #if os(Linux) && canImport(Glibc)
            #expect(freedMemoryKept)
        #endif
    }
}

/// The attention's column-wise online softmax step (`ck_softmax_columns`, queries in columns) on every path this
/// CPU runs: two blocks of keys, the second raising some columns' maxima, each with padding rows. The same bits
/// as the portable path; maxima exact; exponentials within 2e-7 and the running sums within 1e-6 relative of
/// Double's, with the first block's sum carried over by the correction factor.
struct SoftmaxColumnsKernelTests {
    @Test(arguments: GEMMPath.available)
    func twoBlocksAgainstDouble(_ path: GEMMPath) {
        let width = 32
        let first = uniformFloats(8 * width, seed: 0x51_7CC1, from: -30, width: 40)  // 5 keys + 3 padding rows
        let second = uniformFloats(8 * width, seed: 0x2545_F491, from: -20, width: 40)  // 3 keys + 5 padding
        func run(_ path: GEMMPath) -> (s1: [Float], s2: [Float], max: [Float], sum: [Float], correction: [Float]) {
            var (s1, s2) = (first, second)
            var (maxima, sums, correction) = (
                [Float](repeating: 0, count: width), [Float](repeating: 0, count: width),
                [Float](repeating: 0, count: width)
            )
            softmaxColumns(
                &s1, rows: 5, paddedRows: 8, width: width, maxima: &maxima, sums: &sums, correction: &correction,
                first: true, path: path)
            softmaxColumns(
                &s2, rows: 3, paddedRows: 8, width: width, maxima: &maxima, sums: &sums, correction: &correction,
                first: false, path: path)
            return (s1, s2, maxima, sums, correction)
        }
        let got = run(path)
        let portable = run(.portable)
        #expect(
            got.s1 == portable.s1 && got.s2 == portable.s2 && got.max == portable.max && got.sum == portable.sum
                && got.correction == portable.correction, "\(path): not the portable path's bits")
        for j in 0..<width {
            let m1 = (0..<5).map { first[$0 * width + j] }.max()!
            let m2 = max(m1, (0..<3).map { second[$0 * width + j] }.max()!)
            #expect(got.max[j] == m2)
            var total = 0.0
            for r in 0..<8 {
                let exact1 = r < 5 ? Foundation.exp(Double(first[r * width + j] - m1)) : 0
                let exact2 = r < 3 ? Foundation.exp(Double(second[r * width + j] - m2)) : 0
                #expect(abs(Double(got.s1[r * width + j]) - exact1) <= 2e-7 * exact1, "\(path) block 1 (\(r), \(j))")
                #expect(abs(Double(got.s2[r * width + j]) - exact2) <= 2e-7 * exact2, "\(path) block 2 (\(r), \(j))")
                total += exact1 * Foundation.exp(Double(m1 - m2)) + exact2
            }
            #expect(abs(Double(got.sum[j]) - total) <= 1e-6 * total, "\(path) column \(j) sum")
            let correction = Foundation.exp(Double(m1 - m2))
            #expect(abs(Double(got.correction[j]) - correction) <= 2e-7 * correction, "\(path) column \(j) correction")
        }
    }
}
