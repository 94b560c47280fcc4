import AuditStore
import Checkpoints
import Diffusion
import Foundation
import Imaging
import Memorization
import Safety
import Tensors

/// Everything an audit run needs; every field documented with its default (those of `varaudit audit`).
public struct AuditConfiguration: Sendable {
    /// The diffusers pipeline folder.
    public var model: URL
    /// Input images (absolute paths, in any order: the run sorts them).
    public var inputs: [URL]
    /// Variations, steps, guidance (3.0), seed (0), scheduler (the model's), size (the model's), eta (0).
    public var pipeline = ImageVariationPipeline.Configuration()
    /// A faiss index of training embeddings (with its `.meta.sqlite` sidecar when it has one) or a `.npy`
    /// matrix of them; nil skips the nearest-neighbour check.
    public var index: URL?
    /// A safety checker folder; nil uses the model's own (none: the safety check is skipped).
    public var checker: URL?
    /// A concept-set file; nil uses the checker's built-in concepts.
    public var concepts: URL?
    /// Cosine to the nearest training image at or above which an image is `memorized`. Default 0.95.
    public var memorizationThreshold: Float = 0.95
    /// Cosine between a variation and its input at or above which it `reproduces-input`. Default 0.95.
    public var reproductionThreshold: Float = 0.95
    /// Training neighbours kept per image. Default 10.
    public var neighbors = 10
    /// The audit database. Default `audit.sqlite`.
    public var database: URL
    /// Where variation images go; nil: `<database without extension>-images/` beside the database.
    public var images: URL?
    /// Start a new run even when the database holds one with other parameters. Default false.
    public var newRun = false
    /// Audit only this shard of the sorted inputs. Default nil (all).
    public var shard: Shard?
    /// Largest accepted input image, in pixels.
    public var maxPixels = RGBImage.defaultMaxPixels
    /// How the networks (pipeline and safety checker) hold their weight matrices: a run parameter. Default
    /// float32; float16 uses the `fp16` variant files when present (their SHA-256 is recorded).
    public var weights: WeightPrecision = .float32

    public init(model: URL, inputs: [URL], database: URL) {
        self.model = model
        self.inputs = inputs
        self.database = database
    }
}

/// What an audit reports as it goes (progress goes to stderr in the CLI).
public enum AuditEvent: Sendable {
    case note(String)
    case started(run: Int64, resumed: Bool, inputs: Int, variations: Int)
    case inputSkipped(position: Int, total: Int, input: URL)
    case inputStarted(position: Int, total: Int, input: URL, missing: Int)
    case step(position: Int, total: Int, input: URL, step: Int, steps: Int, secondsPerStep: Double, eta: Double?)
    case variationStored(input: URL, k: Int, flags: [AuditFlag])
    case inputFailed(input: URL, stage: String, message: String)
}

/// The result of an audit run.
public struct AuditOutcome: Sendable {
    public var summary: RunSummary
    public var database: URL
    public var images: URL
}

/// One audit: generates every input's variations exactly as `GenerationRun` does (same seeds, same images),
/// checks every input and variation for safety (every concept score kept) and memorization (nearest training
/// neighbours, cosine to the input), and commits each variation to the `AuditStore` as soon as its image is on
/// disk. Rerunning resumes: stored variations are skipped; nothing is stored twice.
public final class AuditRun {
    public let configuration: AuditConfiguration
    let folder: ModelFolder
    let pipeline: ImageVariationPipeline
    let checker: SafetyChecker?
    let scorer: ConceptScorer?
    /// Whether the checker's tower equals the image encoder's and preprocesses alike (one CLIP pass serves both).
    let sharedCLIPPass: Bool
    let embedder: ImageEmbedder
    let index: (any MemorizationIndex)?
    let indexMetadata: IndexMetadataStore?
    let generation: ImageVariationPipeline.Configuration
    let weights: [String: JSONValue]
    let parameters: [String: JSONValue]
    let detectors: [String: JSONValue]
    public let fingerprint: String
    /// Notes on what was found while loading (shown by the CLI).
    public private(set) var notes: [String] = []

