import ArgumentParser
import Diffusion
import Foundation
import Imaging
import Tensors

/// The input pictures of every command that reads images: `--input FILE` (repeatable) and `--inputs DIR`
/// (repeatable; its `.png`, `.jpg` and `.jpeg` files, sorted by name, dotfiles skipped).
struct InputOptions: ParsableArguments {
    @Option(name: .customLong("input"), help: "An input image (PNG or JPEG); repeat for several.")
    var files: [String] = []

    @Option(name: .customLong("inputs"), help: "A folder of input images (.png, .jpg, .jpeg; sorted by name).")
    var directories: [String] = []

    var isEmpty: Bool { files.isEmpty && directories.isEmpty }

    /// The files given, then each folder's images; `legacy` adds files and folders from older spellings.
    /// A missing file or an empty folder is a runtime error naming it.
    func urls(legacyFiles: [String] = [], legacyDirectories: [String] = []) throws -> [URL] {
        var out: [URL] = []
        for path in files + legacyFiles {
            guard FileManager.default.fileExists(atPath: path) else {
                throw RuntimeError("\(path): no such input file")
            }
            out.append(URL(fileURLWithPath: path))
        }
        for dir in directories + legacyDirectories {
            let found = try ImageFiles.list(in: URL(fileURLWithPath: dir))
            if found.isEmpty { throw RuntimeError("\(dir): no PNG or JPEG images in the folder") }
            out += found
        }
        return out
    }

    static let missing = ValidationError("give --input FILE or --inputs DIR")
}

/// A safety checker and its concepts, as `safety`, `audit` and the `concepts` commands take them.
struct CheckerOptions: ParsableArguments {
    @Option(help: "A pipeline folder, a folder holding safety_checker/, or a safety_checker folder.")
    var checker: String?

    @Option(help: "A concept-set file (concepts/README.md); default: the checker's own concepts.")
    var concepts: String?
}

/// The model audited or generated with: a diffusers pipeline folder.
struct ModelOption: ParsableArguments {
    @Option(help: "A diffusers pipeline folder (model_index.json, image_encoder/, unet/, vae/, scheduler/).")
    var model: String

    var url: URL { URL(fileURLWithPath: model) }
}

/// A training-set index: a faiss index file (with its `.meta.sqlite` sidecar when `index build` made it).
struct IndexOption: ParsableArguments {
    @Option(help: "Training-set index: a faiss index file (from `varaudit index build` or faiss), or a .npy matrix.")
    var index: String?

    /// The index, required by the command: a usage error when absent.
    func required() throws -> String {
        guard let index else { throw ValidationError("give --index FILE") }
        return index
    }
}

/// `--json`: machine-readable output on stdout.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print JSON.")
    var json = false
}

/// A failure while running (not a usage error): printed as one line naming the file or argument, exit status 1.
struct RuntimeError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// How variations are generated, as `generate` and `audit` take it (defaults: those of the model card).
struct GenerationOptions: ParsableArguments {
    @Option(help: "Variations per input.")
    var variations = 4

    @Option(help: "Denoising steps.")
    var steps = 50

    @Option(help: "Classifier-free guidance scale (guidance is off at ≤ 1).")
    var guidance: Float = 3.0

    @Option(help: "Seed of the generator (each input starts from it).")
    var seed: UInt64 = 0

    @Option(
        help: "Scheduler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")) (default: the model's).")
    var scheduler: SchedulerKind?

    @Option(help: "DDIM eta (other schedulers ignore it).")
    var eta: Float = 0

    @Option(help: "Output height in pixels, a multiple of 8 (default: unet.sample_size × VAE scale factor).")
    var height: Int?

    @Option(help: "Output width in pixels, a multiple of 8 (default: unet.sample_size × VAE scale factor).")
    var width: Int?

    func validate() throws {
        if variations < 1 { throw ValidationError("--variations must be at least 1, got \(variations)") }
        if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if !guidance.isFinite { throw ValidationError("--guidance must be a number, got \(guidance)") }
        for (name, v) in [("--height", height), ("--width", width)] {
            if let v, v < 8 || v % 8 != 0 {
                throw ValidationError("\(name) must be a positive multiple of 8, got \(v)")
            }
        }
    }

    /// The pipeline settings these options ask for.
    var configuration: ImageVariationPipeline.Configuration {
        var c = ImageVariationPipeline.Configuration()
        c.variations = variations
        c.steps = steps
        c.guidance = guidance
        c.seed = seed
        c.scheduler = scheduler
        c.eta = eta
        c.height = height
        c.width = width
        return c
    }
}

/// `--weights f32|f16`: how the networks hold their weight matrices, as `generate`, `audit` and `bench` take it.
struct WeightsOption: ParsableArguments {
    @Option(
        name: .customLong("weights"),
        help: ArgumentHelp(
            "How the networks hold their weight matrices: f32, or f16 to halve their memory (the model's fp16 "
                + "variant files, such as unet/diffusion_pytorch_model.fp16.safetensors, are memory-mapped when "
                + "present, float32 files converted once; each layer widens its weights to float32 as it runs; "
                + "images stay within about 2/255 of f32's). Norms, biases and embeddings stay float32.",
            valueName: "f32|f16"))
    var precision: WeightPrecision = .float32
}

extension SchedulerKind: ExpressibleByArgument {}
extension WeightPrecision: ExpressibleByArgument {}
