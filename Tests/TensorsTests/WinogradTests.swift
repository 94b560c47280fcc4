import Tensors
import TestSupport
import Testing

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) against the im2col convolution on odd and even sizes, both paddings,
/// with and without bias. Tolerance: 1e-6 (F(2×2)) and 4e-6 (F(4×4)) of the largest output magnitude,
/// elementwise; F(4×4)'s rounding is measured against a Float64 direct convolution below.
struct WinogradTests {
    @Test(arguments: [
        ([1, 3, 8, 8], 4, 1), ([2, 5, 7, 9], 6, 1), ([1, 4, 6, 5], 3, 0), ([2, 16, 33, 31], 24, 1),
        ([1, 2, 3, 3], 2, 0), ([1, 1, 1, 1], 2, 1), ([1, 8, 2, 70], 8, 1), ([1, 3, 5, 140], 5, 1),
        ([3, 2, 13, 37], 3, 0),
    ])
    func matchesIm2col(_ shape: [Int], _ outChannels: Int, _ padding: Int) throws {
        let x = randomTensor(shape, seed: UInt64(shape.reduce(0, +)))
        let w = randomTensor([outChannels, shape[1], 3, 3], seed: 7)
        let b = randomTensor([outChannels], seed: 9)
        for bias in [nil, b] {
            let expected = try conv2d(x, weight: w, bias: bias, padding: (padding, padding))
            let scale = expected.scalars.map(abs).max() ?? 0
            for (name, tolerance, got) in [
                ("F(2×2)", 1e-6, try conv2dWinograd3x3(x, weight: w, bias: bias, padding: (padding, padding))),
                ("F(4×4)", 4e-6, try conv2dWinograd4x4(x, weight: w, bias: bias, padding: (padding, padding))),
            ] as [(String, Float, Tensor)] {
                #expect(got.shape == expected.shape)
                let diff = maxAbsDifference(got.scalars, expected.scalars)
                #expect(
                    diff <= tolerance * scale,
                    "\(name) \(shape) → \(outChannels), padding \(padding): \(diff) of \(scale)")
            }
        }
    }

    /// Rounding error of each method against a direct convolution in Float64, at a UNet-like depth (C = 256,
    /// weights of PyTorch's default scale): RMS error relative to the RMS output. Measured: direct (im2col)
    /// about 3e-7, F(2×2) 4.7e-7, F(4×4) 3.4e-6 (the points ±2 and the 1/24 weights); bounded at 6e-6, 15× below the 1e-4 of
    /// the parity tests.
    @Test func roundingAgainstFloat64() throws {
        let (c, o, h, w) = (256, 8, 12, 12)
        let x = randomTensor([1, c, h, w], seed: 3)
        var weight = randomTensor([o, c, 3, 3], seed: 4)
        let bound = 1 / Float(9 * c).squareRoot()
        weight = try Tensor(shape: weight.shape, values: weight.scalars.map { $0 * bound })
        let xs = x.scalars
        let ws = weight.scalars
        var exact = [Double](repeating: 0, count: o * h * w)
        for oi in 0..<o {
            for y in 0..<h {
                for xx in 0..<w {
                    var sum = 0.0
                    for ci in 0..<c {
                        for ky in 0..<3 {
                            let iy = y + ky - 1
                            guard iy >= 0, iy < h else { continue }
                            for kx in 0..<3 {
                                let ix = xx + kx - 1
                                guard ix >= 0, ix < w else { continue }
                                sum +=
                                    Double(xs[(ci * h + iy) * w + ix]) * Double(ws[((oi * c + ci) * 3 + ky) * 3 + kx])
                            }
                        }
                    }
                    exact[(oi * h + y) * w + xx] = sum
                }
            }
        }
        let rms = (exact.map { $0 * $0 }.reduce(0, +) / Double(exact.count)).squareRoot()
        func relativeError(_ t: Tensor) -> Double {
            let e = zip(t.scalars, exact).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +)
            return (e / Double(exact.count)).squareRoot() / rms
        }
        let direct = relativeError(try conv2d(x, weight: weight, padding: (1, 1)))
        let f2 = relativeError(try conv2dWinograd3x3(x, weight: weight))
        let f4 = relativeError(try conv2dWinograd4x4(x, weight: weight))
        print("rounding (RMS, relative): direct \(direct), F(2×2) \(f2), F(4×4) \(f4)")
        #expect(direct < 5e-7)
        #expect(f2 < 5e-7)
        #expect(f4 < 6e-6)
    }

    /// Layers whose transformed filters exceed `winogradFilterBlock` run in blocks of output channels: F(2×2) with
    /// 1,030 channels (two blocks of 520 and 510, and two chunks of tile rows, so the tiles are transformed again
    /// for the second block) and F(4×4) with 700 (two blocks, one chunk). Tolerances 1e-6 and 2e-5 of the largest
    /// output (F(4×4) measured 6.7e-6 here: its rounding grows with the channel count, see the RMS test below).
    @Test func outputChannelBlocks() throws {
        for (shape, f4) in [([1, 1_030, 34, 34], false), ([1, 700, 10, 10], true)] {
            let x = randomTensor(shape, seed: 21)
            var w = randomTensor([shape[1], shape[1], 3, 3], seed: 22)
            let bound = 1 / Float(9 * shape[1]).squareRoot()
            w = try Tensor(shape: w.shape, values: w.scalars.map { $0 * bound })
            let b = randomTensor([shape[1]], seed: 23)
            let expected = try conv2d(x, weight: w, bias: b, padding: (1, 1))
            let got =
                f4 ? try conv2dWinograd4x4(x, weight: w, bias: b) : try conv2dWinograd3x3(x, weight: w, bias: b)
            let scale = expected.scalars.map(abs).max() ?? 0
            let diff = maxAbsDifference(got.scalars, expected.scalars)
            #expect(diff <= (f4 ? 2e-5 : 1e-6) * scale, "\(shape): \(diff) of \(scale)")
        }
    }

    @Test func rejectsOtherKernelsAndShapes() {
        #expect(throws: TensorError.self) {
            try conv2dWinograd4x4(Tensor(zeros: [1, 2, 4, 4]), weight: Tensor(zeros: [2, 2, 5, 5]))
        }
        #expect(throws: TensorError.self) {
            try conv2dWinograd4x4(Tensor(zeros: [1, 2, 2, 2]), weight: Tensor(zeros: [2, 2, 3, 3]), padding: (0, 0))
        }
        #expect(throws: TensorError.self) {
            try conv2dWinograd3x3(Tensor(zeros: [1, 2, 4, 4]), weight: Tensor(zeros: [2, 2, 5, 5]))
        }
        #expect(throws: TensorError.self) {
            try conv2dWinograd3x3(Tensor(zeros: [1, 3, 4, 4]), weight: Tensor(zeros: [2, 2, 3, 3]))
        }
        #expect(throws: TensorError.self) {
            try conv2dWinograd3x3(Tensor(zeros: [1, 2, 2, 2]), weight: Tensor(zeros: [2, 2, 3, 3]), padding: (0, 0))
        }
    }
}