    /// Loads the model, checker, concepts and index, and hashes the weight files (nothing is written yet).
    public init(_ configuration: AuditConfiguration, events: (AuditEvent) -> Void = { _ in }) throws {
        self.configuration = configuration
        let c = configuration
        folder = try ModelFolder(url: c.model)
        var weights: [String: JSONValue] = [:]
        for (name, url) in try folder.weightFiles(precision: c.weights) {
            events(.note("hashing \(url.path)"))
            let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            weights[name] = .object([
                "file": .string(url.path), "sha256": .string(try Digest.sha256(fileAt: url)),
                "bytes": .int(Int(bytes)),
            ])
        }
        self.weights = weights
        pipeline = try folder.loadPipeline(weights: c.weights)
        var generation = c.pipeline
        generation.height = generation.height ?? pipeline.defaultSize
        generation.width = generation.width ?? pipeline.defaultSize
        self.generation = generation
        embedder = try ImageEmbedder(pipeline: pipeline, folder: folder)

        var detectors: [String: JSONValue] = [:]
        var checkerParameter: JSONValue = .null
        var conceptsParameter: JSONValue = .null
        let location: SafetyCheckerLocation?
        if let dir = c.checker {
            guard let found = try SafetyCheckerLocation.find(in: dir) else {
                throw VariationAuditError(file: dir.path, "no safety checker there (--checker)")
            }
            location = found
        } else {
            location = folder.safetyChecker
        }
        if let location {
            let checker = try SafetyChecker(location: location, weights: c.weights)
            let set = try c.concepts.map { try ConceptSet.load(url: $0) }
            let scorer = try checker.scorer(concepts: set)
            self.checker = checker
            self.scorer = scorer
            let checkerArchive = try loadTensorArchive(url: checker.weightsURL)
            let nested = checkerArchive.contains("vision_model.vision_model.embeddings.class_embedding")
            let checkerDigest = try Digest.visionTower(
                checkerArchive, prefix: nested ? "vision_model.vision_model" : "vision_model")
            // Both digests read the files the networks were loaded from, as float32 values.
            let encoderArchive = try loadTensorArchive(
                url: folder.pipeline.weightsURL(for: "image_encoder", precision: c.weights))
            let encoderDigest = try Digest.visionTower(encoderArchive, prefix: "vision_model")
            sharedCLIPPass = checkerDigest == encoderDigest && checker.preprocessing == embedder.settings
            let checkerHash: JSONValue
            if let known = weights["safety_checker"]?.objectValue?["sha256"], c.checker == nil {
                checkerHash = known
            } else {
                checkerHash = .string(try Digest.sha256(fileAt: checker.weightsURL))
            }
            checkerParameter = .object(["path": .string(location.checker.path), "sha256": checkerHash])
            if let url = c.concepts {
                conceptsParameter = .object([
                    "path": .string(url.standardizedFileURL.path), "name": .string(scorer.set.name),
                    "sha256": .string(try Digest.sha256(fileAt: url)),
                ])
            }
            let enabled = scorer.set.concepts.filter(\.enabled).count
            detectors["safety"] = .object([
                "used": .bool(true),
                "detail": .string(
                    "safety checker \(location.checker.path); concept set '\(scorer.set.name)' (\(enabled) concepts)"
                        + (sharedCLIPPass ? "; one CLIP pass shared with the image encoder" : "")),
            ])
        } else {
            checker = nil
            scorer = nil
            sharedCLIPPass = false
            detectors["safety"] = .object([
                "used": .bool(false),
                "detail": .string("no --checker given and the model folder has no safety_checker"),
            ])
        }

        var indexParameter: JSONValue = .null
        if let url = c.index {
            let loaded = try Self.loadIndex(url)
            guard loaded.index.dimension == pipeline.encoderConfig.projectionDim else {
                throw VariationAuditError(
                    file: url.path,
                    "index vectors have \(loaded.index.dimension) values, the image encoder's embeddings "
                        + "\(pipeline.encoderConfig.projectionDim)")
            }
            index = loaded.index
            indexMetadata = loaded.metadata
            let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            indexParameter = .object([
                "path": .string(url.standardizedFileURL.path), "count": .int(Int(loaded.index.count)),
                "dimension": .int(Int(loaded.index.dimension)), "bytes": .int(Int(bytes)),
                "metric": .string(loaded.index.metric.rawValue),
            ])
            var detail = "index \(url.path): \(loaded.index.count) training embeddings"
            var memorization: [String: JSONValue] = ["used": .bool(true)]
            let info = try loaded.metadata?.buildInfo()
            if let recall = info?.tunedRecall {
                detail += String(format: ", recall@10 %.4f (index build)", recall)
                memorization["recall_at_10"] = .double(recall)
            } else if loaded.index is BruteForceIndex || info?.factory == "Flat" {
                detail += ", exact search (recall@10 = 1)"
                memorization["recall_at_10"] = .double(1)
            }
            memorization["detail"] = .string(detail)
            detectors["memorization"] = .object(memorization)
            if let info = try loaded.metadata?.buildInfo(), !info.normalized, loaded.index.metric == .innerProduct {
                notes.append(
                    "note: \(url.path) was built without --normalize; inner products are cosines only if the "
                        + "training embeddings were unit vectors")
            }
        } else {
            index = nil
            indexMetadata = nil
            detectors["memorization"] = .object([
                "used": .bool(false),
                "detail": .string("no --index given: no nearest-neighbour search (cosine to the input is kept)"),
            ])
        }
        self.detectors = detectors

        func number(_ f: Float) -> JSONValue { .double(Double("\(f)") ?? Double(f)) }
        parameters = [
            "model": .string(folder.url.path),
            "variations": .int(Int(generation.variations)), "steps": .int(Int(generation.steps)),
            "guidance": number(generation.guidance),
            "seed": generation.seed <= UInt64(Int.max) ? .int(Int(generation.seed)) : .string("\(generation.seed)"),
            "scheduler": .string(generation.scheduler?.rawValue ?? pipeline.schedulerConfig.className ?? ""),
            "eta": number(generation.eta), "height": .int(Int(generation.height ?? 0)),
            "width": .int(Int(generation.width ?? 0)),
            "memorization_threshold": number(c.memorizationThreshold),
            "reproduction_threshold": number(c.reproductionThreshold),
            "neighbors": .int(Int(c.neighbors)), "checker": checkerParameter, "concepts": conceptsParameter,
            "index": indexParameter, "max_pixels": .int(Int(c.maxPixels)),
            "memorization_embedding": .string("image_encoder image_embeds, CLIP preprocessing, L2-normalized"),
            "weight_precision": .string(c.weights.rawValue),
        ]
        fingerprint = Self.fingerprint(parameters: parameters, weights: weights)
    }

