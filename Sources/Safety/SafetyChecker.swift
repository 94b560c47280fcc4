import Checkpoints
import Foundation
import Imaging
import Networks
import Tensors

/// Where a safety checker's files are.
public struct SafetyCheckerLocation: Sendable, Equatable {
    /// The `safety_checker/` folder (`config.json` and the weights).
    public var checker: URL
    /// `feature_extractor/preprocessor_config.json`, if present (else transformers' defaults are used).
    public var preprocessorConfig: URL?

    /// The checker a pipeline lists (`safety_checker`), with its `feature_extractor` settings; `nil` when the
    /// pipeline has none.
    public static func find(in pipeline: DiffusersPipelineFolder) -> SafetyCheckerLocation? {
        guard let checker = pipeline.components["safety_checker"]?.directory else { return nil }
        return locate(checker: checker, root: pipeline.url)
    }

    static func locate(checker: URL, root: URL) -> SafetyCheckerLocation {
        SafetyCheckerLocation(
            checker: checker,
            preprocessorConfig: DiffusersPipelineFolder.preprocessorConfigURL(component: checker, root: root))
    }

    /// Finds the checker in `directory`: a diffusers pipeline folder (its `safety_checker` component), a folder
    /// holding `safety_checker/`, or the `safety_checker/` folder itself. The preprocessor config is the
    /// sibling `feature_extractor/preprocessor_config.json` (or one inside the checker folder). `nil` when
    /// there is no checker (e.g. a pipeline saved with `safety_checker: [null, null]`).
    public static func find(in directory: URL) throws -> SafetyCheckerLocation? {
        let fm = FileManager.default
        func exists(_ u: URL) -> Bool { fm.fileExists(atPath: u.path) }
        var checker: URL?
        var root = directory
        if exists(directory.appendingPathComponent("model_index.json")) {
            return find(in: try DiffusersPipelineFolder(url: directory))
        } else if exists(directory.appendingPathComponent("safety_checker/config.json")) {
            checker = directory.appendingPathComponent("safety_checker", isDirectory: true)
        } else if exists(directory.appendingPathComponent("config.json")) {
            checker = directory
            root = directory.deletingLastPathComponent()
        }
        guard let checker else { return nil }
        return locate(checker: checker, root: root)
    }
}

/// diffusers' `StableDiffusionSafetyChecker`: a CLIP vision tower (pooled output) and `visual_projection`
/// (no bias) give the image embedding, which is compared with the checkpoint's `concept_embeds` and
/// `special_care_embeds` (or any `ConceptSet`). Inputs are preprocessed like transformers'
/// `CLIPImageProcessor` with the pipeline's `feature_extractor` settings (`Preprocess.clip`).
public struct SafetyChecker: Sendable {
    /// The vision tower's config (from the composite `CLIPConfig`).
    public let config: CLIPVisionConfig
    /// Preprocessing of checker inputs.
    public let preprocessing: CLIPProcessorSettings
    /// The checkpoint's own concepts and thresholds (names `concept_N`, `special_N`).
    public let builtInConcepts: ConceptSet
    /// The weights file read.
    public let weightsURL: URL
    /// Where the checker was found.
    public let location: SafetyCheckerLocation
    let tower: CLIPVisionTransformer
    let projection: WeightTensor  // [P, hidden]

    /// The projection width (size of image embeddings and concept embeddings).
    public var embeddingSize: Int { config.projectionDim }

    /// Loads the checker in `directory` (see `SafetyCheckerLocation.find`). Weights are bound strictly: the tower
    /// under `vision_model.vision_model.*` (transformers 4 layout, as in CompVis' checkpoint) or
    /// `vision_model.*` (transformers 5 `save_pretrained`), `visual_projection.weight`, and the concept tensors
    /// whose counts are read from the checkpoint. `weights` float16 keeps the tower's and the projection's
    /// matrices in float16 (from `model.fp16.safetensors` when present).
    public init(directory: URL, weights precision: WeightPrecision = .float32) throws {
        guard let location = try SafetyCheckerLocation.find(in: directory) else {
            throw SafetyError(
                file: directory.path,
                "no safety checker (expected a pipeline folder listing safety_checker, a folder holding "
                    + "safety_checker/, or a safety_checker folder with config.json)")
        }
        try self.init(location: location, weights: precision)
    }

