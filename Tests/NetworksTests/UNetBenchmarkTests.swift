import Checkpoints
import Foundation
import Networks
import Tensors
import TestSupport
import Testing

/// Full-size timings with made-up weights, for comparing against PyTorch CPU (`tools/bench/`). Skipped unless
/// `VARAUDIT_BENCH=1`; meaningful only in a release build:
/// `VARAUDIT_BENCH=1 swift test -c release --filter UNetBenchmarkTests`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["VARAUDIT_BENCH"] == "1"), .serialized)
struct UNetBenchmarkTests {
    static let size = Int(ProcessInfo.processInfo.environment["VARAUDIT_BENCH_SIZE"] ?? "") ?? 256
    static let runs = Int(ProcessInfo.processInfo.environment["VARAUDIT_BENCH_RUNS"] ?? "") ?? 3

    func time(_ label: String, _ body: () throws -> Tensor) rethrows {
        var times: [Double] = []
        _ = try body()  // warm-up
        for _ in 0..<Self.runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        print(label, times.map { String(format: "%.3f", $0) }, String(format: "min %.3f s", times.min() ?? 0))
    }

    @Test func unetStep() throws {
        let config = try ModelPresets.sdV1UNet()
        let unet = try UNet2DConditionModel(config: config, weights: .random(seed: 1))
        let latent = Self.size / 8
        let x = Tensor(repeating: 0.1, shape: [2, 4, latent, latent])
        let context = Tensor(repeating: 0.05, shape: [2, 1, 768])
        try time("unet \(Self.size)px batch 2") { try unet(x, timestep: 500, encoderHiddenStates: context) }
    }

    @Test func vaeDecode() throws {
        let vae = try VAEDecoder(config: ModelPresets.sdV1VAE(), weights: .random(seed: 1))
        let z = Tensor(repeating: 0.1, shape: [1, 4, Self.size / 8, Self.size / 8])
        try time("vae \(Self.size)px batch 1") { try vae.decode(z) }
    }
}