    /// A hash of what decides the results: every parameter except file locations, and the weights' hashes.
    static func fingerprint(parameters: [String: JSONValue], weights: [String: JSONValue]) -> String {
        let p = RunParameters.withoutLocations(parameters)
        let hashes = weights.mapValues { $0.objectValue?["sha256"] ?? .null }
        let text =
            (try? JSONValue.object(["parameters": .object(p), "weights": .object(hashes)]).text(pretty: false)) ?? ""
        return Digest.sha256(text)
    }

    /// A faiss index file (with its metadata sidecar) or a `.npy` matrix searched exactly.
    static func loadIndex(_ url: URL) throws -> (index: any MemorizationIndex, metadata: IndexMetadataStore?) {
        if url.pathExtension.lowercased() == "npy" {
            var vectors = try NPY.read(url: url)
            guard vectors.rank == 2 else {
                throw VariationAuditError(
                    file: url.path, "expected an [N, D] matrix of embeddings, got \(vectors.shape)")
            }
            l2NormalizeRows(&vectors)
            let index = BruteForceIndex(dimension: vectors.shape[1], metric: .innerProduct)
            try index.add(vectors)
            return (index, nil)
        }
        return (try FaissIndex(contentsOf: url), try IndexMetadataStore.open(forIndex: url))
    }

    /// Where the images of this run go: `images/<first 12 hex digits of the fingerprint>/`.
    public var imageDirectory: URL {
        let base =
            configuration.images
            ?? {
                let db = configuration.database
                return db.deletingPathExtension().deletingLastPathComponent()
                    .appendingPathComponent(db.deletingPathExtension().lastPathComponent + "-images")
            }()
        return base.appendingPathComponent(String(fingerprint.prefix(12)), isDirectory: true)
    }

