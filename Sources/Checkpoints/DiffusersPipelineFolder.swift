import Foundation
import Tensors

/// A diffusers pipeline folder: `model_index.json` plus one folder per component
/// (`unet/`, `vae/`, `scheduler/`, `image_encoder/`, `safety_checker/`, `feature_extractor/`, …).
public struct DiffusersPipelineFolder: Sendable {
    /// One component listed in `model_index.json` as `name: [library, class]`.
    public struct Component: Equatable, Sendable {
        /// The folder name, e.g. `"unet"`.
        public let name: String
        /// The Python library, e.g. `"diffusers"`, `"transformers"`, `"stable_diffusion"`.
        public let library: String
        /// The Python class, e.g. `"UNet2DConditionModel"`.
        public let className: String
        /// The component's folder.
        public let directory: URL
    }

    /// Weight file names in order of preference (safetensors first).
    public static let weightFileNames = [
        "diffusion_pytorch_model.safetensors", "model.safetensors",
        "diffusion_pytorch_model.bin", "pytorch_model.bin",
    ]

    /// The float16 files diffusers writes for `variant="fp16"` (`unet/diffusion_pytorch_model.fp16.safetensors`),
    /// in order of preference.
    public static let float16WeightFileNames = weightFileNames.map { name in
        let dot = name.lastIndex(of: ".") ?? name.endIndex
        return String(name[..<dot]) + ".fp16" + String(name[dot...])
    }

    /// The weight file names to look for when the network will hold its weights in `precision`: float16 prefers
    /// the `fp16` variant files; float32 takes them only when the folder has no other weights.
    public static func weightFileNames(for precision: WeightPrecision) -> [String] {
        switch precision {
        case .float32: weightFileNames + float16WeightFileNames
        case .float16: float16WeightFileNames + weightFileNames
        }
    }

    /// The pipeline folder.
    public let url: URL
    /// `_class_name`, e.g. `"StableDiffusionImageVariationPipeline"`.
    public let className: String
    /// `_diffusers_version` (nil when absent).
    public let diffusersVersion: String?
    /// Components by name; entries written as `[null, null]` (a removed component) are left out.
    public let components: [String: Component]

    private var indexPath: String { url.appendingPathComponent("model_index.json").path }

    /// Reads `model_index.json` in `url`; errors name that file and the key.
    public init(url: URL) throws {
        self.url = url
        let indexURL = url.appendingPathComponent("model_index.json")
        let file = indexURL.path
        let data: Data
        do {
            data = try Data(contentsOf: indexURL)
        } catch {
            throw CheckpointError(file: file, "cannot read: \(error.localizedDescription)")
        }
        guard let index = try JSONValue.parse(data, file: file).objectValue else {
            throw CheckpointError(file: file, "not a JSON object")
        }
        guard let name = index["_class_name"]?.stringValue else {
            throw CheckpointError(file: file, key: "_class_name", "missing or not a string")
        }
        className = name
        diffusersVersion = index["_diffusers_version"]?.stringValue
        var components: [String: Component] = [:]
        for (key, value) in index where !key.hasPrefix("_") {
            guard case .array(let pair) = value else { continue }  // e.g. "requires_safety_checker": true
            if pair.allSatisfy({ $0 == .null }) { continue }
            guard pair.count == 2, let library = pair[0].stringValue, let cls = pair[1].stringValue else {
                throw CheckpointError(file: file, key: key, "expected [library, class], got \(pair)")
            }
            guard !key.contains("/"), !key.contains(".."), !key.isEmpty else {
                throw CheckpointError(file: file, key: key, "component name is not a plain folder name")
            }
            components[key] = Component(
                name: key, library: library, className: cls,
                directory: url.appendingPathComponent(key, isDirectory: true))
        }
        self.components = components
    }

    /// The component called `name`; throws naming `model_index.json` and the key when it is not listed.
    public func component(_ name: String) throws -> Component {
        guard let c = components[name] else {
            throw CheckpointError(file: indexPath, key: name, "component not listed")
        }
        return c
    }

    /// The preferred weight file of component `name` for `precision` (see `weightFileNames(for:)`; safetensors
    /// over `.bin`).
    public func weightsURL(for name: String, precision: WeightPrecision = .float32) throws -> URL {
        try Self.weightsURL(in: component(name).directory, precision: precision)
    }

    /// The `preprocessor_config.json` that goes with the component in `component`: the pipeline's
    /// `feature_extractor/preprocessor_config.json` (diffusers feeds both the image encoder and the safety checker
    /// through it), else the component folder's own (a standalone transformers folder); nil when neither exists.
    /// `root` is the pipeline folder, or the component folder's parent for a standalone component.
    public static func preprocessorConfigURL(component: URL, root: URL) -> URL? {
        [
            root.appendingPathComponent("feature_extractor/preprocessor_config.json"),
            component.appendingPathComponent("preprocessor_config.json"),
        ].first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The preferred weight file in a model folder for `precision` (one of `weightFileNames(for:)`).
    public static func weightsURL(in dir: URL, precision: WeightPrecision = .float32) throws -> URL {
        let names = weightFileNames(for: precision)
        for file in names {
            let candidate = dir.appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        throw CheckpointError(file: dir.path, "no weights (looked for \(names.joined(separator: ", ")))")
    }

    /// Opens the weights of component `name` (the file `weightsURL(for:precision:)` picks).
    public func weights(for name: String, precision: WeightPrecision = .float32) throws -> any TensorArchive {
        try loadTensorArchive(url: weightsURL(for: name, precision: precision))
    }

    /// Reads `<component>/<file>` as config type `T` (decoded and validated).
    public func config<T: CheckpointConfig>(
        _ type: T.Type, component name: String, file: String = "config.json"
    ) throws -> T {
        try T.load(url: component(name).directory.appendingPathComponent(file))
    }

    /// `unet/config.json`.
    public func unetConfig() throws -> UNet2DConditionConfig {
        try config(UNet2DConditionConfig.self, component: "unet")
    }
    /// `vae/config.json`.
    public func vaeConfig() throws -> AutoencoderKLConfig { try config(AutoencoderKLConfig.self, component: "vae") }
    /// `scheduler/scheduler_config.json`.
    public func schedulerConfig() throws -> SchedulerConfig {
        try config(SchedulerConfig.self, component: "scheduler", file: "scheduler_config.json")
    }
    /// `image_encoder/config.json`.
    public func imageEncoderConfig() throws -> CLIPVisionConfig {
        try config(CLIPVisionConfig.self, component: "image_encoder")
    }
    /// `safety_checker/config.json` (a composite CLIPConfig; the vision tower's fields).
    public func safetyCheckerConfig() throws -> CLIPVisionConfig {
        try config(CLIPVisionConfig.self, component: "safety_checker")
    }
    /// `feature_extractor/preprocessor_config.json`.
    public func featureExtractorConfig() throws -> CLIPPreprocessorConfig {
        try config(CLIPPreprocessorConfig.self, component: "feature_extractor", file: "preprocessor_config.json")
    }
}