    /// Loads the checker at `location`, its weight matrices in `precision`.
    public init(location: SafetyCheckerLocation, weights precision: WeightPrecision = .float32) throws {
        self.location = location
        config = try CLIPVisionConfig.load(url: location.checker.appendingPathComponent("config.json"))
        if let url = location.preprocessorConfig {
            preprocessing = CLIPProcessorSettings(try CLIPPreprocessorConfig.load(url: url))
        } else {
            preprocessing = CLIPProcessorSettings(try CLIPPreprocessorConfig.decode(Data("{}".utf8)))
        }
        weightsURL = try DiffusersPipelineFolder.weightsURL(in: location.checker, precision: precision)
        let archive = try loadTensorArchive(url: weightsURL)
        let w = WeightBinder(archive, precision: precision)
        let nested = archive.contains("vision_model.vision_model.embeddings.class_embedding")
        tower = try CLIPVisionTransformer(
            config: config, weights: w.scoped(nested ? "vision_model.vision_model" : "vision_model"))
        let p = config.projectionDim
        projection = try w.takeWeight("visual_projection.weight", shape: [p, config.hiddenSize])
        let file = archive.fileDescription
        func embeds(_ key: String) throws -> Tensor {
            let t = try w.take(key)
            guard t.rank == 2, t.shape[1] == p else {
                throw CheckpointError(file: file, key: key, "expected [N, \(p)] (projection_dim \(p)), got \(t.shape)")
            }
            return t
        }
        func weights(_ key: String, count: Int) throws -> Tensor {
            let t = try w.take(key)
            guard t.shape == [count] else {
                throw CheckpointError(file: file, key: key, "expected [\(count)], got \(t.shape)")
            }
            return t
        }
        let conceptEmbeds = try embeds("concept_embeds")
        let specialEmbeds = try embeds("special_care_embeds")
        let conceptWeights = try weights("concept_embeds_weights", count: conceptEmbeds.shape[0])
        let specialWeights = try weights("special_care_embeds_weights", count: specialEmbeds.shape[0])
        try w.finish()
        builtInConcepts = try Self.conceptSet(
            concepts: conceptEmbeds, conceptThresholds: conceptWeights, specials: specialEmbeds,
            specialThresholds: specialWeights, source: weightsURL)
    }

    /// A set holding a checkpoint's concepts (`concept_N`) then its specials (`special_N`), in checkpoint order.
    static func conceptSet(
        concepts: Tensor, conceptThresholds: Tensor, specials: Tensor, specialThresholds: Tensor, source: URL
    ) throws -> ConceptSet {
        var list: [Concept] = []
        for (kind, e, t) in [
            (ConceptKind.concept, concepts, conceptThresholds), (.special, specials, specialThresholds),
        ] {
            let (n, p) = (e.shape[0], e.shape[1])
            let values = e.scalars
            let thresholds = t.scalars
            for i in 0..<n {
                list.append(
                    Concept(
                        name: "\(kind.rawValue)_\(i)", kind: kind, threshold: thresholds[i],
                        embedding: Array(values[(i * p)..<((i + 1) * p)])))
            }
        }
        return ConceptSet(
            name: "checkpoint", adjustment: ConceptSet.defaultAdjustment,
            provenance: ConceptSetProvenance(source: source.path), concepts: list,
            source: "<checkpoint \(source.path)>")
    }

    /// The checker input `[3, S, S]` for one image.
    public func pixels(_ image: RGBImage) throws -> Tensor {
        let x = try Preprocess.clip(image, settings: preprocessing)
        let s = config.imageSize
        guard x.shape == [3, s, s] else {
            throw SafetyError(
                file: location.preprocessorConfig?.path ?? location.checker.path,
                "preprocessing gives \(x.shape), the checker expects [3, \(s), \(s)] (image_size)")
        }
        return x
    }

    /// `visual_projection(vision_model(pixels).pooled)` for normalized pixels `[B, 3, S, S]`: `[B, P]`.
    public func imageEmbeds(pixels: Tensor) throws -> Tensor {
        let pooled = try tower(pixels).pooled  // [B, hidden]
        return try projection.withFloat32 { try linear(pooled, weight: $0) }  // [B, P]
    }

    /// Image embeddings (not normalized) of decoded images, `batchSize` at a time.
    public func embed(_ images: [RGBImage], batchSize: Int = 8) throws -> [[Float]] {
        var out: [[Float]] = []
        var start = 0
        while start < images.count {
            let chunk = images[start..<min(start + batchSize, images.count)]
            let batch = try concat(
                chunk.map { try pixels($0).reshaped([1, 3, config.imageSize, config.imageSize]) }, axis: 0)
            out += try imageEmbeds(pixels: batch).rows
            start += batchSize
        }
        return out
    }

    /// Verdicts for decoded images with every score, against `concepts` (default: the checkpoint's own) with
    /// `adjustment` (default: the set's). `labels` (e.g. file names) are copied into the verdicts.
    public func check(
        _ images: [RGBImage], labels: [String]? = nil, concepts: ConceptSet? = nil, adjustment: Float? = nil
    ) throws -> [SafetyVerdict] {
        let scorer = try scorer(concepts: concepts, adjustment: adjustment)
        let embeddings = try embed(images)
        return try embeddings.enumerated().map { i, e in
            try scorer.verdict(embedding: e, image: labels.flatMap { i < $0.count ? $0[i] : nil })
        }
    }

    /// A scorer over `concepts` (default: the checkpoint's own) checked against this checker's embedding size.
    public func scorer(concepts: ConceptSet? = nil, adjustment: Float? = nil) throws -> ConceptScorer {
        try ConceptScorer(set: concepts ?? builtInConcepts, adjustment: adjustment, embeddingSize: embeddingSize)
    }
}
