import Checkpoints
import Foundation
import Imaging
import Networks
import Tensors
import TestSupport
import Testing

/// CLIPVisionEncoder against transformers' CLIPVisionModelWithProjection on two random-weight configs that
/// differ in every size field and in activation (`tools/fixtures/make_clip.py`): quick GELU (fused into fc1's
/// GEMM) and exact GELU (a separate pass).
/// Tolerance: 1e-4 relative (floor: 1% of the largest reference magnitude).
struct CLIPVisionEncoderTests {
    static let models = ["tiny-a", "tiny-b"]
    let tolerance: Float = 1e-4

    func load(_ name: String) throws -> (CLIPVisionEncoder, SafeTensorsFile, CLIPVisionConfig) {
        let dir = Fixtures.url("clip/\(name)")
        let config = try CLIPVisionConfig.load(url: dir.appendingPathComponent("config.json"))
        let weightsFile = ["model.safetensors", "pytorch_model.bin"].map { dir.appendingPathComponent($0) }
            .first { FileManager.default.fileExists(atPath: $0.path) }!
        let binder = WeightBinder(try loadTensorArchive(url: weightsFile))
        let encoder = try CLIPVisionEncoder(config: config, weights: binder)
        try binder.finish()
        return (encoder, try SafeTensorsFile(url: dir.appendingPathComponent("expected.safetensors")), config)
    }

    /// The network alone, on the reference's own pixel values.
    @Test(arguments: models)
    func embeddingsMatchTransformers(_ name: String) throws {
        let (encoder, ref, _) = try load(name)
        for mode in ["seed", "clip"] {
            let (embeds, pooled) = try encoder(ref.tensor(named: "pixels_\(mode)"))
            #expect(try relativeError(embeds, ref.tensor(named: "embeds_\(mode)")) <= tolerance, "\(name) \(mode)")
            #expect(try relativeError(pooled, ref.tensor(named: "pooled_\(mode)")) <= tolerance, "\(name) \(mode)")
        }
    }

    /// Every token through every layer (`last_hidden_state`) against transformers; the encoder's pooled output
    /// computes only the class token's row of the last layer, so this is the full path's own check.
    @Test(arguments: models)
    func lastHiddenStateMatchesTransformers(_ name: String) throws {
        let (encoder, ref, _) = try load(name)
        for mode in ["seed", "clip"] {
            let hidden = try encoder.tower.lastHiddenState(ref.tensor(named: "pixels_\(mode)"))
            #expect(try relativeError(hidden, ref.tensor(named: "hidden_\(mode)")) <= tolerance, "\(name) \(mode)")
        }
    }

    /// Decode → our preprocessing → encoder, on the photographs, against the reference end to end.
    @Test(arguments: models)
    func photographsEndToEnd(_ name: String) throws {
        let (encoder, ref, config) = try load(name)
        let photos = try FileManager.default.contentsOfDirectory(atPath: Fixtures.url("photos").path).sorted()
        let images = try photos.map { try RGBImage.load(contentsOf: Fixtures.url("photos/\($0)")) }
        var settings = CLIPProcessorSettings()
        settings.shortestEdge = config.imageSize
        settings.cropHeight = config.imageSize
        settings.cropWidth = config.imageSize
        for mode in PreprocessMode.allCases {
            let pixels = try concat(
                images.map { image in
                    let x =
                        mode == .seed
                        ? try Preprocess.seed(image, size: config.imageSize)
                        : try Preprocess.clip(image, settings: settings)
                    return try x.reshaped([1] + x.shape)
                }, axis: 0)
            #expect(try maxAbsDifference(pixels.scalars, ref.tensor(named: "pixels_\(mode)").scalars) <= 1e-5)
            let (embeds, _) = try encoder(pixels)
            #expect(try relativeError(embeds, ref.tensor(named: "embeds_\(mode)")) <= tolerance, "\(name) \(mode)")
        }
    }

    @Test func wrongInputSizeAndUnknownActivationAreErrors() throws {
        let (encoder, _, config) = try load("tiny-a")
        #expect(throws: TensorError.self) {
            try encoder(Tensor(zeros: [1, 3, config.imageSize + 1, config.imageSize]))
        }
        var bad = config
        bad.hiddenAct = "relu6"
        let binder = WeightBinder(try loadTensorArchive(url: Fixtures.url("clip/tiny-a/model.safetensors")))
        #expect(throws: CheckpointError.self) { try CLIPVisionEncoder(config: bad, weights: binder) }
    }

    @Test func missingAndUnusedWeightsAreErrors() throws {
        let archive = try loadTensorArchive(url: Fixtures.url("clip/tiny-a/model.safetensors"))
        var tensors = try archive.loadAll()
        let config = try CLIPVisionConfig.load(url: Fixtures.url("clip/tiny-a/config.json"))
        tensors["extra.weight"] = Tensor(zeros: [2])
        let extra = WeightBinder(tensors: tensors, name: "tiny-a")
        _ = try CLIPVisionEncoder(config: config, weights: extra)
        #expect(throws: CheckpointError.self) { try extra.finish() }
        tensors["extra.weight"] = nil
        tensors["visual_projection.weight"] = nil
        #expect(throws: CheckpointError.self) {
            try CLIPVisionEncoder(config: config, weights: WeightBinder(tensors: tensors, name: "tiny-a"))
        }
    }
}
