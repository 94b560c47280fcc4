import Checkpoints
import Foundation

/// A CLIP image encoder read from disk, with the preprocessing settings stored beside it.
public struct LoadedCLIPEncoder: Sendable {
    public let encoder: CLIPVisionEncoder
    public let config: CLIPVisionConfig
    /// `preprocessor_config.json` next to the encoder, or the pipeline's `feature_extractor/` one; `nil` if none.
    public let preprocessor: CLIPPreprocessorConfig?
    /// The folder holding `config.json` and the weights.
    public let directory: URL
}

extension CLIPVisionEncoder {
    /// Loads an encoder folder (`config.json` + `model.safetensors` or `pytorch_model.bin`) or a diffusers
    /// pipeline folder (then its `image_encoder/`). Weights are bound strictly: missing, unused or mis-shaped
    /// tensors are errors naming the file and key.
    public static func load(directory: URL) throws -> LoadedCLIPEncoder {
        let fm = FileManager.default
        var dir = directory
        var pipelineRoot: URL? = nil
        if fm.fileExists(atPath: dir.appendingPathComponent("model_index.json").path) {
            let pipeline = try DiffusersPipelineFolder(url: dir)
            pipelineRoot = dir
            dir = try pipeline.component("image_encoder").directory
        } else if !fm.fileExists(atPath: dir.appendingPathComponent("config.json").path) {
            throw CheckpointError(
                file: directory.path,
                "not an encoder folder (no config.json) nor a pipeline folder (no model_index.json)")
        }
        let config = try CLIPVisionConfig.load(url: dir.appendingPathComponent("config.json"))
        let weights = WeightBinder(try loadTensorArchive(url: DiffusersPipelineFolder.weightsURL(in: dir)))
        let encoder = try CLIPVisionEncoder(config: config, weights: weights)
        try weights.finish()
        let root = pipelineRoot ?? dir.deletingLastPathComponent()
        let preprocessor = try DiffusersPipelineFolder.preprocessorConfigURL(component: dir, root: root).map {
            try CLIPPreprocessorConfig.load(url: $0)
        }
        return LoadedCLIPEncoder(encoder: encoder, config: config, preprocessor: preprocessor, directory: dir)
    }
}
