import ArgumentParser
import Diffusion
import Foundation
import Imaging
import Safety
import Tensors

extension VarAudit {
    /// `varaudit generate`: N variations of each input image, seed for seed as diffusers.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate image variations with a diffusers StableDiffusionImageVariationPipeline folder.",
            discussion: """
                Writes OUT/<input stem>-<k>.png for k = 0..N-1 (the parameters in a PNG text chunk) and \
                OUT/manifest.json. Each input gets a fresh torch-compatible generator seeded with --seed, so \
                the outputs equal diffusers' pipeline called once per input with num_images_per_prompt=N, \
                generator=torch.Generator("cpu").manual_seed(SEED) and the model card's preprocessed tensor. \
                When the model folder has a safety_checker (and no --no-safety), every output is checked as \
                diffusers does; flagged outputs are handled by --on-unsafe (black, as diffusers; blur; keep) \
                and every verdict with all its scores goes to the manifest. \
                A run that stopped resumes: inputs already finished (listed in the manifest, files present) \
                are skipped; a different set of parameters in the same folder is refused.
                """
        )

        @Option(help: "A diffusers pipeline folder (model_index.json, image_encoder/, unet/, vae/, scheduler/).")
        var model: String

        @Option(name: .customLong("input"), help: "An input image; repeat for several.")
        var inputs: [String] = []

        @Option(name: .customLong("inputs"), help: "A folder of input images (sorted by name).")
        var inputsDirectory: String?

        @Option(help: "Variations per input.")
        var variations = 4

        @Option(help: "Denoising steps.")
        var steps = 50

        @Option(help: "Classifier-free guidance scale (guidance is off at ≤ 1).")
        var guidance: Float = 3.0

        @Option(help: "Seed of the generator (each input starts from it).")
        var seed: UInt64 = 0

        @Option(help: "Scheduler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")) (default: the model's).")
        var scheduler: SchedulerKind?

        @Option(help: "DDIM eta (other schedulers ignore it).")
        var eta: Float = 0

        @Option(help: "Output height in pixels, a multiple of 8 (default: unet.sample_size × VAE scale factor).")
        var height: Int?

        @Option(help: "Output width in pixels, a multiple of 8.")
        var width: Int?

        @Flag(help: "Do not run the safety checker on the outputs.")
        var noSafety = false

        @Option(help: "What to do with a flagged output: black (as diffusers), blur or keep.")
        var onUnsafe: UnsafeImagePolicy = .black

        @Option(help: "Output folder.")
        var out: String

        func validate() throws {
            if inputs.isEmpty && inputsDirectory == nil { throw ValidationError("give --input FILE or --inputs DIR") }
            if variations < 1 { throw ValidationError("--variations must be at least 1, got \(variations)") }
            if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
            for (name, v) in [("--height", height), ("--width", width)] {
                if let v, v < 8 || v % 8 != 0 { throw ValidationError("\(name) must be a positive multiple of 8, got \(v)") }
            }
        }

        func run() throws {
            let files = try inputs + imageFiles(in: inputsDirectory)
            guard !files.isEmpty else { throw ValidationError("no images in \(inputsDirectory ?? "")") }
            let stems = files.map { ($0 as NSString).lastPathComponent.components(separatedBy: ".").dropLast().joined(separator: ".") }
            if let dup = Dictionary(grouping: zip(stems, files), by: { $0.0 }).first(where: { $0.value.count > 1 }) {
                throw ValidationError("inputs \(dup.value.map(\.1).joined(separator: " and ")) share the name '\(dup.key)'")
            }
            let loadStart = Date()
            let pipeline = try ImageVariationPipeline.load(directory: URL(fileURLWithPath: model))
            let checker = try noSafety ? nil : SafetyCheckerLocation.find(in: URL(fileURLWithPath: model)).map {
                try SafetyChecker(location: $0)
            }
            var config = ImageVariationPipeline.Configuration()
            config.variations = variations
            config.steps = steps
            config.guidance = guidance
            config.seed = seed
            config.scheduler = scheduler
            config.eta = eta
            config.height = height ?? pipeline.defaultSize
            config.width = width ?? pipeline.defaultSize
            let parameters: [String: Any] = [
                "variations": variations, "steps": steps, "guidance": Double(guidance), "seed": seed,
                "scheduler": scheduler?.rawValue ?? pipeline.schedulerConfig.className ?? "", "eta": Double(eta),
                "height": config.height ?? 0, "width": config.width ?? 0,
                "safety": checker != nil, "on_unsafe": checker == nil ? "" : onUnsafe.rawValue,
            ]
            let outDir = URL(fileURLWithPath: out)
            var manifest = try RunManifest(directory: outDir, model: model, parameters: parameters)
            progress("loaded \(model) in \(String(format: "%.1f", Date().timeIntervalSince(loadStart))) s")
            for (index, (file, stem)) in zip(files, stems).enumerated() {
                let names = (0..<variations).map { "\(stem)-\($0).png" }
                if manifest.isFinished(input: file, outputs: names) {
                    progress("[\(index + 1)/\(files.count)] \(file): already done, skipped")
                    continue
                }
                let image = try RGBImage.load(contentsOf: URL(fileURLWithPath: file))
                let started = Date()
                let result = try pipeline.generate(image, configuration: config) { step in
                    let elapsed = Date().timeIntervalSince(started)
                    let perStep = elapsed / Double(step.step)
                    progress(String(
                        format: "[%d/%d] %@ step %d/%d  %.2f s/step  ETA %.0f s", index + 1, files.count,
                        stem, step.step, step.total, perStep, perStep * Double(step.total - step.step)))
                    return true
                }
                let verdicts = try checker?.check(result.images, labels: names)
                for (k, var generated) in result.images.enumerated() {
                    var text = parameters
                    text["model"] = model
                    text["input"] = file
                    text["variation"] = k
                    if let verdict = verdicts?[k] {
                        text["nsfw"] = verdict.flagged
                        generated = onUnsafe.apply(to: generated, verdict: verdict)
                        if verdict.flagged { progress("\(names[k]): flagged by the safety checker (\(onUnsafe.rawValue))") }
                    }
                    let json = String(decoding: try JSONSerialization.data(withJSONObject: text, options: [.sortedKeys]), as: UTF8.self)
                    try writeAtomically(to: outDir.appendingPathComponent(names[k]).path) {
                        try generated.write(to: $0, format: .png, text: [("parameters", json)])
                    }
                }
                try manifest.record(
                    input: file, outputs: names, seconds: Date().timeIntervalSince(started),
                    safety: verdicts?.map(\.jsonObject))
                print(names.map { outDir.appendingPathComponent($0).path }.joined(separator: "\n"))
            }
        }
    }
}

