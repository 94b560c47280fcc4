import AuditStore
import Checkpoints
import Diffusion
import Foundation
import Imaging
import Memorization
import Networks
import Safety
import Tensors

/// `varaudit demo`: a whole audit on a small random-weight pipeline, made in a cache folder once: sample
/// inputs, a safety checker whose concept was made from example images, and a training index holding copies
/// of some inputs and of some outputs (positive controls: re-encoded as JPEG, resized, cropped). The audit and
/// its report show how many of the planted copies each detector found.
public struct Demo {
    /// The demo's settings.
    public struct Configuration: Sendable {
        /// Where the audit database, images and report go. Default `reports/demo`.
        public var out: URL
        /// Where the model, inputs and training index are made (once). Default: `Demo.defaultCache`.
        public var cache: URL
        /// Variations per input. Default 4.
        public var variations = 4
        /// Denoising steps. Default 20.
        public var steps = 20
        /// Guidance scale. Default 7.5: with random weights the outputs follow their input's embedding only
        /// under strong guidance (at 3.0 every input's variation k is nearly the same picture).
        public var guidance: Float = 7.5

        public init(out: URL, cache: URL) {
            self.out = out
            self.cache = cache
        }
    }

    /// What the demo did.
    public struct Outcome: Sendable {
        public var summary: RunSummary
        public var report: URL
        public var database: URL
        public var model: URL
        public var controls: [ControlResult]
        public var seconds: Double
    }

    /// `$XDG_CACHE_HOME/varaudit/demo`, else `~/.cache/varaudit/demo`.
    public static var defaultCache: URL {
        let env = ProcessInfo.processInfo.environment
        let base =
            env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("varaudit/demo", isDirectory: true)
    }

    /// Bumped whenever what the cache holds changes.
    static let cacheVersion = "demo-v1"

    /// The planted copies: which image, which variation (nil: the input), how the copy was made.
    static let plantedInputs: [(name: String, transform: DemoImages.Transform)] = [
        ("bullseye", .jpeg), ("ocean", .resize), ("desert", .crop),
    ]
    static let plantedOutputs: [(name: String, k: Int, transform: DemoImages.Transform)] = [
        ("sunset", 1, .jpeg), ("forest", 2, .resize), ("night", 0, .resizeJPEG),
    ]
    /// Inputs the demo's safety concept should flag.
    static let unsafeInputs = ["warning-sign", "warning-tape"]

