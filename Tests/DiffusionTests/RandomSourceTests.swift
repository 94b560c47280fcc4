import Checkpoints
import Diffusion
import Foundation
import Tensors
import TestSupport
import Testing

/// TorchCPURandomSource against `torch.randn(shape, generator=torch.Generator().manual_seed(seed))` (torch 2.15,
/// x86 AVX2 kernel; `tools/fixtures/make_schedulers.py`). Each seed runs the same sequence of calls on one
/// generator: the large AVX2 path (numel ≥ 16), the remainder rule (17, 252 elements), the small double path with
/// its cached second normal ((3,5) → 15 values leave one cached; (17,) does not touch it; the next (3,5) and (1,)
/// consume it), and further calls continuing the stream.
/// Tolerance: 1e-6 absolute; observed: 0 (bit-exact) on this x86-64 machine.
struct RandomSourceTests {
    static let seeds: [UInt64] = [0, 42, 4_294_967_297]
    static let calls: [[Int]] = [
        [1, 4, 64, 64], [2, 4, 32, 32], [4, 4, 8, 8], [3, 5], [17], [1, 4, 9, 7], [3, 5], [1],
        [4, 4, 8, 8],
    ]

    @Test(arguments: seeds)
    func matchesTorchRandn(seed: UInt64) throws {
        let ref = try Fixtures.tensors("schedulers/random.safetensors")
        var rng = TorchCPURandomSource(seed: seed)
        for (k, shape) in Self.calls.enumerated() {
            let expected = try ref.tensor(named: "seed\(seed).call\(k)")
            let actual = rng.normal(shape: shape)
            #expect(actual.shape == expected.shape)
            let err = maxAbsDifference(actual.scalars, expected.scalars)
            #expect(err <= 1e-6, "seed \(seed) call \(k) shape \(shape): max abs error \(err)")
            #expect(err == 0, "seed \(seed) call \(k): expected bit-exact on x86 (AVX2 recipe), got \(err)")
        }
    }

    @Test func knownValuesSeedZero() {
        var big = TorchCPURandomSource(seed: 0)
        let b = big.normal(shape: [16]).scalars
        #expect(Array(b.prefix(4)) == [-1.1258398, -1.1523602, -0.25057858, -0.4338788])
        var small = TorchCPURandomSource(seed: 0)
        let s = small.normal(shape: [8]).scalars
        let expected: [Float] = [
            1.5409961, -0.2934289, -2.1787894, 0.56843126, -1.0845224, -1.3985955, 0.40334684,
            0.83802634,
        ]
        #expect(s == expected)
    }

    /// Seeds are taken modulo 2³², as torch does: 2³²+1 and 1 give the same stream.
    @Test func seedIsTruncatedTo32Bits() {
        var a = TorchCPURandomSource(seed: 1)
        var b = TorchCPURandomSource(seed: (1 << 32) + 1)
        #expect(a.normal(shape: [1, 4, 8, 8]).scalars == b.normal(shape: [1, 4, 8, 8]).scalars)
        #expect(a.normal(shape: [5]).scalars == b.normal(shape: [5]).scalars)
    }

    /// One large draw equals the same count drawn in two calls when both are multiples of 16.
    @Test func streamContinuesAcrossCalls() {
        var one = TorchCPURandomSource(seed: 7)
        var two = TorchCPURandomSource(seed: 7)
        let whole = one.normal(shape: [2, 256]).scalars
        let parts = two.normal(shape: [256]).scalars + two.normal(shape: [256]).scalars
        #expect(whole == parts)
    }

    @Test func emptyShapeDrawsNothing() {
        var a = TorchCPURandomSource(seed: 3)
        var b = TorchCPURandomSource(seed: 3)
        #expect(a.normal(shape: [0, 4]).count == 0)
        #expect(a.normal(shape: [32]).scalars == b.normal(shape: [32]).scalars)
    }

    @Test func splitMixIsDeterministicAndRoughlyStandard() {
        var a = SplitMixRandomSource(seed: 11)
        var b = SplitMixRandomSource(seed: 11)
        let x = a.normal(shape: [4, 1000]).scalars
        #expect(x == b.normal(shape: [4, 1000]).scalars)
        let mean = x.reduce(0, +) / Float(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(x.count)
        #expect(abs(mean) < 0.05)
        #expect(abs(variance - 1) < 0.1)
    }

    @Test func replayReturnsRecordedTensorsThenFallsBack() throws {
        let recorded = try Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        var replay = ReplayRandomSource([recorded], fallback: TorchCPURandomSource(seed: 0))
        #expect(replay.normal(shape: [4]).scalars == [1, 2, 3, 4])
        var torch = TorchCPURandomSource(seed: 0)
        #expect(replay.normal(shape: [16]).scalars == torch.normal(shape: [16]).scalars)
    }
}
