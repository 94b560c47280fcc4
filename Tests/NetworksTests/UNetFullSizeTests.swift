import Checkpoints
import Foundation
import Networks
import Tensors
import TestSupport
import Testing

/// The real lambdalabs/sd-image-variations-diffusers (v2.0) layout: its UNet config builds the full-size
/// network (made-up weights, as `varaudit bench` uses). Built only in debug builds (about 20 s, 3.4 GB);
/// release builds also run it on a small latent.
struct UNetFullSizeTests {
    @Test func fullSizeUNetBuildsAndRunsFromTheModelConfig() throws {
        let url = Fixtures.url("checkpoints/sd-image-variations/unet/config.json")
        let config = try UNet2DConditionConfig.load(url: url)
        let unet = try UNet2DConditionModel(config: config, weights: .random(seed: 3))
        #expect(unet.parameterCount == 859_520_964)  // diffusers' count for this config
        #if !DEBUG
            // 8×8 latent (64 px): every block runs, down to 1×1 in the last down block.
            let sample = Tensor(repeating: 0.5, shape: [1, 4, 8, 8])
            let context = Tensor(repeating: 0.1, shape: [1, 1, 768])
            let out = try unet(sample, timestep: 500, encoderHiddenStates: context)
            #expect(out.shape == [1, 4, 8, 8])
            let finite = out.scalars.allSatisfy { $0.isFinite }
            #expect(finite)
        #endif
    }
}