    /// Runs (or resumes) the audit. Inputs that cannot be read or checked are recorded as errors and the run goes
    /// on; anything else that fails marks the run failed and is thrown.
    public func run(
        store: AuditStore, events: (AuditEvent) -> Void = { _ in }
    ) throws -> AuditOutcome {
        let c = configuration
        for note in notes { events(.note(note)) }
        for (name, d) in detectors.sorted(by: { $0.key < $1.key }) where d.objectValue?["used"] == .bool(false) {
            events(.note("\(name) check skipped: \(d.objectValue?["detail"]?.stringValue ?? "")"))
        }
        let all = try InputList.sorted(files: c.inputs, directories: [])
        let mine = all.enumerated().filter { c.shard?.contains(position: $0.offset) ?? true }
        let (run, resumed) = try openRun(store: store)
        let runID = run.id!
        let started = Date()
        try store.setStatus(run: runID, status: "running", finishedAt: nil, failure: nil, addSeconds: 0)
        try FileManager.default.createDirectory(at: imageDirectory, withIntermediateDirectories: true)
        AtomicFile.removeLeftovers(in: imageDirectory)
        events(.started(run: runID, resumed: resumed, inputs: mine.count, variations: generation.variations))
        var secondsPerInput: [Double] = []
        do {
            for (n, (position, file)) in mine.enumerated() {
                let remaining = mine.count - n
                let t0 = Date()
                let didWork = try audit(
                    input: file, position: position, progress: (n, mine.count), runID: runID, store: store,
                    eta: { stepFraction in
                        guard
                            let avg = secondsPerInput.isEmpty
                                ? nil
                                : secondsPerInput.reduce(0, +)
                                    / Double(secondsPerInput.count)
                        else { return nil }
                        return avg * (Double(remaining) - stepFraction)
                    }, events: events)
                if didWork { secondsPerInput.append(Date().timeIntervalSince(t0)) }
            }
        } catch {
            try? store.setStatus(
                run: runID, status: "failed", finishedAt: Timestamp.now(), failure: "\(error)",
                addSeconds: Date().timeIntervalSince(started))
            throw error
        }
        try store.setStatus(
            run: runID, status: "done", finishedAt: Timestamp.now(), failure: nil,
            addSeconds: Date().timeIntervalSince(started))
        return AuditOutcome(
            summary: try store.summary(of: try store.run(runID)), database: store.url, images: imageDirectory)
    }

    /// The run to resume (same fingerprint and shard), or a new one; refuses other parameters unless `newRun`.
    func openRun(store: AuditStore) throws -> (RunRecord, resumed: Bool) {
        let c = configuration
        let runs = try store.runs()
        if !c.newRun,
            let match = runs.last(where: {
                $0.fingerprint == fingerprint && $0.shardIndex == c.shard?.index && $0.shardCount == c.shard?.count
            })
        {
            try store.setDetectors(run: match.id!, try JSONValue.object(detectors).text(pretty: false))
            return (match, true)
        }
        if !c.newRun, let last = runs.last {
            throw VariationAuditError(
                file: store.url.path,
                "holds run \(last.id!) with other parameters (\(differences(from: last))); rerun with the same "
                    + "parameters to resume it, or pass --new-run to start another run in this database")
        }
        let record = RunRecord(
            fingerprint: fingerprint, model: folder.url.path,
            weights: try JSONValue.object(weights).text(pretty: false),
            parameters: try JSONValue.object(parameters).text(pretty: false),
            toolVersion: VariationAuditVersion.current,
            shardIndex: c.shard?.index, shardCount: c.shard?.count,
            detectors: try JSONValue.object(detectors).text(pretty: false), startedAt: Timestamp.now(),
            status: "running")
        return (try store.insertRun(record), false)
    }

    /// `name: stored → now` for each parameter, weight hash or shard that differs from `run`.
    func differences(from run: RunRecord) -> String {
        let old = JSONValue.parse(run.parameters)?.objectValue ?? [:]
        var out = RunParameters.differences(old, parameters).map { "\($0.key): \($0.a) → \($0.b)" }
        let oldWeights = JSONValue.parse(run.weights)?.objectValue ?? [:]
        for key in Set(oldWeights.keys).union(weights.keys).sorted()
        where oldWeights[key]?.objectValue?["sha256"] != weights[key]?.objectValue?["sha256"] {
            out.append("weights of \(key) differ")
        }
        if run.shardIndex != configuration.shard?.index || run.shardCount != configuration.shard?.count {
            let stored = run.shardIndex.map { "\($0)/\(run.shardCount ?? 0)" } ?? "none"
            out.append("shard: \(stored) → \(configuration.shard?.description ?? "none")")
        }
        return out.isEmpty ? "none named" : out.joined(separator: "; ")
    }

    // MARK: One input

