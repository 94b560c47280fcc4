import Checkpoints
import Diffusion
import Foundation
import Networks
import Tensors
import TestSupport
import Testing

/// The published lambdalabs/sd-image-variations-diffusers v2.0 layout (configs only, in
/// `Tests/Fixtures/checkpoints/sd-image-variations/`): it parses, its scheduler gives diffusers' timesteps, and its
/// image encoder and VAE build at full size (made-up weights). The full-size UNet is built in NetworksTests.
struct RealLayoutTests {
    let folder: DiffusersPipelineFolder

    init() throws { folder = try DiffusersPipelineFolder(url: Fixtures.url("checkpoints/sd-image-variations")) }

    @Test func schedulerMatchesDiffusersTimesteps() throws {
        // Expected values: docs/algorithms.md#pndm and #euler (checked against diffusers 0.42).
        var pndm = try makeScheduler(kind: nil, config: folder.schedulerConfig())
        try pndm.setTimesteps(50)
        #expect(pndm.kind == .pndm)
        #expect(pndm.timesteps.count == 51)
        #expect(Array(pndm.timesteps.prefix(4)) == [981, 961, 961, 941])
        #expect(pndm.timesteps.last == 1)
        var euler = try makeScheduler(kind: .euler, config: folder.schedulerConfig())
        try euler.setTimesteps(50)
        #expect(euler.timesteps.first == 999)
        #expect(abs(euler.initNoiseSigma - 14.614647) < 1e-5)
    }

    @Test func imageEncoderAndVAEBuildAtFullSize() throws {
        let clip = try folder.imageEncoderConfig()
        #expect(clip.hiddenSize == 1024 && clip.numHiddenLayers == 24 && clip.projectionDim == 768)
        _ = try CLIPVisionEncoder(config: clip, weights: .random())
        let vae = try VAEDecoder(config: folder.vaeConfig(), weights: .random())
        let z = Tensor(repeating: 0.1, shape: [1, 4, 4, 4])
        let image = try vae.decode(z)
        #expect(image.shape == [1, 3, 32, 32])
        #expect(try folder.vaeConfig().scalingFactor == 0.18215)  // absent in the 0.9.0 config: the default
        #expect(try folder.featureExtractorConfig().cropSize.height == 224)
    }
}
