import Checkpoints
import Diffusion
import Foundation
import Imaging
import Safety
import Tensors

/// `manifest.json` of a generation run: the model, the parameters and, per finished input, its outputs, timing
/// and safety verdicts. Rewritten atomically after every input so that an interrupted run resumes.
public struct RunManifest: Codable, Sendable, Equatable {
    /// The parameters that decide the images; a rerun in the same folder must repeat them.
    public struct Parameters: Codable, Sendable, Equatable {
        public var variations: Int
        public var steps: Int
        public var guidance: Double
        public var seed: UInt64
        /// The scheduler used: the override's name, else the model's `_class_name`.
        public var scheduler: String
        public var eta: Double
        public var height: Int
        public var width: Int
        /// Whether the safety checker ran, and what was done with flagged outputs (`""` without a checker).
        public var safety: Bool
        public var onUnsafe: String
        /// `"f16"` when the networks held their weights in float16; nil (absent) for float32, as in manifests
        /// written before the choice existed.
        public var weights: String? = nil

        enum CodingKeys: String, CodingKey {
            case variations, steps, guidance, seed, scheduler, eta, height, width, safety, weights
            case onUnsafe = "on_unsafe"
        }
    }

    /// One finished input.
    public struct Entry: Codable, Sendable, Equatable {
        public var input: String
        /// Output file names in the run folder, `k` = 0..N-1.
        public var outputs: [String]
        public var seconds: Double
        public var safety: [SafetyVerdict]?
    }

    public var model: String
    public var parameters: Parameters
    public var inputs: [Entry]
    public var started: String
    public var updated: String?

    /// Reads `url`; errors name it.
    public static func load(url: URL) throws -> RunManifest {
        do {
            return try JSONDecoder().decode(RunManifest.self, from: Data(contentsOf: url))
        } catch {
            throw VariationAuditError(file: url.path, "not a manifest written by varaudit: \(error)")
        }
    }

    /// Writes `url` atomically.
    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self)
        try AtomicFile.write(to: url) { try data.write(to: $0) }
    }
}

/// `varaudit generate` as a library call: N variations of each input with a pipeline folder, written as PNGs
/// (parameters in a text chunk) with `manifest.json`; the safety checker runs when the model has one.
public struct GenerationRun {
    /// Everything a generation run needs.
    public struct Configuration: Sendable {
        public var model: URL
        /// Input images, processed in this order.
        public var inputs: [URL]
        /// The output folder.
        public var output: URL
        /// Variations, steps, guidance, seed, scheduler, size and eta.
        public var pipeline = ImageVariationPipeline.Configuration()
        /// Run the model's safety checker (when it has one). Default true.
        public var safety = true
        /// What to do with a flagged output. Default black, as diffusers.
        public var onUnsafe: UnsafeImagePolicy = .black
        /// Largest accepted input image, in pixels.
        public var maxPixels = RGBImage.defaultMaxPixels
        /// How the networks (pipeline and safety checker) hold their weight matrices. Default float32; float16
        /// halves their memory (the `fp16` variant files are used when present) at a small cost in accuracy.
        public var weights: WeightPrecision = .float32

        public init(model: URL, inputs: [URL], output: URL) {
            self.model = model
            self.inputs = inputs
            self.output = output
        }
    }

    /// What a run reports as it goes.
    public enum Event: Sendable {
        case loaded(seconds: Double)
        case skipped(position: Int, total: Int, input: URL)
        case step(position: Int, total: Int, name: String, step: Int, steps: Int, secondsPerStep: Double)
        case flagged(output: String, policy: UnsafeImagePolicy)
        case finished(input: URL, outputs: [URL])
    }

    public let configuration: Configuration

    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// The output file name stem of each input (its name without the extension); two inputs with the same
    /// stem are refused.
    public static func stems(of inputs: [URL]) throws -> [String] {
        let stems = inputs.map { $0.deletingPathExtension().lastPathComponent }
        var seen: [String: URL] = [:]
        for (stem, file) in zip(stems, inputs) {
            if let other = seen[stem] {
                throw VariationAuditError("inputs \(other.path) and \(file.path) share the name '\(stem)'")
            }
            seen[stem] = file
        }
        return stems
    }

