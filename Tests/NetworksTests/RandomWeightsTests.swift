import Checkpoints
import Networks
import Tensors
import TestSupport
import Testing

/// Networks built from made-up weights (what `varaudit bench` runs at full size).
struct RandomWeightsTests {
    @Test func randomBinderBuildsAnEncoderDeterministically() throws {
        let config = try CLIPVisionConfig.load(url: Fixtures.url("clip/tiny-b/config.json"))
        let a = try CLIPVisionEncoder(config: config, weights: .random(seed: 7))
        let b = try CLIPVisionEncoder(config: config, weights: .random(seed: 7))
        let c = try CLIPVisionEncoder(config: config, weights: .random(seed: 8))
        let x = Tensor(repeating: 0.25, shape: [1, 3, config.imageSize, config.imageSize])
        let ea = try a(x).imageEmbeds.scalars
        #expect(ea.count == config.projectionDim)
        #expect(ea.allSatisfy { $0.isFinite })
        #expect(ea == (try b(x).imageEmbeds.scalars))
        #expect(ea != (try c(x).imageEmbeds.scalars))
        let binder = WeightBinder.random()
        #expect(!binder.contains("anything"))
        #expect(try binder.takeIfPresent("x", shape: [2]) == nil)
        #expect(try binder.take("norm.weight", shape: [3]).scalars == [1, 1, 1])
        try binder.finish()
    }
}
