/// The float32 math of torch's AVX2 `normal_fill_16_AVX2`, lane by lane (docs/algorithms.md#torch-cpu-random-numbers).
///
/// Matches avx_mathfun's `log256_ps` and `sincos256_ps` (Cephes single-precision polynomials) as GCC compiles
/// them for torch, including the multiply-adds it contracts into FMAs; each `addingProduct` below is one FMA,
/// every other operation a rounded float32 operation.
enum TorchAVX2Math {
    /// Transforms `d[i..<i+16]` in place: uniforms → normals (`u1 = 1 − d[j]`, `u2 = d[j+8]`, j < 8).
    static func normalFill16(_ d: UnsafeMutableBufferPointer<Float>, at i: Int) {
        let twoPi: Float = 6.2831855  // f32(2π)
        for j in 0..<8 {
            let u1: Float = 1 - d[i + j]
            let u2 = d[i + j + 8]
            let radius = (Float(-2) * log(u1)).squareRoot()
            let theta = twoPi * u2
            let (s, c) = sincos(theta)
            // fmadd(n, std = 1, mean = 0) adds +0, which turns −0 into +0.
            d[i + j] = radius * c + 0
            d[i + j + 8] = radius * s + 0
        }
    }

    /// `log256_ps` for one lane (positive, normal inputs).
    static func log(_ input: Float) -> Float {
        let bits = input.bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) - 127) + 1
        let m = Float(bitPattern: (bits & ~0x7f80_0000) | Float(0.5).bitPattern)  // m ∈ [0.5, 1)
        let below = m < 0.707106781186547524
        var x: Float = m - 1
        if below { e -= 1 }
        x = x + (below ? m : 0)
        let z = x * x
        // Cephes log polynomial p0…p8, Horner form with one FMA per coefficient.
        var y: Float = 7.0376836292e-2
        y = Float(-1.1514610310e-1).addingProduct(y, x)
        y = Float(1.1676998740e-1).addingProduct(y, x)
        y = Float(-1.2420140846e-1).addingProduct(y, x)
        y = Float(1.4249322787e-1).addingProduct(y, x)
        y = Float(-1.6668057665e-1).addingProduct(y, x)
        y = Float(2.0000714765e-1).addingProduct(y, x)
        y = Float(-2.4999993993e-1).addingProduct(y, x)
        y = Float(3.3333331174e-1).addingProduct(y, x)
        let q1: Float = -2.12194440e-4
        let q2: Float = 0.693359375
        y = (e * q1).addingProduct(y * x, z)
        y = y.addingProduct(-z, 0.5)
        return (x + y).addingProduct(e, q2)
    }

    /// `sincos256_ps` for one lane with θ ≥ 0: returns (sin θ, cos θ).
    static func sincos(_ theta: Float) -> (Float, Float) {
        let fopi: Float = 1.27323954473516
        var j = Int32(theta * fopi)  // truncation, as cvttps
        j = (j + 1) & ~1
        let y = Float(j)
        let dp1: Float = -0.78515625
        let dp2: Float = -2.4187564849853515625e-4
        let dp3: Float = -3.77489497744594108e-8
        let x = theta.addingProduct(y, dp1).addingProduct(y, dp2).addingProduct(y, dp3)
        let z = x * x

        var c = Float(-1.388731625493765e-3).addingProduct(2.443315711809948e-5, z)
        c = Float(4.166664568298827e-2).addingProduct(c, z)
        c = c * z
        c = (-(z * 0.5)).addingProduct(c, z)
        c = c + 1

        var s = Float(8.3321608736e-3).addingProduct(-1.9515295891e-4, z)
        s = Float(-1.6666654611e-1).addingProduct(s, z)
        s = x.addingProduct(s * z, x)

        let polyIsSine = (j & 2) == 0
        // The kernel blends with masks and adds the two halves (value + 0).
        var sinV = (polyIsSine ? s : c) + 0
        var cosV = (polyIsSine ? c : s) + 0
        if j & 4 != 0 { sinV = -sinV }
        if (j &- 2) & 4 == 0 { cosV = -cosV }
        return (sinV, cosV)
    }
}
