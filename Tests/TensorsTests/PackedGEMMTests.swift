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
                    for accumulate in [false, true] {
                        let withBias = accumulate != aPacked
                        // B's elements: from bTᵀ when packed (as a linear weight), from b otherwise.
                        func bElement(_ p: Int, _ j: Int) -> Float { bPacked ? btv[j * k + p] : bv[p * n + j] }
                        let packedA = PackedMatrix(packing: a, side: .left)
                        let packedB = PackedMatrix(packing: bT, side: .right)
                        var out = start
                        out.withUnsafeMutableBufferPointer { po in
                            a.withUnsafeBufferPointer { pa in
                                b.withUnsafeBufferPointer { pb in
                                    rowBias.withUnsafeBufferPointer { prb in
                                        columnBias.withUnsafeBufferPointer { pcb in
                                            packedGEMM(
                                                m: m, n: n, k: k,
                                                a: aPacked ? .packed(packedA) : .plain(pa.baseAddress!, ld: k),
                                                b: bPacked ? .packed(packedB) : .plain(pb.baseAddress!, ld: n),
                                                c: po.baseAddress!, ldc: n, accumulate: accumulate,
                                                rowBias: withBias ? prb.baseAddress : nil,
                                                columnBias: withBias ? pcb.baseAddress : nil, path: path, threads: 3)
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
                            "\(path) m=\(m) n=\(n) k=\(k) A packed \(aPacked) B packed \(bPacked) accumulate \(accumulate): \(worst)"
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

    /// Every convolution method (pointwise, im2col with stride, Winograd F(2×2) and F(4×4)) over a packed weight,
    /// against the plain weight's result.
    @Test(arguments: [
        ([1, 5, 9, 9], 7, 1, 1, 0), ([2, 4, 9, 10], 12, 3, 2, 1), ([1, 6, 6, 6], 9, 3, 1, 1),
        ([2, 8, 18, 20], 10, 3, 1, 1), ([1, 130, 34, 34], 131, 3, 1, 1), ([1, 3, 28, 28], 16, 14, 14, 0),
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

/// The softmax row kernels (exp with shift and sum, row maximum) on every path this CPU runs: each value within
/// 2e-7 relative of Double's exp of the same float argument (Cephes' expf is within ~1 ulp), the sum within 1e-6,
/// the maximum exact, and every path's bits equal to the portable path's.
struct SoftmaxRowKernelTests {
    @Test(arguments: GEMMPath.available)
    func expShiftSumAndMaxAgainstDouble(_ path: GEMMPath) {
        for n in [1, 7, 16, 31, 32, 33, 100, 515] {
            var state: UInt64 = 0x1234_5678 &+ UInt64(n)
            let values: [Float] = (0..<n).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Double(state >> 40) / Double(1 << 24) * 60 - 40)  // [−40, 20)
            }
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

/// The allocator setting that keeps freed tensor memory in the process (`CKernels/callocator.h`) is applied on glibc:
/// it once compiled to its no-glibc stub, unnoticed, and every large tensor paid its page faults again.
struct AllocatorSettingTests {
    @Test func freedMemoryIsKeptOnGlibc() {
        #if os(Linux) && canImport(Glibc)
            #expect(freedMemoryKept)
        #endif
    }
}
