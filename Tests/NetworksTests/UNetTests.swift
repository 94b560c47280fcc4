import Checkpoints
import Foundation
import Networks
import Tensors
import TestSupport
import Testing

/// UNet2DConditionModel against diffusers on two random-weight configs that differ in block count, channels,
/// heads, layers, transformer depth, cross-attention width, projection kind, time projection and weight format
/// (`tools/fixtures/make_unet_vae.py`). Tolerance: 1e-4 relative (floor: 1% of the largest reference magnitude),
/// against diffusers' float32 output and against diffusers run in float64. (diffusers' own float32 output is
/// 2–5e-5 from its float64 output by this measure: the fixtures' wide weights make rounding visible.)
struct UNetTests {
    static let models = ["tiny-a", "tiny-b"]
    let tolerance: Float = 1e-4

    static func weightsURL(_ name: String) -> URL {
        let dir = Fixtures.url("unet/\(name)")
        return ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"].map {
            dir.appendingPathComponent($0)
        }.first { FileManager.default.fileExists(atPath: $0.path) }!
    }

    static func config(_ name: String) throws -> UNet2DConditionConfig {
        try UNet2DConditionConfig.load(url: Fixtures.url("unet/\(name)/config.json"))
    }

    static func load(_ name: String) throws -> UNet2DConditionModel {
        let binder = WeightBinder(try loadTensorArchive(url: weightsURL(name)))
        let unet = try UNet2DConditionModel(config: config(name), weights: binder)
        try binder.finish()
        return unet
    }

    @Test(arguments: models)
    func outputsMatchDiffusers(_ name: String) throws {
        let unet = try Self.load(name)
        let ref = try Fixtures.tensors("unet/\(name)/expected.safetensors")
        let sample = try ref.tensor(named: "sample")
        let timesteps = try ref.tensor(named: "timesteps").scalars
        for ctx in ["l1", "l3"] {
            let context = try ref.tensor(named: "context_\(ctx)")
            for (i, t) in timesteps.enumerated() {
                let out = try unet(sample, timestep: t, encoderHiddenStates: context)
                // diffusers' float32 output, and the same in float64 (what both roundings approximate).
                for key in ["out", "out64"] {
                    let err = relativeError(out, try ref.tensor(named: "\(key)_\(ctx)_t\(i)"))
                    #expect(err <= tolerance, "\(name) \(key) context \(ctx) t=\(t): relative error \(err)")
                }
            }
        }
    }

    /// The fixtures exercise what they claim to: the two configs differ where the tests rely on it.
    @Test func fixtureConfigsDiffer() throws {
        let (a, b) = (try Self.config("tiny-a"), try Self.config("tiny-b"))
        #expect(a.blockOutChannels.count != b.blockOutChannels.count)
        #expect(a.useLinearProjection != b.useLinearProjection)
        #expect(a.crossAttentionDim != b.crossAttentionDim)
        #expect(a.headsPerBlock != b.headsPerBlock)
        #expect(a.layersPerBlock != b.layersPerBlock)
        #expect(Self.weightsURL("tiny-a").pathExtension != Self.weightsURL("tiny-b").pathExtension)
    }

    /// Expects a `CheckpointError` whose key contains `key`.
    func expectError(naming key: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error naming \(key)")
        } catch let error as CheckpointError {
            #expect(error.key?.contains(key) == true, "error \(error) does not name \(key)")
        } catch {
            Issue.record("expected a CheckpointError naming \(key), got \(error)")
        }
    }

    @Test func missingUnusedAndMisshapedWeightsAreErrorsNamingTheKey() throws {
        let config = try Self.config("tiny-a")
        let all = try loadTensorArchive(url: Self.weightsURL("tiny-a")).loadAll()
        let key = "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight"
        #expect(all[key] != nil)

        var missing = all
        missing[key] = nil
        expectError(naming: key) {
            _ = try UNet2DConditionModel(config: config, weights: WeightBinder(tensors: missing, name: "tiny-a"))
        }

        var misshaped = all
        misshaped[key] = Tensor(zeros: [8, 23])
        expectError(naming: key) {
            _ = try UNet2DConditionModel(config: config, weights: WeightBinder(tensors: misshaped, name: "tiny-a"))
        }

        var extra = all
        extra["down_blocks.0.attentions.0.transformer_blocks.1.norm1.weight"] = Tensor(zeros: [8])
        let binder = WeightBinder(tensors: extra, name: "tiny-a")
        _ = try UNet2DConditionModel(config: config, weights: binder)
        do {
            try binder.finish()
            Issue.record("unused key not reported")
        } catch let error as CheckpointError {
            #expect(error.description.contains("down_blocks.0.attentions.0.transformer_blocks.1.norm1.weight"))
        }
    }

    @Test func unsupportedConfigValuesAreErrorsNamingTheKey() throws {
        let weights = try loadTensorArchive(url: Self.weightsURL("tiny-a"))
        func build(_ edit: (inout UNet2DConditionConfig) -> Void) throws {
            var config = try Self.config("tiny-a")
            edit(&config)
            _ = try UNet2DConditionModel(config: config, weights: WeightBinder(weights))
        }
        expectError(naming: "num_attention_heads") { try build { $0.numAttentionHeads = [2, 2] } }
        expectError(naming: "only_cross_attention") { try build { $0.onlyCrossAttention = [true, false] } }
        expectError(naming: "resnet_time_scale_shift") { try build { $0.resnetTimeScaleShift = "scale_shift" } }
        expectError(naming: "num_class_embeds") { try build { $0.numClassEmbeds = 10 } }
        expectError(naming: "attention_head_dim") { try build { $0.attentionHeadDim = [3, 3] } }
        // From JSON too: the error names the file's key.
        var json = try String(contentsOf: Fixtures.url("unet/tiny-a/config.json"), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"DownBlock2D\"", with: "\"SimpleCrossAttnDownBlock2D\"")
        expectError(naming: "down_block_types") { _ = try UNet2DConditionConfig.decode(Data(json.utf8)) }
    }

    @Test func wrongInputShapesAreErrors() throws {
        let unet = try Self.load("tiny-a")
        let context = Tensor(zeros: [2, 1, 24])
        #expect(throws: TensorError.self) {
            try unet(Tensor(zeros: [2, 3, 8, 8]), timestep: 1, encoderHiddenStates: context)
        }
        #expect(throws: TensorError.self) {
            try unet(Tensor(zeros: [2, 4, 8, 8]), timestep: 1, encoderHiddenStates: Tensor(zeros: [2, 1, 23]))
        }
        #expect(throws: TensorError.self) {
            try unet(Tensor(zeros: [2, 4, 8, 8]), timestep: 1, encoderHiddenStates: Tensor(zeros: [1, 1, 24]))
        }
    }

    /// The single-token shortcut agrees with the general attention path on a context of three equal tokens
    /// (softmax then weighs identical values by 1/3 each: equal up to rounding).
    @Test func singleTokenShortcutEqualsFullAttention() throws {
        let unet = try Self.load("tiny-b")
        let ref = try Fixtures.tensors("unet/tiny-b/expected.safetensors")
        let sample = try ref.tensor(named: "sample")
        let one = try ref.tensor(named: "context_l1")  // [2, 1, 20]
        let three = try concat([one, one, one], axis: 1)  // [2, 3, 20]
        let a = try unet(sample, timestep: 500, encoderHiddenStates: one)
        let b = try unet(sample, timestep: 500, encoderHiddenStates: three)
        #expect(relativeError(a, b) <= 1e-4)
    }
}
