import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014): a small, seedable generator for sampling, synthetic data and
/// procedural pictures. Not torch's generator (that is `TorchCPURandomSource` in `Diffusion`).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A pair of independent standard normal samples (Box–Muller in double precision).
    public mutating func normalPair() -> (Double, Double) {
        let u1 = (Double(next() >> 11) + 0.5) * 0x1p-53
        let u2 = Double(next() >> 11) * 0x1p-53
        let r = (-2.0 * log(u1)).squareRoot()
        return (r * cos(2 * Double.pi * u2), r * sin(2 * Double.pi * u2))
    }

    /// One standard normal sample (the first of a Box–Muller pair), in float32.
    public mutating func gaussian() -> Float { Float(normalPair().0) }
}