    /// Generates every input not finished yet.
    public func run(events: (Event) -> Void = { _ in }) throws {
        let c = configuration
        let stems = try Self.stems(of: c.inputs)
        let loadStart = Date()
        let folder = try ModelFolder(url: c.model)
        let pipeline = try folder.loadPipeline(weights: c.weights)
        let checker = c.safety ? try folder.loadSafetyChecker(weights: c.weights) : nil
        var settings = c.pipeline
        settings.height = settings.height ?? pipeline.defaultSize
        settings.width = settings.width ?? pipeline.defaultSize
        let parameters = RunManifest.Parameters(
            variations: settings.variations, steps: settings.steps, guidance: Double(settings.guidance),
            seed: settings.seed, scheduler: settings.scheduler?.rawValue ?? pipeline.schedulerConfig.className ?? "",
            eta: Double(settings.eta), height: settings.height ?? 0, width: settings.width ?? 0,
            safety: checker != nil, onUnsafe: checker == nil ? "" : c.onUnsafe.rawValue,
            weights: c.weights == .float32 ? nil : c.weights.rawValue)
        try FileManager.default.createDirectory(at: c.output, withIntermediateDirectories: true)
        let manifestURL = c.output.appendingPathComponent("manifest.json")
        var manifest: RunManifest
        if FileManager.default.fileExists(atPath: manifestURL.path) {
            manifest = try RunManifest.load(url: manifestURL)
            guard manifest.parameters == parameters, manifest.model == c.model.path else {
                throw VariationAuditError(
                    file: manifestURL.path,
                    "belongs to a run with another model or parameters; choose another output folder")
            }
        } else {
            manifest = RunManifest(
                model: c.model.path, parameters: parameters, inputs: [], started: Timestamp.now(), updated: nil)
            try manifest.save(to: manifestURL)
        }
        events(.loaded(seconds: Date().timeIntervalSince(loadStart)))
        for (position, (file, stem)) in zip(c.inputs, stems).enumerated() {
            let names = (0..<settings.variations).map { "\(stem)-\($0).png" }
            let done =
                manifest.inputs.contains { $0.input == file.path }
                && names.allSatisfy {
                    FileManager.default.fileExists(atPath: c.output.appendingPathComponent($0).path)
                }
            if done {
                events(.skipped(position: position, total: c.inputs.count, input: file))
                continue
            }
            let image = try RGBImage.load(contentsOf: file, maxPixels: c.maxPixels)
            let started = Date()
            let result = try pipeline.generate(image, configuration: settings) { step in
                events(
                    .step(
                        position: position, total: c.inputs.count, name: stem, step: step.step, steps: step.total,
                        secondsPerStep: Date().timeIntervalSince(started) / Double(step.step)))
                return true
            }
            let verdicts = try checker?.check(result.images, labels: names)
            var outputs: [URL] = []
            for (k, var generated) in result.images.enumerated() {
                var text = PNGParameters(parameters)
                text.model = c.model.path
                text.input = file.path
                text.variation = k
                if let verdict = verdicts?[k] {
                    text.nsfw = verdict.flagged
                    generated = c.onUnsafe.apply(to: generated, verdict: verdict)
                    if verdict.flagged { events(.flagged(output: names[k], policy: c.onUnsafe)) }
                }
                let url = c.output.appendingPathComponent(names[k])
                let json = try text.json()
                try AtomicFile.write(to: url) {
                    try generated.write(to: $0, format: .png, text: [("parameters", json)])
                }
                outputs.append(url)
            }
            manifest.inputs.removeAll { $0.input == file.path }
            manifest.inputs.append(
                RunManifest.Entry(
                    input: file.path, outputs: names, seconds: Date().timeIntervalSince(started), safety: verdicts))
            manifest.updated = Timestamp.now()
            try manifest.save(to: manifestURL)
            events(.finished(input: file, outputs: outputs))
        }
    }
}

/// The `parameters` text chunk of a generated PNG: the run's parameters plus where the image came from.
struct PNGParameters: Encodable {
    var run: RunManifest.Parameters
    var model = ""
    var input = ""
    var variation = 0
    var nsfw: Bool?

    init(_ run: RunManifest.Parameters) { self.run = run }

    enum CodingKeys: String, CodingKey { case model, input, variation, nsfw }

    func encode(to encoder: any Encoder) throws {
        try run.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(input, forKey: .input)
        try c.encode(variation, forKey: .variation)
        try c.encodeIfPresent(nsfw, forKey: .nsfw)
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// ISO 8601 timestamps as the store and manifests write them.
public enum Timestamp {
    public static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}