extension SchedulerKind: ExpressibleByArgument {}
extension UnsafeImagePolicy: ExpressibleByArgument {}

/// `manifest.json` of a generation run: the parameters and, per finished input, its outputs and timing.
/// Rewritten atomically after every input so that an interrupted run resumes where it stopped.
struct RunManifest {
    let url: URL
    var document: [String: Any]

    init(directory: URL, model: String, parameters: [String: Any]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = directory.appendingPathComponent("manifest.json")
        if FileManager.default.fileExists(atPath: url.path) {
            let data = try Data(contentsOf: url)
            guard let existing = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ValidationError("\(url.path): not a manifest written by varaudit")
            }
            let old = existing["parameters"] as? [String: Any] ?? [:]
            guard try canonicalJSON(old) == canonicalJSON(parameters), existing["model"] as? String == model else {
                throw ValidationError(
                    "\(url.path) belongs to a run with another model or parameters; choose another --out folder")
            }
            document = existing
        } else {
            document = [
                "model": model, "parameters": parameters, "inputs": [[String: Any]](),
                "started": ISO8601DateFormatter().string(from: Date()),
            ]
            try save()
        }
    }

    /// Whether `input` was finished with all of `outputs` present on disk.
    func isFinished(input: String, outputs: [String]) -> Bool {
        let entries = document["inputs"] as? [[String: Any]] ?? []
        guard entries.contains(where: { $0["input"] as? String == input }) else { return false }
        return outputs.allSatisfy {
            FileManager.default.fileExists(atPath: url.deletingLastPathComponent().appendingPathComponent($0).path)
        }
    }

    mutating func record(input: String, outputs: [String], seconds: Double, safety: [[String: Any]]?) throws {
        var entries = (document["inputs"] as? [[String: Any]] ?? []).filter { $0["input"] as? String != input }
        var entry: [String: Any] = ["input": input, "outputs": outputs, "seconds": seconds]
        if let safety { entry["safety"] = safety }
        entries.append(entry)
        document["inputs"] = entries
        document["updated"] = ISO8601DateFormatter().string(from: Date())
        try save()
    }

    private func save() throws {
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(to: url.path) { try data.write(to: $0) }
    }
}

/// A JSON object's text after one parse round trip, with sorted keys: equal for equal values.
func canonicalJSON(_ object: [String: Any]) throws -> Data {
    let once = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    let parsed = try JSONSerialization.jsonObject(with: once)
    return try JSONSerialization.data(withJSONObject: parsed, options: [.sortedKeys])
}
