import Foundation
import Tensors

/// A stream of standard-normal float32 samples: where the initial latents and the per-step noise of the
/// stochastic schedulers (DDIM with eta > 0, Euler ancestral) come from.
///
/// Each call continues the stream, so the order of calls matters (the pipeline draws the latents first, then
/// the schedulers draw one tensor of the latent shape per step, exactly where diffusers does).
public protocol RandomSource {
    /// The next `shape.product` standard-normal samples, row-major.
    mutating func normal(shape: [Int]) -> Tensor
}

/// The MT19937 engine of PyTorch's CPU generator (`at::mt19937`): standard 32-bit Mersenne Twister.
struct MersenneTwister19937: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    /// `init_genrand(seed & 0xffffffff)`, as `torch.Generator().manual_seed(seed)` does.
    init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<624 {
            let prev = state[j - 1]
            state[j] = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(j)
        }
        index = 624
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7fff_ffff)
            var next = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { next ^= 0x9908_b0df }
            state[i] = next
        }
        index = 0
    }

    /// One tempered 32-bit output (`random()`).
    mutating func next32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// `random64()`: the first output in the high half, the second in the low half.
    mutating func next64() -> UInt64 {
        let hi = UInt64(next32())
        let lo = UInt64(next32())
        return (hi << 32) | lo
    }
}

/// `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` for float32, reproduced bit for
/// bit on x86 builds of torch (docs/algorithms.md#torch-cpu-random-numbers).
///
/// Matches torch's CPU `normal_kernel`: tensors of 16 or more elements use `normal_fill` with the AVX2
/// Box–Muller kernel (Cephes `log256_ps`/`sincos256_ps`; when the count is not a multiple of 16 the last 16
/// elements are redrawn and transformed again); smaller tensors use `at::normal_distribution<double>`, which
/// draws two `random64()` uniforms per pair and caches the second normal in the generator for the next
/// small draw. The cache survives large draws, exactly as in torch.
public struct TorchCPURandomSource: RandomSource, Sendable {
    private var engine: MersenneTwister19937
    /// `next_double_normal_sample_` of torch's `CPUGeneratorImpl`.
    private var cachedNormal: Double?

    /// A generator in the state of `torch.Generator("cpu").manual_seed(seed)`; only the low 32 bits of
    /// `seed` matter, as in torch (seeds 1 and 2³²+1 give the same stream).
    public init(seed: UInt64) {
        engine = MersenneTwister19937(seed: seed)
        cachedNormal = nil
    }

    /// The next `torch.randn(shape)` draw (float32, CPU).
    public mutating func normal(shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        var out = Tensor(zeros: shape)
        guard n > 0 else { return out }
        out.withUnsafeMutableBufferPointer { buf in
            if n >= 16 {
                fillLarge(buf)
            } else {
                for i in 0..<n { buf[i] = Float(nextDoubleNormal()) }
            }
        }
        return out
    }

    /// One float32 uniform in [0, 1) with 24 random bits (`uniform_real_distribution<float>`).
    private mutating func uniformFloat() -> Float {
        Float(engine.next32() & 0xff_ffff) * 0x1p-24
    }

    /// `normal_fill`: uniforms for every element, Box–Muller over blocks of 16, remainder block redrawn.
    private mutating func fillLarge(_ d: UnsafeMutableBufferPointer<Float>) {
        let n = d.count
        for i in 0..<n { d[i] = uniformFloat() }
        var i = 0
        while i + 16 <= n {
            TorchAVX2Math.normalFill16(d, at: i)
            i += 16
        }
        if n % 16 != 0 {
            let start = n - 16
            for k in 0..<16 { d[start + k] = uniformFloat() }
            TorchAVX2Math.normalFill16(d, at: start)
        }
    }

    /// `at::normal_distribution<double>` with mean 0 and std 1, using and refilling the generator's cache.
    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = Double(engine.next64() & ((1 << 53) - 1)) * 0x1p-53
        let u2 = Double(engine.next64() & ((1 << 53) - 1)) * 0x1p-53
        let r = (-2.0 * log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta)
    }
}

/// A fast, simple normal source for tests and for callers that do not need torch parity
/// (SplitMix64 uniforms, double-precision Box–Muller).
public struct SplitMixRandomSource: RandomSource, Sendable {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func normal(shape: [Int]) -> Tensor {
        var out = Tensor(zeros: shape)
        out.withUnsafeMutableBufferPointer { buf in
            var i = 0
            while i < buf.count {
                let (a, b) = generator.normalPair()
                buf[i] = Float(a)
                if i + 1 < buf.count { buf[i + 1] = Float(b) }
                i += 2
            }
        }
        return out
    }
}

/// Replays recorded tensors in order (e.g. noise saved from a reference run); once they run out, or when a
/// recorded tensor has another element count than asked for, it draws from `fallback` instead.
public struct ReplayRandomSource<Fallback: RandomSource>: RandomSource {
    /// Tensors still to be returned, first one next.
    public private(set) var pending: [Tensor]
    /// Where draws come from once `pending` is exhausted or does not fit.
    public var fallback: Fallback

    public init(_ tensors: [Tensor], fallback: Fallback) {
        pending = tensors
        self.fallback = fallback
    }

    public mutating func normal(shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        if let first = pending.first, first.count == n, let t = try? first.reshaped(shape) {
            pending.removeFirst()
            return t
        }
        return fallback.normal(shape: shape)
    }
}
