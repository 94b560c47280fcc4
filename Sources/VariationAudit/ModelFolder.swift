import Checkpoints
import Diffusion
import Foundation
import Imaging
import Networks
import Safety
import Tensors

/// A diffusers image-variations pipeline folder, read once: `model_index.json` and where each component
/// (image encoder, UNet, VAE, scheduler, safety checker, feature extractor) lives. Everything that needs a
/// component of the model asks this value; nothing else reads `model_index.json` for an audit.
public struct ModelFolder: Sendable {
    /// The folder.
    public let url: URL
    /// The parsed `model_index.json`.
    public let pipeline: DiffusersPipelineFolder

    /// Reads `url/model_index.json`; errors name that file and the key at fault.
    public init(url: URL) throws {
        self.url = url.standardizedFileURL
        pipeline = try DiffusersPipelineFolder(url: self.url)
    }

    /// The folder of component `name` (`image_encoder`, `unet`, `vae`, `scheduler`, ...).
    public func component(_ name: String) throws -> URL { try pipeline.component(name).directory }

    /// The safety checker the pipeline lists, or nil (a pipeline saved with `safety_checker: [null, null]`).
    public var safetyChecker: SafetyCheckerLocation? { SafetyCheckerLocation.find(in: pipeline) }

    /// The weight file of each network component present (`image_encoder`, `unet`, `vae`, `safety_checker`): the
    /// one loaded for `precision` (float16 prefers the `fp16` variant files).
    public func weightFiles(
        precision: WeightPrecision = .float32
    ) throws -> [(component: String, url: URL)] {
        try ["image_encoder", "unet", "vae", "safety_checker"].compactMap { name in
            guard pipeline.components[name] != nil else { return nil }
            return (name, try pipeline.weightsURL(for: name, precision: precision))
        }
    }

    /// Builds the generation pipeline (weights bound strictly), its weight matrices in `weights` precision.
    public func loadPipeline(weights: WeightPrecision = .float32) throws -> ImageVariationPipeline {
        try ImageVariationPipeline.load(folder: pipeline, weights: weights)
    }

    /// The pipeline's own safety checker, or nil when it has none; its weight matrices in `weights` precision.
    public func loadSafetyChecker(weights: WeightPrecision = .float32) throws -> SafetyChecker? {
        try safetyChecker.map { try SafetyChecker(location: $0, weights: weights) }
    }

    /// The image encoder's CLIP preprocessing, as `varaudit embed --preprocess clip` applies it
    /// (`DiffusersPipelineFolder.preprocessorConfigURL`), else a plain square resize and crop to `image_size`.
    public func encoderPreprocessing(imageSize: Int) throws -> CLIPProcessorSettings {
        let encoder = try component("image_encoder")
        guard let found = DiffusersPipelineFolder.preprocessorConfigURL(component: encoder, root: url) else {
            return .square(imageSize)
        }
        return CLIPProcessorSettings(try CLIPPreprocessorConfig.load(url: found))
    }
}

/// The memorization embedding of pictures, as the audit computes it for inputs and variations and as
/// `varaudit embed --preprocess clip` does: the image encoder's `image_embeds` after CLIP preprocessing.
struct ImageEmbedder {
    let pipeline: ImageVariationPipeline
    let settings: CLIPProcessorSettings

    /// The encoder of `pipeline` with the model folder's CLIP preprocessing.
    init(pipeline: ImageVariationPipeline, folder: ModelFolder) throws {
        self.pipeline = pipeline
        settings = try folder.encoderPreprocessing(imageSize: pipeline.encoderConfig.imageSize)
    }

    /// Raw `image_embeds` `[n, D]`, `batch` pictures per forward pass (default: all at once).
    func embed(_ images: [RGBImage], batch: Int? = nil) throws -> Tensor {
        let size = pipeline.encoderConfig.imageSize
        let step = max(batch ?? images.count, 1)
        var rows: [Tensor] = []
        for start in stride(from: 0, to: images.count, by: step) {
            let pixels = try concat(
                images[start..<min(start + step, images.count)].map { image in
                    let x = try Preprocess.clip(image, settings: settings)
                    guard x.shape == [3, size, size] else {
                        throw VariationAuditError(
                            "CLIP preprocessing gives \(x.shape), but the image encoder takes \(size)×\(size) "
                                + "(check the model's preprocessor_config.json)")
                    }
                    return try x.reshaped([1, 3, size, size])
                }, axis: 0)
            rows.append(try pipeline.encoder(pixels).imageEmbeds)
        }
        return rows.count == 1 ? rows[0] : try concat(rows, axis: 0)
    }

    /// The embeddings as unit rows (`l2NormalizeRows`): the vectors memorization compares.
    func unitEmbeddings(_ images: [RGBImage], batch: Int? = nil) throws -> Tensor {
        var e = try embed(images, batch: batch)
        l2NormalizeRows(&e)
        return e
    }
}