    /// Checks the input (once), then generates and stores its missing variations. Returns whether it generated.
    func audit(
        input file: URL, position: Int, progress: (Int, Int), runID: Int64, store: AuditStore,
        eta: (Double) -> Double?, events: (AuditEvent) -> Void
    ) throws -> Bool {
        let n = generation.variations
        var stored = try store.input(run: runID, path: file.path)
        if let stored, try store.finishedVariations(input: stored.id!).count >= n {
            events(.inputSkipped(position: progress.0, total: progress.1, input: file))
            return false
        }
        try store.clearErrors(run: runID, input: file.path)
        func fail(_ stage: String, _ error: any Error) throws {
            let message = "\(error)"
            try store.recordError(run: runID, input: file.path, stage: stage, message: message, at: Timestamp.now())
            events(.inputFailed(input: file, stage: stage, message: message))
        }
        let bytes: Data
        let image: RGBImage
        do {
            bytes = try Data(contentsOf: file)
            image = try RGBImage.decode(data: bytes, name: file.path, maxPixels: configuration.maxPixels)
        } catch {
            try fail("read", error)
            return false
        }
        let sha = Digest.sha256(bytes)
        if stored == nil {
            do {
                stored = try checkInput(image, file: file, sha256: sha, position: position, runID: runID, store: store)
            } catch {
                try fail("input-check", error)
                return false
            }
        } else if stored!.sha256 != sha {
            try fail(
                "read",
                VariationAuditError(
                    file: file.path,
                    "changed since this run checked it (SHA-256 \(stored!.sha256.prefix(12))… → \(sha.prefix(12))…); "
                        + "audit it in a new run (--new-run)"))
            return false
        }
        let inputRecord = stored!
        let finished = try store.finishedVariations(input: inputRecord.id!)
        let missing = (0..<n).filter { !finished.contains($0) }
        events(.inputStarted(position: progress.0, total: progress.1, input: file, missing: missing.count))

        let started = Date()
        let output: ImageVariationPipeline.Output
        do {
            output = try pipeline.generate(image, configuration: generation) { step in
                let perStep = Date().timeIntervalSince(started) / Double(step.step)
                let fraction = Double(step.step) / Double(step.total)
                let own = perStep * Double(step.total - step.step)
                events(
                    .step(
                        position: progress.0, total: progress.1, input: file, step: step.step, steps: step.total,
                        secondsPerStep: perStep, eta: eta(fraction).map { max($0, own) }))
                return true
            }
        } catch {
            try fail("generate", error)
            return false
        }
        let generationSeconds = Date().timeIntervalSince(started) / Double(n)
        let inputEmbedding = inputRecord.embedding.map(EmbeddingBlob.decode)
        let stem = file.deletingPathExtension().lastPathComponent
        let checks: [VariationChecks]
        do {
            checks = try check(missing.map { output.images[$0] }, inputEmbedding: inputEmbedding)
        } catch {
            try fail("variation-check", error)
            return false
        }
        for (j, k) in missing.enumerated() {
            let generated = output.images[k]
            let name = "\(stem)-\(sha.prefix(8))-\(k).png"
            let url = imageDirectory.appendingPathComponent(name)
            var text = parameters
            text["input"] = .string(file.path)
            text["variation"] = .int(Int(k))
            text["run"] = .int(Int(runID))
            let png = try generated.pngData(text: [("parameters", try JSONValue.object(text).text(pretty: false))])
            try AtomicFile.write(to: url) { try Data(png).write(to: $0) }
            let check = checks[j]
            let record = VariationRecord(
                runID: runID, inputID: inputRecord.id!, k: k, seed: generation.seed, imagePath: url.path,
                imageSHA256: Digest.sha256(png), width: generated.width, height: generated.height,
                safetyFlagged: check.verdict?.flagged, specialCare: check.verdict?.specialCare,
                memorizationScore: check.memorization.map { Double($0.score ?? .nan) }.flatMap { $0.isNaN ? nil : $0 },
                inputSimilarity: check.inputSimilarity.map(Double.init),
                embedding: EmbeddingBlob.encode(check.embedding), generationSeconds: generationSeconds,
                safetySeconds: check.safetySeconds, memorizationSeconds: check.memorizationSeconds,
                createdAt: Timestamp.now())
            try store.saveVariation(
                record, scores: Self.scoreRecords(check.verdict), neighbors: Self.neighborRecords(check.memorization),
                flags: check.flags)
            events(.variationStored(input: file, k: k, flags: check.flags))
        }
        return true
    }

    /// The input's own checks, stored with it.
    func checkInput(
        _ image: RGBImage, file: URL, sha256: String, position: Int, runID: Int64, store: AuditStore
    ) throws -> InputRecord {
        let t0 = Date()
        let check = try check([image], inputEmbedding: nil)[0]
        var record = InputRecord(
            runID: runID, path: file.path, sha256: sha256, position: position, width: image.width,
            height: image.height, safetyFlagged: check.verdict?.flagged, specialCare: check.verdict?.specialCare,
            memorizationScore: check.memorization?.score.map(Double.init),
            embedding: EmbeddingBlob.encode(check.embedding),
            seconds: Date().timeIntervalSince(t0))
        let flags = check.flags.filter { $0 != .reproducesInput }
        record.id = try store.saveInput(
            record, scores: Self.scoreRecords(check.verdict), neighbors: Self.neighborRecords(check.memorization),
            flags: flags)
        return record
    }

