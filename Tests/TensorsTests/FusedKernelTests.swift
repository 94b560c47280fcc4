import Foundation
import TestSupport
import Testing

@testable import Tensors

/// The fused and threaded kernels the diffusion networks use, against compositions of the basic kernels
/// (or direct formulas). Tolerances are stated per test.
struct FusedKernelTests {
    /// Largest difference relative to the largest reference magnitude.
    func error(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return maxAbsDifference(a.scalars, b.scalars) / max(b.scalars.map(abs).max() ?? 0, 1e-30)
    }

    @Test func groupNormSiLUMatchesComposition() throws {
        for (shape, groups) in [([2, 8, 5, 7], 4), ([1, 6, 33], 3), ([3, 4, 1, 1], 2)] {
            let x = randomTensor(shape, seed: 1, scale: 3)
            let w = randomTensor([shape[1]], seed: 2)
            let b = randomTensor([shape[1]], seed: 3)
            let expected = silu(try groupNorm(x, groups: groups, weight: w, bias: b, eps: 1e-5))
            let got = try groupNormSiLU(x, groups: groups, weight: w, bias: b, eps: 1e-5)
            #expect(error(got, expected) <= 2e-6, "\(shape)")
        }
        // A large offset: the variance must not cancel.
        let shifted = map(randomTensor([1, 4, 64, 64], seed: 4)) { $0 + 1000 }
        let expected = silu(try groupNorm(shifted, groups: 2, weight: nil, bias: nil, eps: 1e-6))
        #expect(error(try groupNormSiLU(shifted, groups: 2, weight: nil, bias: nil, eps: 1e-6), expected) <= 1e-4)
        #expect(throws: TensorError.self) {
            try groupNormSiLU(Tensor(zeros: [1, 6, 2]), groups: 4, weight: nil, bias: nil, eps: 1e-5)
        }
    }

    @Test func fastSiLUAndSoftmaxAreAccurate() throws {
        // Wide range, including the clamped tails.
        let values = (0..<2001).map { Float($0 - 1000) * 0.1 } + [-200, 200, 0]
        let x = try Tensor(shape: [values.count], values: values)
        let got = silu(x).scalars
        for (v, s) in zip(values, got) {
            let exact = Float(Double(v) / (1 + Foundation.exp(-Double(v))))
            #expect(abs(s - exact) <= 4 * exact.ulp.magnitude + 1e-30, "silu(\(v)) = \(s), expected \(exact)")
        }
        for (v, q) in zip(values, quickGELU(x).scalars) {
            let exact = Float(Double(v) / (1 + Foundation.exp(-1.702 * Double(v))))
            if v >= -30 {
                // The exponent 1.702·x is rounded to float32 first (as torch does): relative error up to
                // |1.702·x|·2⁻²⁴ on top of a few ulps.
                let amplification = Float(1.702 * abs(Double(v)) + 1)
                let relative: Float = amplification * abs(exact) / 8_388_608
                let bound: Float = 4 * exact.ulp.magnitude + relative
                #expect(abs(q - exact) <= bound, "quickGELU(\(v)) = \(q), expected \(exact)")
            } else {
                #expect(q <= 0 && q > -1e-20, "quickGELU(\(v)) = \(q) should vanish")  // |exact| < 2e-21
            }
        }
        let rows = randomTensor([5, 37], seed: 5, scale: 20)
        let sm = try softmax(rows).scalars
        let r = rows.scalars
        for i in 0..<5 {
            let row = r[(i * 37)..<((i + 1) * 37)].map(Double.init)
            let m = row.max()!
            let e = row.map { Foundation.exp($0 - m) }
            let sum = e.reduce(0, +)
            for j in 0..<37 { #expect(abs(Double(sm[i * 37 + j]) - e[j] / sum) <= 1e-6) }
        }
    }

    @Test func gegluMatchesFormula() throws {
        let x = randomTensor([2, 3, 10], seed: 6, scale: 3)
        let got = try geglu(x)
        #expect(got.shape == [2, 3, 5])
        let v = x.scalars
        for r in 0..<6 {
            for i in 0..<5 {
                let (h, g) = (Double(v[r * 10 + i]), Double(v[r * 10 + 5 + i]))
                let expected = h * 0.5 * g * (1 + erf(g / 2.0.squareRoot()))
                #expect(abs(Double(got.scalars[r * 5 + i]) - expected) <= 1e-6)
            }
        }
        #expect(throws: TensorError.self) { try geglu(Tensor(zeros: [2, 3])) }
    }

    /// Every kernel path this CPU runs (full vectors, then a tail) with the hidden half 1, so the output is the
    /// GELU of the gate itself: over gates in [−6, 6] (and ±0), within 1e-7·|g| (erf's 2e-7 absolute error,
    /// halved by the ½) plus 2 ulps of the result, against Double's erf; every path gives the portable path's bits.
    @Test(arguments: GEMMPath.available)
    func gegluVectorPathIsTheExactGELU(_ path: GEMMPath) throws {
        let (rows, d) = (30, 43)
        var values = [Float](repeating: 1, count: rows * 2 * d)
        for r in 0..<rows {
            for i in 0..<d { values[r * 2 * d + d + i] = -6 + 12 * Float(r * d + i) / Float(rows * d - 1) }
        }
        values[d] = -0.0
        values[d + 1] = 0
        let input = try Tensor(shape: [rows, 2 * d], values: values)
        let got = try geglu(input, path: path).scalars
        #expect(got == (try geglu(input, path: .portable).scalars), "\(path): not the portable path's bits")
        var worst = 0.0
        for r in 0..<rows {
            for i in 0..<d {
                let g = Double(values[r * 2 * d + d + i])
                let expected = 0.5 * g * (1 + erf(g / 2.0.squareRoot()))
                let diff = abs(Double(got[r * d + i]) - expected)
                worst = max(worst, diff)
                #expect(diff <= 1e-7 * abs(g) + 2.4e-7 * max(abs(expected), 1e-6), "gate \(g)")
            }
        }
        print("geglu vector path: largest difference from the exact GELU \(worst)")
    }

    @Test func residualAddAndTranspose() throws {
        let a = randomTensor([2, 3, 37], seed: 7)
        let b = randomTensor([2, 3, 37], seed: 8)
        #expect(try residualAdd(a, b, scale: 0.5).scalars == zip(a.scalars, b.scalars).map { ($0 + $1) * 0.5 })
        #expect(throws: TensorError.self) { try residualAdd(a, Tensor(zeros: [2, 3, 36])) }
        for shape in [[2, 70, 45], [1, 1, 9], [3, 33, 1]] {
            let x = randomTensor(shape, seed: 9)
            #expect(try transposeLastTwo(x).scalars == (try permute(x, [0, 2, 1])).scalars)
        }
    }

    @Test func upsampleToSizeAndPadding() throws {
        let x = randomTensor([1, 2, 3, 5], seed: 10)
        #expect(try upsampleNearest(x, height: 6, width: 10).scalars == (try upsampleNearest2x(x)).scalars)
        // torch: F.interpolate(x, size=(5, 7), mode="nearest") takes rows ⌊i·3/5⌋, columns ⌊j·5/7⌋.
        let odd = try upsampleNearest(x, height: 5, width: 7)
        for i in 0..<5 {
            for j in 0..<7 {
                #expect(odd[0, 1, i, j] == x[0, 1, i * 3 / 5, j * 5 / 7])
            }
        }
        let padded = try pad2d(x, top: 0, bottom: 1, left: 0, right: 1)
        #expect(padded.shape == [1, 2, 4, 6])
        #expect(padded[0, 1, 2, 4] == x[0, 1, 2, 4])
        #expect(padded[0, 1, 3, 2] == 0 && padded[0, 0, 1, 5] == 0)
    }

    /// `linear` and `conv2d` split their GEMMs over the kernel threads once the work is large; both sizes
    /// are checked against direct float64 sums, and small images of a batch that share one GEMM.
    @Test func splitGEMMKernelsMatchDirectSums() throws {
        for (rows, inF, outF) in [(3, 5, 7), (40, 200, 1000), (1030, 48, 64)] {
            let x = randomTensor([rows, inF], seed: 11)
            let w = randomTensor([outF, inF], seed: 12)
            let b = randomTensor([outF], seed: 13)
            let (xs, ws, bs) = (x.scalars, w.scalars, b.scalars)
            var direct = [Float](repeating: 0, count: rows * outF)
            for r in 0..<rows {
                for o in 0..<outF {
                    var acc = Double(bs[o])
                    for i in 0..<inF { acc += Double(xs[r * inF + i]) * Double(ws[o * inF + i]) }
                    direct[r * outF + o] = Float(acc)
                }
            }
            let got = try linear(x, weight: w, bias: b)
            #expect(error(got, try Tensor(shape: [rows, outF], values: direct)) <= 1e-5, "\(rows)×\(inF)→\(outF)")
        }
        for (shape, o, k, stride, padding) in [
            ([2, 5, 9, 8], 6, 3, 2, 1), ([1, 16, 40, 40], 32, 3, 1, 1), ([2, 64, 30, 30], 40, 1, 1, 0),
            ([1, 3, 6, 6], 4, 3, 2, 0), ([3, 6, 4, 5], 7, 3, 1, 1), ([3, 9, 5, 3], 4, 1, 1, 0),
        ] {
            let x = randomTensor(shape, seed: 14)
            let w = randomTensor([o, shape[1], k, k], seed: 15)
            let b = randomTensor([o], seed: 16)
            let got = try conv2d(x, weight: w, bias: b, stride: (stride, stride), padding: (padding, padding))
            let (n, c, h, wd) = (shape[0], shape[1], shape[2], shape[3])
            let (ho, wo) = ((h + 2 * padding - k) / stride + 1, (wd + 2 * padding - k) / stride + 1)
            let (xs, ws, bs) = (x.scalars, w.scalars, b.scalars)
            var direct = [Float](repeating: 0, count: n * o * ho * wo)
            for bi in 0..<n {
                for oc in 0..<o {
                    for oy in 0..<ho {
                        for ox in 0..<wo {
                            var acc = Double(bs[oc])
                            for ci in 0..<c {
                                for ky in 0..<k {
                                    for kx in 0..<k {
                                        let (iy, ix) = (oy * stride - padding + ky, ox * stride - padding + kx)
                                        guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                        acc +=
                                            Double(xs[((bi * c + ci) * h + iy) * wd + ix])
                                            * Double(ws[((oc * c + ci) * k + ky) * k + kx])
                                    }
                                }
                            }
                            direct[((bi * o + oc) * ho + oy) * wo + ox] = Float(acc)
                        }
                    }
                }
            }
            let expected = try Tensor(shape: [n, o, ho, wo], values: direct)
            #expect(error(got, expected) <= 1e-5, "\(shape) k\(k) s\(stride) p\(padding)")
        }
    }
}
