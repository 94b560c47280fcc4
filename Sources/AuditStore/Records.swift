import Checkpoints
import Foundation
import GRDB

/// One audit run: what was audited, with which model and parameters, and how it went.
public struct RunRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "runs"

    /// Row id (assigned on insert).
    public var id: Int64?
    /// SHA-256 of the canonical parameters JSON (shard excluded): runs with equal fingerprints are the same
    /// audit, so a rerun resumes it and shards of it merge.
    public var fingerprint: String
    /// The model folder, as an absolute path.
    public var model: String
    /// JSON object: component name → `{"file", "sha256", "bytes"}` for each weight file.
    public var weights: String
    /// JSON object of every parameter (canonical: sorted keys).
    public var parameters: String
    /// `varaudit` version that made the run.
    public var toolVersion: String
    /// `K` and `N` of `--shard K/N`, nil for an unsharded (or merged) run.
    public var shardIndex: Int?
    public var shardCount: Int?
    /// JSON object: detector → `{"used": Bool, "detail": String}` (`safety`, `memorization`).
    public var detectors: String
    /// ISO 8601 times; `finishedAt` is nil while running.
    public var startedAt: String
    public var finishedAt: String?
    /// `running`, `done` or `failed`.
    public var status: String
    /// Why the run failed, if it did.
    public var failure: String?
    /// Seconds of work over all sessions of this run (a resumed run adds to it).
    public var seconds: Double

    public init(
        id: Int64? = nil, fingerprint: String, model: String, weights: String, parameters: String,
        toolVersion: String, shardIndex: Int? = nil, shardCount: Int? = nil, detectors: String,
        startedAt: String, finishedAt: String? = nil, status: String, failure: String? = nil, seconds: Double = 0
    ) {
        self.id = id
        self.fingerprint = fingerprint
        self.model = model
        self.weights = weights
        self.parameters = parameters
        self.toolVersion = toolVersion
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        self.detectors = detectors
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.failure = failure
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case id, fingerprint, model, weights, parameters
        case toolVersion = "tool_version"
        case shardIndex = "shard_index"
        case shardCount = "shard_count"
        case detectors
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case status, failure, seconds
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One input image of a run, with its own safety verdict and memorization score.
public struct InputRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "inputs"

    public var id: Int64?
    public var runID: Int64
    /// The input file, as an absolute path.
    public var path: String
    /// SHA-256 of the file's bytes.
    public var sha256: String
    /// Position in the sorted input list of the whole run (shards keep the global position).
    public var position: Int
    public var width: Int
    public var height: Int
    /// The safety checker's verdict on the input (nil when no checker ran).
    public var safetyFlagged: Bool?
    public var specialCare: Bool?
    /// Cosine to the nearest training image (nil without an index).
    public var memorizationScore: Double?
    /// The input's L2-normalized memorization embedding (float32, little endian).
    public var embedding: Data?
    /// Seconds to check the input (embedding, safety, index search).
    public var seconds: Double

    public init(
        id: Int64? = nil, runID: Int64, path: String, sha256: String, position: Int, width: Int, height: Int,
        safetyFlagged: Bool?, specialCare: Bool?, memorizationScore: Double?, embedding: Data?, seconds: Double
    ) {
        self.id = id
        self.runID = runID
        self.path = path
        self.sha256 = sha256
        self.position = position
        self.width = width
        self.height = height
        self.safetyFlagged = safetyFlagged
        self.specialCare = specialCare
        self.memorizationScore = memorizationScore
        self.embedding = embedding
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case id
        case runID = "run_id"
        case path, sha256, position, width, height
        case safetyFlagged = "safety_flagged"
        case specialCare = "special_care"
        case memorizationScore = "memorization_score"
        case embedding, seconds
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One generated variation `k` of an input.
public struct VariationRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "variations"

    public var id: Int64?
    public var runID: Int64
    public var inputID: Int64
    /// Index among the input's variations (row of the generator's batch).
    public var k: Int
    /// The generator seed the input's batch started from (stored as its 64-bit pattern).
    public var seed: UInt64 {
        get { UInt64(bitPattern: seedBits) }
        set { seedBits = Int64(bitPattern: newValue) }
    }
    var seedBits: Int64
    /// The PNG file, as an absolute path, and the SHA-256 of its bytes.
    public var imagePath: String
    public var imageSHA256: String
    public var width: Int
    public var height: Int
    /// Safety verdict (nil when no checker ran).
    public var safetyFlagged: Bool?
    public var specialCare: Bool?
    /// Cosine to the nearest training image (nil without an index).
    public var memorizationScore: Double?
    /// Cosine to the variation's own input.
    public var inputSimilarity: Double?
    /// The variation's L2-normalized memorization embedding (float32, little endian).
    public var embedding: Data?
    /// Seconds: the input's batch divided by its size, then this variation's safety and memorization checks.
    public var generationSeconds: Double
    public var safetySeconds: Double
    public var memorizationSeconds: Double
    /// When the row was committed (ISO 8601).
    public var createdAt: String

    public init(
        id: Int64? = nil, runID: Int64, inputID: Int64, k: Int, seed: UInt64, imagePath: String,
        imageSHA256: String, width: Int, height: Int, safetyFlagged: Bool?, specialCare: Bool?,
        memorizationScore: Double?, inputSimilarity: Double?, embedding: Data?, generationSeconds: Double,
        safetySeconds: Double, memorizationSeconds: Double, createdAt: String
    ) {
        self.id = id
        self.runID = runID
        self.inputID = inputID
        self.k = k
        self.seedBits = Int64(bitPattern: seed)
        self.imagePath = imagePath
        self.imageSHA256 = imageSHA256
        self.width = width
        self.height = height
        self.safetyFlagged = safetyFlagged
        self.specialCare = specialCare
        self.memorizationScore = memorizationScore
        self.inputSimilarity = inputSimilarity
        self.embedding = embedding
        self.generationSeconds = generationSeconds
        self.safetySeconds = safetySeconds
        self.memorizationSeconds = memorizationSeconds
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case runID = "run_id"
        case inputID = "input_id"
        case k
        case seedBits = "seed"
        case imagePath = "image_path"
        case imageSHA256 = "image_sha256"
        case width, height
        case safetyFlagged = "safety_flagged"
        case specialCare = "special_care"
        case memorizationScore = "memorization_score"
        case inputSimilarity = "input_similarity"
        case embedding
        case generationSeconds = "generation_seconds"
        case safetySeconds = "safety_seconds"
        case memorizationSeconds = "memorization_seconds"
        case createdAt = "created_at"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One concept's score for an input (`variationID` nil) or a variation.
public struct ConceptScoreRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "concept_scores"

    public var id: Int64?
    public var inputID: Int64
    public var variationID: Int64?
    /// `concept` or `special`.
    public var kind: String
    /// Position among the set's concepts of that kind.
    public var conceptIndex: Int
    public var name: String
    public var similarity: Double
    public var threshold: Double
    /// diffusers' rounded score `round(similarity − threshold + adjustment, 3)`; flagged when > 0.
    public var score: Double
    public var flagged: Bool

    public init(
        id: Int64? = nil, inputID: Int64, variationID: Int64?, kind: String, conceptIndex: Int, name: String,
        similarity: Double, threshold: Double, score: Double, flagged: Bool
    ) {
        self.id = id
        self.inputID = inputID
        self.variationID = variationID
        self.kind = kind
        self.conceptIndex = conceptIndex
        self.name = name
        self.similarity = similarity
        self.threshold = threshold
        self.score = score
        self.flagged = flagged
    }

    enum CodingKeys: String, CodingKey {
        case id
        case inputID = "input_id"
        case variationID = "variation_id"
        case kind
        case conceptIndex = "concept_index"
        case name, similarity, threshold, score, flagged
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One training neighbour of an input (`variationID` nil) or a variation, by rank.
public struct NeighborRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "neighbors"

    public var id: Int64?
    public var inputID: Int64
    public var variationID: Int64?
    /// 0 = nearest.
    public var rank: Int
    /// The training row id in the index.
    public var rowID: Int
    /// Cosine similarity.
    public var cosine: Double
    /// The row's metadata (a JSON object's text), if the index has any.
    public var metadata: String?
    /// Duplicate group among this list's neighbours.
    public var duplicateGroup: Int

    public init(
        id: Int64? = nil, inputID: Int64, variationID: Int64?, rank: Int, rowID: Int, cosine: Double,
        metadata: String?, duplicateGroup: Int
    ) {
        self.id = id
        self.inputID = inputID
        self.variationID = variationID
        self.rank = rank
        self.rowID = rowID
        self.cosine = cosine
        self.metadata = metadata
        self.duplicateGroup = duplicateGroup
    }

    enum CodingKeys: String, CodingKey {
        case id
        case inputID = "input_id"
        case variationID = "variation_id"
        case rank
        case rowID = "row_id"
        case cosine, metadata
        case duplicateGroup = "duplicate_group"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A flag raised on an input (`variationID` nil) or a variation.
public struct FlagRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "flags"

    public var id: Int64?
    public var inputID: Int64
    public var variationID: Int64?
    /// `memorized`, `reproduces-input` or `unsafe`.
    public var flag: String

    public init(id: Int64? = nil, inputID: Int64, variationID: Int64?, flag: String) {
        self.id = id
        self.inputID = inputID
        self.variationID = variationID
        self.flag = flag
    }

    enum CodingKeys: String, CodingKey {
        case id
        case inputID = "input_id"
        case variationID = "variation_id"
        case flag
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Something that went wrong with one input (unreadable file, hostile image, a failed check); the run went on.
public struct ErrorRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "errors"

    public var id: Int64?
    public var runID: Int64
    /// The input file (absolute path).
    public var input: String
    /// What was being done: `read`, `input-check`, `generate`, `variation-check`.
    public var stage: String
    public var message: String
    public var at: String

    public init(id: Int64? = nil, runID: Int64, input: String, stage: String, message: String, at: String) {
        self.id = id
        self.runID = runID
        self.input = input
        self.stage = stage
        self.message = message
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case id
        case runID = "run_id"
        case input, stage, message, at
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The flags a variation or input can carry.
public enum AuditFlag: String, Sendable, Codable, CaseIterable {
    /// Its nearest training image is at least the memorization threshold cosine-similar.
    case memorized
    /// A variation at least the reproduction threshold cosine-similar to its own input.
    case reproducesInput = "reproduces-input"
    /// The safety checker flagged it.
    case unsafe
}

/// Float32 vectors as little-endian bytes, as the store keeps embeddings.
public enum EmbeddingBlob {
    public static func encode(_ values: [Float]) -> Data {
        var data = Data(capacity: values.count * 4)
        for v in values {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    public static func decode(_ data: Data) -> [Float] {
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { i in
            let bits =
                UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            return Float(bitPattern: bits)
        }
    }
}

/// A run's stored parameters (`RunRecord.parameters`) compared across runs.
public enum RunParameters {
    /// Parameters added after runs were first stored, with the value that runs stored without them used:
    /// such a parameter at its default is left out of comparisons and fingerprints, so older runs still match.
    public static let defaults: [String: JSONValue] = ["weight_precision": .string("f32")]

    /// The parameters without those equal to their `defaults` value.
    public static func withoutDefaults(_ parameters: [String: JSONValue]) -> [String: JSONValue] {
        parameters.filter { defaults[$0.key] != $0.value }
    }

    /// The parameters without file locations: the model folder and the `path` of every nested object (checker,
    /// concepts, index); and without parameters at their `defaults`. Runs equal here are the same audit wherever
    /// their files live.
    public static func withoutLocations(_ parameters: [String: JSONValue]) -> [String: JSONValue] {
        var p = withoutDefaults(parameters)
        p["model"] = nil
        for (key, value) in p {
            if var o = value.objectValue {
                o["path"] = nil
                p[key] = .object(o)
            }
        }
        return p
    }

    /// A stored run's parameters without file locations.
    public static func withoutLocations(of run: RunRecord) -> [String: JSONValue] {
        withoutLocations(JSONValue.parse(run.parameters)?.objectValue ?? [:])
    }

    /// The keys whose values differ, sorted, with each side as compact JSON text; a parameter absent on one side
    /// counts as its `defaults` value when it has one.
    public static func differences(_ a: [String: JSONValue], _ b: [String: JSONValue]) -> [(
        key: String, a: String, b: String
    )] {
        let a = a.merging(defaults) { stored, _ in stored }
        let b = b.merging(defaults) { stored, _ in stored }
        func show(_ v: JSONValue?) -> String { (try? (v ?? .null).text(pretty: false)) ?? "?" }
        return Set(a.keys).union(b.keys).sorted().filter { a[$0] != b[$0] }.map { ($0, show(a[$0]), show(b[$0])) }
    }
}
