import Checkpoints
import Foundation
import Networks
import Tensors
import TestSupport
import Testing

/// VAEDecoder against diffusers' `AutoencoderKL.decode` on two random-weight configs (`tools/fixtures/
/// make_unet_vae.py`): tiny-a in safetensors with current attention names, tiny-b in `.bin` with the
/// diffusers-0.9 names (`query`/`key`/`value`/`proj_attn`) and a 0.9-era config. Tolerance: 1e-4 relative
/// (floor: 1% of the largest reference magnitude) against diffusers run in float64; against diffusers' float32
/// output, 1e-4 plus that output's own distance from the float64 one (2–7e-5 by this measure).
struct VAETests {
    static let models = ["tiny-a", "tiny-b"]
    let tolerance: Float = 1e-4

    static func weightsURL(_ name: String) -> URL {
        let dir = Fixtures.url("vae/\(name)")
        return ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"].map {
            dir.appendingPathComponent($0)
        }.first { FileManager.default.fileExists(atPath: $0.path) }!
    }

    static func config(_ name: String) throws -> AutoencoderKLConfig {
        try AutoencoderKLConfig.load(url: Fixtures.url("vae/\(name)/config.json"))
    }

    @Test(arguments: models)
    func decodeMatchesDiffusers(_ name: String) throws {
        let binder = WeightBinder(try loadTensorArchive(url: Self.weightsURL(name)))
        let vae = try VAEDecoder(config: Self.config(name), weights: binder)
        try binder.finish()  // encoder.* and quant_conv.* are ignored on purpose; nothing else is left
        let ref = try Fixtures.tensors("vae/\(name)/expected.safetensors")
        let image = try vae.decode(ref.tensor(named: "latents"))
        // Against diffusers run in float64 (the exact result, to float32 rounding): the tolerance as it stands.
        let exact = try ref.tensor(named: "image64")
        let err64 = relativeError(image, exact)
        #expect(err64 <= tolerance, "\(name) image64: relative error \(err64)")
        // Against diffusers' float32 output, which carries its own rounding (its distance from the float64
        // result, measured here from the fixture): by the triangle inequality two float32 results each within
        // the tolerance of the exact one can be that much further apart.
        let diffusers32 = try ref.tensor(named: "image")
        let own = relativeError(diffusers32, exact)
        let err32 = relativeError(image, diffusers32)
        #expect(err32 <= tolerance + own, "\(name) image: relative error \(err32) (diffusers' own: \(own))")
    }

    @Test func oldAttentionNamesAreTheOnesInTinyB() throws {
        let keys = try loadTensorArchive(url: Self.weightsURL("tiny-b")).keys
        #expect(keys.contains("decoder.mid_block.attentions.0.proj_attn.weight"))
        #expect(!keys.contains { $0.contains("to_out") })
        let current = try loadTensorArchive(url: Self.weightsURL("tiny-a")).keys
        #expect(current.contains("decoder.mid_block.attentions.0.to_out.0.weight"))
        #expect(try Self.config("tiny-b").scalingFactor == 0.18215)  // the 0.9-era config has no key
    }

    func expectError(naming key: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error naming \(key)")
        } catch let error as CheckpointError {
            #expect(
                error.key?.contains(key) == true || error.description.contains(key), "\(error) does not name \(key)")
        } catch {
            Issue.record("expected a CheckpointError naming \(key), got \(error)")
        }
    }

    @Test func missingUnusedAndMisshapedWeightsAreErrorsNamingTheKey() throws {
        for name in Self.models {
            let config = try Self.config(name)
            let all = try loadTensorArchive(url: Self.weightsURL(name)).loadAll()
            let attn = name == "tiny-a" ? "to_v" : "value"
            for key in ["decoder.up_blocks.1.resnets.0.conv1.weight", "decoder.mid_block.attentions.0.\(attn).bias"] {
                #expect(all[key] != nil)
                var missing = all
                missing[key] = nil
                expectError(naming: key) { _ = try VAEDecoder(config: config, weights: WeightBinder(tensors: missing)) }
                var misshaped = all
                misshaped[key] = Tensor(zeros: [1, 2, 3])
                expectError(naming: key) {
                    _ = try VAEDecoder(config: config, weights: WeightBinder(tensors: misshaped))
                }
            }
            var extra = all
            extra["decoder.up_blocks.0.attentions.0.to_q.weight"] = Tensor(zeros: [2, 2])
            let binder = WeightBinder(tensors: extra)
            _ = try VAEDecoder(config: config, weights: binder)
            expectError(naming: "decoder.up_blocks.0.attentions.0.to_q.weight") { try binder.finish() }
        }
    }

    /// A checkpoint holding both names for one tensor keeps the old one unused, as diffusers would refuse it.
    @Test func bothAttentionNamesLeaveOneUnused() throws {
        var all = try loadTensorArchive(url: Self.weightsURL("tiny-a")).loadAll()
        all["decoder.mid_block.attentions.0.query.weight"] = all["decoder.mid_block.attentions.0.to_q.weight"]
        let binder = WeightBinder(tensors: all)
        _ = try VAEDecoder(config: Self.config("tiny-a"), weights: binder)
        expectError(naming: "decoder.mid_block.attentions.0.query.weight") { try binder.finish() }
    }

    @Test func unsupportedConfigValuesAreErrorsNamingTheKey() throws {
        let weights = try loadTensorArchive(url: Self.weightsURL("tiny-a"))
        var config = try Self.config("tiny-a")
        config.upBlockTypes[0] = "AttnUpDecoderBlock2D"
        expectError(naming: "up_block_types") { _ = try VAEDecoder(config: config, weights: WeightBinder(weights)) }
        config = try Self.config("tiny-a")
        config.actFn = "gelu"
        expectError(naming: "act_fn") { _ = try VAEDecoder(config: config, weights: WeightBinder(weights)) }
    }

    @Test func wrongLatentShapeIsAnError() throws {
        let vae = try VAEDecoder(
            config: Self.config("tiny-a"), weights: WeightBinder(try loadTensorArchive(url: Self.weightsURL("tiny-a"))))
        #expect(throws: TensorError.self) { try vae.decode(Tensor(zeros: [1, 3, 4, 4])) }
    }
}

/// The real lambdalabs/sd-image-variations-diffusers (v2.0) VAE config builds the full-size decoder (made-up
/// weights) and decodes a small latent.
struct VAEFullSizeTests {
    @Test func fullSizeDecoderBuildsAndRunsFromTheModelConfig() throws {
        let url = Fixtures.url("checkpoints/sd-image-variations/vae/config.json")
        let vae = try VAEDecoder(config: AutoencoderKLConfig.load(url: url), weights: .random(seed: 4))
        #expect(vae.parameterCount == 49_490_199)  // diffusers' count: decoder + post_quant_conv
        let image = try vae.decode(Tensor(repeating: 0.3, shape: [1, 4, 4, 6]))
        #expect(image.shape == [1, 3, 32, 48])
        let finite = image.scalars.allSatisfy { $0.isFinite }
        #expect(finite)
    }
}
