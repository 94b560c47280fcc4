import Foundation
import Tensors
import Testing

/// float16 ⇄ float32 conversion (the `CKernels` target), both paths, against Swift's own `Float16` conversions
/// (IEEE round to nearest even, as torch's `.half()`), and float16 weights widened per call.
struct Float16Tests {
    static let paths: [Float16Conversion.Path] = [.fastest, .portable]

    /// Every float16 bit pattern.
    static let allHalves = (0...UInt16.max).map { $0 }

    /// Floats that exercise rounding: every half and its neighbours, the midpoints between consecutive halves
    /// (ties) and their neighbours, overflow, float16 and float32 subnormals, NaNs, and a million random patterns.
    static let probeFloats: [Float] = {
        var out: [Float] = []
        for bits in allHalves {
            let h = Float16(bitPattern: bits)
            guard h.isFinite else { continue }
            let v = Float(h)
            out += [v, v.nextUp, v.nextDown]
            if h < .greatestFiniteMagnitude {
                let tie = (v + Float(h.nextUp)) / 2  // exact: halves have 11-bit significands
                out += [tie, tie.nextUp, tie.nextDown]
            }
        }
        out += [65504, 65519.996, 65520, 65520.004, 65536, 1e10, .greatestFiniteMagnitude, .infinity]
        out += [0x1p-24, 0x1p-25, Float(0x1p-25).nextUp, 0x1.8p-25, 0x1p-26, 0x1.8p-24, 0x1p-14, 0x1.ffcp-15]
        out += [.leastNonzeroMagnitude, .leastNormalMagnitude, 0x1p-140, 0]
        out += out.map { -$0 }
        out += [.nan, -.nan, .signalingNaN, Float(bitPattern: 0x7f80_0001), Float(bitPattern: 0xffc1_2345)]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<1_000_000 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            out.append(Float(bitPattern: UInt32(truncatingIfNeeded: state)))
        }
        return out
    }()

    @Test(arguments: paths)
    func widensEveryHalfExactly(path: Float16Conversion.Path) {
        let widened = Float16Conversion.widen(Self.allHalves, path: path)
        var mismatches = 0
        for (bits, f) in zip(Self.allHalves, widened) {
            let expected = Float(Float16(bitPattern: bits))
            if expected.isNaN {
                if !(f.isNaN && f.sign == expected.sign) { mismatches += 1 }
            } else if f.bitPattern != expected.bitPattern {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }

    @Test(arguments: paths)
    func narrowsToNearestEven(path: Float16Conversion.Path) {
        let narrowed = Float16Conversion.narrow(Self.probeFloats, path: path)
        var mismatches: [String] = []
        for (v, bits) in zip(Self.probeFloats, narrowed) {
            let expected = Float16(v)
            let ok =
                expected.isNaN
                ? Float16(bitPattern: bits).isNaN && Float16(bitPattern: bits).sign == expected.sign
                : bits == expected.bitPattern
            if !ok, mismatches.count < 5 {
                mismatches.append("\(v) (0x\(String(v.bitPattern, radix: 16))) → 0x\(String(bits, radix: 16))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test func bothPathsGiveTheSameBitsNaNsIncluded() {
        #expect(
            Float16Conversion.widen(Self.allHalves, path: .fastest).map(\.bitPattern)
                == Float16Conversion.widen(Self.allHalves, path: .portable).map(\.bitPattern))
        #expect(
            Float16Conversion.narrow(Self.probeFloats, path: .fastest)
                == Float16Conversion.narrow(Self.probeFloats, path: .portable))
        // Odd lengths exercise the vector loops' tails.
        for n in [0, 1, 7, 9, 17] {
            let values = Array(Self.probeFloats.prefix(n))
            #expect(Float16Conversion.narrow(values) == values.map { Float16($0).bitPattern })
        }
    }

    /// On a CPU with F16C the fast path must really use it (else the tests above only checked the scalar loop).
    @Test func usesF16CWhenTheCPUHasIt() throws {
        #if arch(x86_64)
            let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
            let has = flags.split(separator: " ").contains("f16c") && flags.split(separator: " ").contains("avx")
            #expect(Float16Conversion.usesF16C == has)
        #else
            #expect(!Float16Conversion.usesF16C)
        #endif
    }

    @Test func halfTensorsNarrowWidenAndReshape() throws {
        let t = try Tensor(shape: [2, 3], values: [1, -2.5, 0.1, 65520, 1e-8, 3.14159])
        let h = HalfTensor(narrowing: t)
        #expect(h.shape == [2, 3] && !h.storage.isBorrowed)
        #expect(h.bitPatterns == t.scalars.map { Float16($0).bitPattern })
        #expect(h.widened().scalars == t.scalars.map { Float(Float16($0)) })
        #expect(try h.reshaped([3, 2]).shape == [3, 2])
        #expect(throws: TensorError.self) { try h.reshaped([4, 2]) }
    }

    @Test func float32WeightsPassThroughWithoutCopy() throws {
        let t = try Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let w = WeightTensor(t, precision: .float32)
        #expect(w.precision == .float32)
        w.withFloat32 { #expect($0.storage === t.storage) }
    }

    @Test func float16WeightsWidenPerCallAndEscapedTensorsStayIntact() throws {
        let a = try Tensor(shape: [4, 3], values: (0..<12).map { Float($0) * 0.3 - 1 })
        let b = try Tensor(shape: [2, 2], values: [7, 8, 9, 10])
        let wa = WeightTensor(a, precision: .float16)
        let wb = WeightTensor(b, precision: .float16)
        #expect(wa.precision == .float16 && wa.shape == [4, 3] && wa.count == 12)
        let expected = a.scalars.map { Float(Float16($0)) }
        wa.withFloat32 { #expect($0.shape == [4, 3] && $0.scalars == expected) }
        // A tensor kept past the call is not overwritten by later widenings.
        let kept = wa.withFloat32 { $0 }
        for _ in 0..<3 { wb.withFloat32 { #expect($0.scalars == [7, 8, 9, 10]) } }
        #expect(kept.scalars == expected)
        // The kernels see a float32 tensor: a matrix product through the widened weight.
        let x = try Tensor(shape: [1, 3], values: [1, 0, -1])
        let y = try wa.withFloat32 { try linear(x, weight: $0) }
        #expect(maxDifference(y.scalars, try linear(x, weight: wa.widened()).scalars) == 0)
        #expect(try wa.reshaped([2, 6]).withFloat32 { $0.scalars } == expected)
    }

    private func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}
