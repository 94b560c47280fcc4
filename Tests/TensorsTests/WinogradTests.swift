import Tensors
import TestSupport
import Testing

/// Winograd F(2×2, 3×3) against the im2col convolution on odd and even sizes, both paddings, with and without
/// bias. Tolerance: 1e-6 of the largest output magnitude (a few ulps of it), elementwise.
struct WinogradTests {
    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                p[i] = Float(state >> 40) / Float(1 << 24) * 2 - 1
            }
        }
        return t
    }

    @Test(arguments: [
        ([1, 3, 8, 8], 4, 1), ([2, 5, 7, 9], 6, 1), ([1, 4, 6, 5], 3, 0), ([2, 16, 33, 31], 24, 1),
        ([1, 2, 3, 3], 2, 0), ([1, 1, 1, 1], 2, 1), ([1, 8, 2, 70], 8, 1),
    ])
    func matchesIm2col(_ shape: [Int], _ outChannels: Int, _ padding: Int) throws {
        let x = random(shape, seed: UInt64(shape.reduce(0, +)))
        let w = random([outChannels, shape[1], 3, 3], seed: 7)
        let b = random([outChannels], seed: 9)
        for bias in [nil, b] {
            let expected = try conv2d(x, weight: w, bias: bias, padding: (padding, padding))
            let got = try conv2dWinograd3x3(x, weight: w, bias: bias, padding: (padding, padding))
            #expect(got.shape == expected.shape)
            let scale = expected.scalars.map(abs).max() ?? 0
            let diff = maxAbsDifference(got.scalars, expected.scalars)
            #expect(diff <= 1e-6 * scale, "\(shape) → \(outChannels), padding \(padding): \(diff) of \(scale)")
        }
    }

    @Test func rejectsOtherKernelsAndShapes() {
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