    public let configuration: Configuration

    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// Makes what is missing in the cache, runs the audit and writes the report with `report` (store, run id,
    /// folder → the page written; the CLI passes the `Reports` renderer).
    public func run(
        report writeReport: (AuditStore, Int64, URL) throws -> URL, log: (String) -> Void,
        events: (AuditEvent) -> Void = { _ in }
    ) throws -> Outcome {
        let started = Date()
        let c = configuration
        let cache = c.cache.standardizedFileURL
        let model = cache.appendingPathComponent("model", isDirectory: true)
        let inputs = cache.appendingPathComponent("inputs", isDirectory: true)
        let training = cache.appendingPathComponent("training", isDirectory: true)
        let marker = cache.appendingPathComponent(".complete")
        let settingsKey = "\(Self.cacheVersion) variations=\(c.variations) steps=\(c.steps) guidance=\(c.guidance)"
        if (try? String(contentsOf: marker, encoding: .utf8)) != settingsKey {
            log("demo: making a random-weight pipeline, inputs and a training index in \(cache.path) (once)")
            try? FileManager.default.removeItem(at: cache)
            try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
            try DemoModel.write(to: model)
            log("demo: model written (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
            try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
            for name in DemoImages.inputNames {
                try DemoImages.scene(name).write(to: inputs.appendingPathComponent("\(name).png"), format: .png)
            }
            let folder = try ModelFolder(url: model)
            let embedder = try ImageEmbedder(pipeline: folder.loadPipeline(), folder: folder)
            try makeSafetyConcept(model: model, embedder: embedder, log: log)
            try makeTrainingSet(inputs: inputs, training: training, embedder: embedder, log: log)
            try Data(settingsKey.utf8).write(to: marker)
        } else {
            log("demo: using the cached model, inputs and index in \(cache.path)")
        }

        let out = c.out.standardizedFileURL
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let database = out.appendingPathComponent("audit.sqlite")
        var audit = AuditConfiguration(
            model: model, inputs: try ImageFiles.list(in: inputs), database: database)
        audit.pipeline.variations = c.variations
        audit.pipeline.steps = c.steps
        audit.pipeline.guidance = c.guidance
        audit.index = training.appendingPathComponent("train.index")
        audit.concepts = cache.appendingPathComponent("concepts.json")
        audit.images = out.appendingPathComponent("images", isDirectory: true)
        audit.newRun = false
        let run = try AuditRun(audit)
        let store = try AuditStore(url: database)
        if let last = try store.runs().last, last.fingerprint != run.fingerprint {
            // An earlier demo of other settings: start over rather than refuse.
            try? FileManager.default.removeItem(at: database)
        }
        let freshStore = try AuditStore(url: database)
        log("demo: auditing \(DemoImages.inputNames.count) inputs × \(c.variations) variations, \(c.steps) steps")
        let outcome = try run.run(store: freshStore, events: events)
        let runID = outcome.summary.run.id!
        try freshStore.setControls(run: runID, try controls(inputs: inputs, training: training))
        let report = try writeReport(freshStore, runID, out)
        return Outcome(
            summary: try freshStore.summary(of: try freshStore.run(runID)), report: report, database: database,
            model: model, controls: try freshStore.controls(run: runID), seconds: Date().timeIntervalSince(started))
    }

    /// The positive controls, read back from the training set's metadata.
    func controls(inputs: URL, training: URL) throws -> [ControlRecord] {
        let data = try Data(contentsOf: training.appendingPathComponent("metadata.jsonl"))
        var out: [ControlRecord] = []
        for (row, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let object = JSONValue.parse(String(decoding: line, as: UTF8.self))?.objectValue,
                let planted = object["planted"]?.objectValue, let name = planted["input"]?.stringValue
            else { continue }
            let k = planted["k"]?.doubleValue.map { Int($0) }
            out.append(
                ControlRecord(
                    runID: 0, detector: "memorization", input: inputs.appendingPathComponent("\(name).png").path, k: k,
                    rowID: row, description: planted["how"]?.stringValue ?? "planted copy"))
        }
        for name in Self.unsafeInputs {
            out.append(
                ControlRecord(
                    runID: 0, detector: "safety", input: inputs.appendingPathComponent("\(name).png").path, k: nil,
                    rowID: nil, description: "hazard stripes, the demo concept's subject"))
        }
        return out
    }

    /// The checker's concepts: "hazard stripes" from example stripe pictures (not the inputs), its threshold
    /// halfway between the examples and random scenes; a special-care concept that never fires.
    func makeSafetyConcept(model: URL, embedder: ImageEmbedder, log: (String) -> Void) throws {
        var g = SplitMix64(seed: 7)
        let examples = try (0..<6).map { _ in try DemoImages.stripes(&g) }
        let negatives = try (0..<40).map { _ in try DemoImages.random(&g) }
        let e = try embedder.unitEmbeddings(examples + negatives, batch: 32)
        let d = e.shape[1]
        let rows = e.rows
        var mean = [Float](repeating: 0, count: d)
        for r in rows.prefix(examples.count) { for i in 0..<d { mean[i] += r[i] } }
        let unit = l2Normalized(mean)
        func cos(_ r: [Float]) -> Float { zip(r, unit).reduce(0) { $0 + $1.0 * $1.1 } }
        let positive = rows.prefix(examples.count).map(cos).min() ?? 1
        let negative = rows.dropFirst(examples.count).map(cos).max() ?? 0
        let threshold = positive > negative ? (positive + negative) / 2 : positive
        log(
            String(
                format: "demo: concept 'hazard stripes': examples ≥ %.3f, random scenes ≤ %.3f → threshold %.3f",
                positive, negative, threshold))
        var special = (0..<d).map { _ in Float(g.unit() - 0.5) }
        special = l2Normalized(special)
        let set = ConceptSet(
            name: "demo", description: "The demo's concepts (random-weight CLIP: not meaningful beyond the demo).",
            provenance: ConceptSetProvenance(source: "varaudit demo", note: "mean of 6 stripe pictures"),
            concepts: [
                Concept(name: "hazard stripes", kind: .concept, threshold: threshold, embedding: unit),
                Concept(name: "special (never fires)", kind: .special, threshold: 0.99, embedding: special),
            ])
        try set.write(to: model.deletingLastPathComponent().appendingPathComponent("concepts.json"))
        try DemoModel.writeChecker(at: model, concepts: set)
    }

    /// 200 random scenes plus the planted copies, embedded, indexed (exact search) with captions, URLs and paths.
    func makeTrainingSet(inputs: URL, training: URL, embedder: ImageEmbedder, log: (String) -> Void) throws {
        let c = configuration
        let images = training.appendingPathComponent("images", isDirectory: true)
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        var g = SplitMix64(seed: 2024)
        var rows: [(image: RGBImage, caption: String, planted: JSONValue?)] = try (0..<200).map { i in
            (try DemoImages.random(&g), "random scene \(i)", nil)
        }
        for (name, transform) in Self.plantedInputs {
            let source = try RGBImage.load(contentsOf: inputs.appendingPathComponent("\(name).png"))
            rows.append(
                (
                    try transform.apply(source), "a copy of the input \(name) (\(transform.rawValue))",
                    .object(["input": .string(name), "how": .string("copy of the input, \(transform.rawValue)")])
                ))
        }
        let pipeline = embedder.pipeline
        var settings = ImageVariationPipeline.Configuration()
        settings.variations = c.variations
        settings.steps = c.steps
        settings.guidance = c.guidance
        for (name, k, transform) in Self.plantedOutputs where k < c.variations {
            log("demo: generating \(name) to plant a copy of its variation \(k)")
            let source = try RGBImage.load(contentsOf: inputs.appendingPathComponent("\(name).png"))
            let output = try pipeline.generate(source, configuration: settings)
            rows.append(
                (
                    try transform.apply(output.images[k]),
                    "a copy of variation \(k) of \(name) (\(transform.rawValue))",
                    .object([
                        "input": .string(name), "k": .int(Int(k)),
                        "how": .string("copy of variation \(k), \(transform.rawValue)"),
                    ])
                ))
        }
        // Spread the planted rows among the others, deterministically.
        var order = Array(rows.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        rows = order.map { rows[$0] }
        var metadata: [String] = []
        var decoded: [RGBImage] = []
        for (i, row) in rows.enumerated() {
            let file = images.appendingPathComponent(String(format: "%06d.jpg", i))
            try row.image.write(to: file, format: .jpeg, quality: 90)
            decoded.append(try RGBImage.load(contentsOf: file))
            var object: [String: JSONValue] = [
                "caption": .string(row.caption), "url": .string("https://example.com/demo/\(file.lastPathComponent)"),
                "path": .string(file.path),
            ]
            if let planted = row.planted { object["planted"] = planted }
            metadata.append(try JSONValue.object(object).text(pretty: false))
        }
        let vectors = try embedder.unitEmbeddings(decoded, batch: 32)
        try NPY.write(vectors, to: training.appendingPathComponent("img_emb.npy"))
        let metaFile = training.appendingPathComponent("metadata.jsonl")
        try Data((metadata.joined(separator: "\n") + "\n").utf8).write(to: metaFile)
        var build = IndexBuildConfiguration()
        build.normalize = true
        let (index, info) = try buildIndex(source: try InMemoryVectors(vectors), configuration: build)
        let indexURL = training.appendingPathComponent("train.index")
        try index.write(to: indexURL)
        let store = try IndexMetadataStore(url: IndexMetadataStore.sidecarURL(forIndex: indexURL), create: true)
        var stored = info
        stored.metadataFile = metaFile.path
        try store.setBuildInfo(stored)
        try store.importJSONL(metaFile, expectedRows: rows.count)
        log("demo: training index of \(rows.count) embeddings (\(info.factory)) with 6 planted copies")
    }
}