/// `convolution` (what the networks call) agrees with im2col on shapes that take each of its paths.
struct ConvolutionDispatchTests {
    @Test(
        arguments: [
            // ≥ 64 4×4 tiles, wide: F(4×4), whose rounding over 1,152 products reaches ~1e-5 of the largest output.
            ([1, 128, 40, 36], 128, 1, 2e-5),
            ([1, 4, 40, 36], 5, 1, 1e-6),  // narrow: F(2×2)
            ([2, 4, 16, 16], 5, 1, 1e-6),  // 32 4×4 tiles, 128 2×2 tiles: F(2×2)
            ([1, 4, 8, 8], 5, 1, 1e-6),  // 16 2×2 tiles: im2col
            ([1, 4, 33, 35], 5, 0, 1e-6),
        ] as [([Int], Int, Int, Float)])
    func agreesWithIm2col(_ shape: [Int], _ outChannels: Int, _ padding: Int, _ tolerance: Float) throws {
        let x = randomTensor(shape, seed: 11)
        let w = randomTensor([outChannels, shape[1], 3, 3], seed: 12)
        let b = randomTensor([outChannels], seed: 13)
        let expected = try conv2d(x, weight: w, bias: b, padding: (padding, padding))
        let got = try convolution(x, weight: w, bias: b, padding: (padding, padding))
        #expect(got.shape == expected.shape)
        let scale = expected.scalars.map(abs).max() ?? 0
        #expect(maxAbsDifference(got.scalars, expected.scalars) <= tolerance * scale)
        // Other kernels and strides go to im2col unchanged.
        let strided = try convolution(x, weight: w, bias: b, stride: (2, 2), padding: (1, 1))
        #expect(strided.scalars == (try conv2d(x, weight: w, bias: b, stride: (2, 2), padding: (1, 1))).scalars)
    }
}