    /// The checks of one image.
    struct VariationChecks {
        var embedding: [Float]
        var verdict: SafetyVerdict?
        var memorization: MemorizationScore?
        var inputSimilarity: Float?
        var flags: [AuditFlag]
        var safetySeconds: Double
        var memorizationSeconds: Double
    }

    /// Memorization embeddings (image encoder, CLIP preprocessing, unit rows), safety verdicts and training
    /// neighbours of `images`; `inputEmbedding` (a unit vector) gives the cosine to the input.
    func check(_ images: [RGBImage], inputEmbedding: [Float]?) throws -> [VariationChecks] {
        guard !images.isEmpty else { return [] }
        let t0 = Date()
        let raw = try embedder.embed(images)  // [n, D]
        var unit = raw
        l2NormalizeRows(&unit)
        let embedSeconds = Date().timeIntervalSince(t0)
        let d = raw.shape[1]
        let rawRows = raw.rows
        let unitRows = unit.rows

        var verdicts: [SafetyVerdict?] = Array(repeating: nil, count: images.count)
        var safetySeconds = 0.0
        if let checker, let scorer {
            let t1 = Date()
            let embeddings = sharedCLIPPass ? rawRows : try checker.embed(images)
            verdicts = try embeddings.map { try scorer.verdict(embedding: $0) }
            safetySeconds = (sharedCLIPPass ? embedSeconds : 0) + Date().timeIntervalSince(t1)
        }
        let t2 = Date()
        var scores: [MemorizationScore?] = Array(repeating: nil, count: images.count)
        if let index {
            var mc = MemorizationConfiguration()
            mc.k = configuration.neighbors
            mc.memorizedThreshold = configuration.memorizationThreshold
            mc.reproducesInputThreshold = configuration.reproductionThreshold
            let scorer = MemorizationScorer(index: index, metadata: indexMetadata, configuration: mc)
            scores = try scorer.score(outputs: unit).map { $0 }
        }
        let memorizationSeconds = embedSeconds + Date().timeIntervalSince(t2)
        return (0..<images.count).map { i in
            var flags: [AuditFlag] = []
            if let s = scores[i]?.score, s >= configuration.memorizationThreshold { flags.append(.memorized) }
            var similarity: Float?
            if let inputEmbedding, inputEmbedding.count == d {
                var dot: Double = 0
                for j in 0..<d { dot += Double(unitRows[i][j]) * Double(inputEmbedding[j]) }
                similarity = Float(dot)
                if similarity! >= configuration.reproductionThreshold { flags.append(.reproducesInput) }
            }
            if verdicts[i]?.flagged == true { flags.append(.unsafe) }
            return VariationChecks(
                embedding: unitRows[i], verdict: verdicts[i], memorization: scores[i], inputSimilarity: similarity,
                flags: flags, safetySeconds: safetySeconds / Double(images.count),
                memorizationSeconds: memorizationSeconds / Double(images.count))
        }
    }

    static func scoreRecords(_ verdict: SafetyVerdict?) -> [ConceptScoreRecord] {
        guard let verdict else { return [] }
        // Each Float as the double nearest its shortest decimal text, as `varaudit safety --json` prints it.
        func number(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }
        func record(_ kind: String, _ s: ConceptScore) -> ConceptScoreRecord {
            ConceptScoreRecord(
                inputID: 0, variationID: nil, kind: kind, conceptIndex: s.index, name: s.name,
                similarity: number(s.similarity), threshold: number(s.threshold), score: number(s.score),
                flagged: s.flagged)
        }
        return verdict.concepts.map { record("concept", $0) } + verdict.special.map { record("special", $0) }
    }

    static func neighborRecords(_ score: MemorizationScore?) -> [NeighborRecord] {
        guard let score else { return [] }
        return score.neighbors.enumerated().map { rank, n in
            NeighborRecord(
                inputID: 0, variationID: nil, rank: rank, rowID: n.id, cosine: Double(n.cosine), metadata: n.metadata,
                duplicateGroup: n.group)
        }
    }
}
