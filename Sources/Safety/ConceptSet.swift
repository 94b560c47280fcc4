import Checkpoints
import Foundation
import Tensors

/// Whether a concept is one of the checker's ordinary concepts or a "special care" one, whose hit makes the
/// checker stricter (adds the set's adjustment to later scores).
public enum ConceptKind: String, Sendable, CaseIterable, Codable {
    case concept
    case special
}

/// Where a concept's embedding lives when it is not written inline: a `.npy` file (one row of a 2-D array,
/// or a whole 1-D array) or a tensor (`key`, and `row` for a 2-D one) of a `.safetensors` file. `file` is
/// relative to the concept-set file's folder unless absolute.
public struct EmbeddingReference: Sendable, Equatable, Codable {
    public var file: String
    public var key: String?
    public var row: Int?

    public init(file: String, key: String? = nil, row: Int? = nil) {
        self.file = file
        self.key = key
        self.row = row
    }
}

/// One concept of a set: its embedding, threshold and state.
public struct Concept: Sendable, Equatable {
    /// A name unique within the set.
    public var name: String
    /// `concept` or `special`.
    public var kind: ConceptKind
    /// The cosine similarity above which (after the checker's rounding) the concept fires.
    public var threshold: Float
    /// Disabled concepts are kept in the file but not evaluated.
    public var enabled: Bool
    /// The embedding (in the checker's projection space; it need not be normalized).
    public var embedding: [Float]
    /// Where the embedding is stored in the file: `nil` writes it inline.
    public var reference: EmbeddingReference?

    public init(
        name: String, kind: ConceptKind, threshold: Float, enabled: Bool = true, embedding: [Float],
        reference: EmbeddingReference? = nil
    ) {
        self.name = name
        self.kind = kind
        self.threshold = threshold
        self.enabled = enabled
        self.embedding = embedding
        self.reference = reference
    }
}

/// Where a set's embeddings and thresholds came from.
public struct ConceptSetProvenance: Sendable, Equatable, Codable {
    /// The source file (e.g. the checker's `model.safetensors`), as given when the set was made.
    public var source: String
    /// SHA-256 of `source` (lowercase hex).
    public var sha256: String?
    /// Free text: how the set was made.
    public var note: String?
    /// The weights file of the CLIP model whose text tower embedded the set's text concepts, if any.
    public var textModel: String?
    /// SHA-256 of `textModel`: text concepts from another CLIP model are refused (lowercase hex).
    public var textModelSHA256: String?

    public init(
        source: String, sha256: String? = nil, note: String? = nil, textModel: String? = nil,
        textModelSHA256: String? = nil
    ) {
        self.source = source
        self.sha256 = sha256
        self.note = note
        self.textModel = textModel
        self.textModelSHA256 = textModelSHA256
    }

    enum CodingKeys: String, CodingKey {
        case source, sha256, note
        case textModel = "text_model"
        case textModelSHA256 = "text_model_sha256"
    }
}

/// A concept set (`concepts/*.json`, format in `concepts/README.md`): the concepts and special-care concepts a
/// safety checker compares image embeddings with, their thresholds, and the special-care adjustment.
public struct ConceptSet: Sendable, Equatable {
    /// The value of the file's `format` field.
    public static let formatName = "varaudit-concepts"
    /// The format version this code reads and writes.
    public static let formatVersion = 1
    /// diffusers' special-care adjustment.
    public static let defaultAdjustment: Float = 0.01

    /// A short name for the set.
    public var name: String
    /// Free text.
    public var description: String?
    /// Added to every later score once a special concept fires (default 0.01, as diffusers).
    public var adjustment: Float
    /// Where the set came from.
    public var provenance: ConceptSetProvenance?
    /// All concepts in file order; ordinary and special ones are indexed separately, in this order.
    public var concepts: [Concept]
    /// The file the set was read from (for messages), or a description such as `<checkpoint …>`.
    public var source: String

    public init(
        name: String, description: String? = nil, adjustment: Float = ConceptSet.defaultAdjustment,
        provenance: ConceptSetProvenance? = nil, concepts: [Concept], source: String = "<memory>"
    ) {
        self.name = name
        self.description = description
        self.adjustment = adjustment
        self.provenance = provenance
        self.concepts = concepts
        self.source = source
    }

    /// The concepts of one kind, with their index within that kind.
    public func indexed(_ kind: ConceptKind) -> [(index: Int, concept: Concept)] {
        var out: [(Int, Concept)] = []
        for c in concepts where c.kind == kind { out.append((out.count, c)) }
        return out
    }

    /// The common embedding size (nil for an empty set).
    public var embeddingSize: Int? { concepts.first?.embedding.count }

    /// Checks that names are unique, thresholds finite, and every embedding has `embeddingSize` values
    /// (`size`, e.g. the checker's projection width, when given) with a nonzero norm.
    public func validate(embeddingSize size: Int? = nil) throws {
        let expected = size ?? embeddingSize
        var seen: Set<String> = []
        if !adjustment.isFinite { throw SafetyError(file: source, "adjustment \(adjustment) is not finite") }
        for c in concepts {
            if c.name.isEmpty { throw SafetyError(file: source, concept: c.name, "empty name") }
            if !seen.insert(c.name).inserted {
                throw SafetyError(file: source, concept: c.name, "name used twice")
            }
            if !c.threshold.isFinite {
                throw SafetyError(file: source, concept: c.name, "threshold \(c.threshold) is not finite")
            }
            if let expected, c.embedding.count != expected {
                throw SafetyError(
                    file: source, concept: c.name,
                    "embedding has \(c.embedding.count) values, expected \(expected)"
                        + (size != nil ? " (the checker's projection_dim)" : ""))
            }
            if c.embedding.contains(where: { !$0.isFinite }) {
                throw SafetyError(file: source, concept: c.name, "embedding has non-finite values")
            }
            if !c.embedding.contains(where: { $0 != 0 }) {
                throw SafetyError(file: source, concept: c.name, "embedding is all zeros")
            }
        }
    }
}

// MARK: - Reading

/// The file form of a concept set (concepts/README.md), read and written with `Codable`; `ConceptSet` is the
/// resolved, validated value (every embedding loaded).
struct ConceptSetFile: Codable {
    var format: String?
    var version: Int?
    var name: String?
    var description: String?
    var embeddingSize: Int?
    var adjustment: Float?
    var provenance: ConceptSetProvenance?
    var concepts: [Entry]

    enum CodingKeys: String, CodingKey {
        case format, version, name, description
        case embeddingSize = "embedding_size"
        case adjustment, provenance, concepts
    }

    /// One concept as written: an embedding inline or by reference.
    struct Entry: Codable {
        var name: String
        var kind: ConceptKind
        var threshold: Float
        var enabled: Bool
        var embedding: Embedding

        enum Embedding: Codable {
            case values([Float])
            case reference(EmbeddingReference)

            func encode(to encoder: any Encoder) throws {
                var c = encoder.singleValueContainer()
                switch self {
                case .values(let v): try c.encode(v)
                case .reference(let r): try c.encode(r)
                }
            }

            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let values = try? c.decode([Float].self) {
                    self = .values(values)
                } else if let reference = try? c.decode(EmbeddingReference.self) {
                    self = .reference(reference)
                } else if (try? c.decode([JSONScalar].self)) != nil {
                    throw EntryError("embedding holds a non-number")
                } else {
                    throw EntryError("embedding must be an array of numbers or {\"file\", \"key\", \"row\"}")
                }
            }
        }

        init(name: String, kind: ConceptKind, threshold: Float, enabled: Bool, embedding: Embedding) {
            self.name = name
            self.kind = kind
            self.threshold = threshold
            self.enabled = enabled
            self.embedding = embedding
        }

        enum CodingKeys: String, CodingKey { case name, kind, threshold, enabled, embedding }

        /// Decodes with errors that name the concept (or `#position` before its name is known).
        init(from decoder: any Decoder) throws {
            let position = decoder.codingPath.last?.intValue.map { "#\($0)" } ?? "#?"
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard let name = try? c.decode(String.self, forKey: .name), !name.isEmpty else {
                throw EntryError("missing or empty \"name\"", concept: position)
            }
            func field<T: Decodable>(_ key: CodingKeys, _ type: T.Type, _ what: String) throws -> T? {
                guard c.contains(key) else { return nil }
                do { return try c.decode(T.self, forKey: key) } catch { throw EntryError(what, concept: name) }
            }
            let kindText = try field(.kind, String.self, "kind must be \"concept\" or \"special\"") ?? "concept"
            guard let kind = ConceptKind(rawValue: kindText) else {
                throw EntryError("kind must be \"concept\" or \"special\", got \"\(kindText)\"", concept: name)
            }
            guard let threshold = try field(.threshold, Float.self, "non-numeric \"threshold\"") else {
                throw EntryError("missing \"threshold\"", concept: name)
            }
            let enabled = try field(.enabled, Bool.self, "\"enabled\" must be true or false") ?? true
            guard c.contains(.embedding) else { throw EntryError("missing \"embedding\"", concept: name) }
            do {
                embedding = try c.decode(Embedding.self, forKey: .embedding)
            } catch let error as EntryError {
                throw EntryError(error.message, concept: name)
            }
            self.name = name
            self.kind = kind
            self.threshold = threshold
            self.enabled = enabled
        }
    }

    /// An entry that cannot be read; turned into a `SafetyError` naming the file.
    struct EntryError: Error {
        let message: String
        let concept: String?
        init(_ message: String, concept: String? = nil) {
            self.message = message
            self.concept = concept
        }
    }

    /// Any JSON scalar (to tell "an array with a non-number" from other shapes).
    enum JSONScalar: Decodable {
        case number(Double)
        case other
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            self = (try? c.decode(Double.self)).map(JSONScalar.number) ?? .other
        }
    }
}

extension ConceptSet {
    /// Reads a concept-set file and the embedding files it references; errors name the file and the concept.
    public static func load(url: URL) throws -> ConceptSet {
        let file = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SafetyError(file: file, "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, file: file, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses concept-set JSON; references resolve against `baseDirectory`.
    public static func decode(_ data: Data, file: String, baseDirectory: URL) throws -> ConceptSet {
        let parsed: ConceptSetFile
        do {
            parsed = try JSONDecoder().decode(ConceptSetFile.self, from: data)
        } catch let error as ConceptSetFile.EntryError {
            throw SafetyError(file: file, concept: error.concept, error.message)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw SafetyError(file: file, "not valid JSON: \(context.debugDescription)")
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw SafetyError(file: file, "not a JSON object")
        } catch DecodingError.keyNotFound(let key, let context) where context.codingPath.isEmpty {
            throw SafetyError(
                file: file, "missing \"\(key.stringValue)\"" + (key.stringValue == "concepts" ? " array" : ""))
        } catch let DecodingError.typeMismatch(_, context) {
            throw SafetyError(file: file, "\(context.codingPath.map(\.stringValue).joined(separator: ".")): wrong type")
        } catch {
            throw SafetyError(file: file, "not a concept set: \(error)")
        }
        if let format = parsed.format, format != formatName {
            throw SafetyError(file: file, "format is \(format), expected \"\(formatName)\"")
        }
        if let version = parsed.version, version != formatVersion {
            throw SafetyError(file: file, "unsupported version \(version) (this reader knows \(formatVersion))")
        }
        if let size = parsed.embeddingSize, size < 1 {
            throw SafetyError(file: file, "embedding_size must be a positive integer, got \(size)")
        }
        var loader = ReferenceLoader(setFile: file, base: baseDirectory)
        var concepts: [Concept] = []
        for entry in parsed.concepts {
            var concept = Concept(
                name: entry.name, kind: entry.kind, threshold: entry.threshold, enabled: entry.enabled, embedding: [])
            switch entry.embedding {
            case .values(let v):
                concept.embedding = v
            case .reference(let r):
                concept.embedding = try loader.embedding(r, concept: entry.name)
                concept.reference = r
            }
            concepts.append(concept)
        }
        let set = ConceptSet(
            name: parsed.name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent,
            description: parsed.description, adjustment: parsed.adjustment ?? defaultAdjustment,
            provenance: parsed.provenance, concepts: concepts, source: file)
        try set.validate(embeddingSize: parsed.embeddingSize)
        return set
    }
}

/// Reads referenced `.npy` / `.safetensors` files once each.
struct ReferenceLoader {
    let setFile: String
    let base: URL
    private var npy: [String: Tensor] = [:]
    private var archives: [String: SafeTensorsFile] = [:]

    init(setFile: String, base: URL) {
        self.setFile = setFile
        self.base = base
    }

    func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
    }

    mutating func embedding(_ ref: EmbeddingReference, concept: String) throws -> [Float] {
        let url = resolve(ref.file)
        func fail(_ message: String) -> SafetyError {
            SafetyError(file: setFile, concept: concept, "\(ref.file): \(message)")
        }
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw fail("referenced file not found (looked at \(url.path))")
        }
        let tensor: Tensor
        switch url.pathExtension.lowercased() {
        case "npy":
            if ref.key != nil { throw fail("a .npy reference takes no \"key\"") }
            if let t = npy[url.path] {
                tensor = t
            } else {
                do { tensor = try NPY.read(url: url) } catch { throw fail("cannot read: \(error)") }
                npy[url.path] = tensor
            }
        case "safetensors":
            guard let key = ref.key else { throw fail("a .safetensors reference needs a \"key\"") }
            let archive: SafeTensorsFile
            if let a = archives[url.path] {
                archive = a
            } else {
                do { archive = try SafeTensorsFile(url: url) } catch { throw fail("cannot read: \(error)") }
                archives[url.path] = archive
            }
            guard archive.contains(key) else { throw fail("no tensor \"\(key)\"") }
            do { tensor = try archive.tensor(named: key) } catch { throw fail("cannot read \"\(key)\": \(error)") }
        default:
            throw fail("unsupported embedding file type (use .npy or .safetensors)")
        }
        switch (tensor.rank, ref.row) {
        case (1, nil):
            return tensor.scalars
        case (1, .some):
            throw fail("\"row\" given but the array is 1-D \(tensor.shape)")
        case (2, nil):
            throw fail("the array is 2-D \(tensor.shape): give a \"row\"")
        case (2, .some(let r)):
            guard r < tensor.shape[0] else {
                throw fail("row \(r) out of range (the array has \(tensor.shape[0]) rows)")
            }
            let d = tensor.shape[1]
            return tensor.withUnsafeBufferPointer { Array($0[(r * d)..<((r + 1) * d)]) }
        default:
            throw fail("expected a 1-D or 2-D array, got shape \(tensor.shape)")
        }
    }
}

// MARK: - Writing

extension ConceptSet {
    /// The set as its file form: concepts with a `reference` are written as that reference (the referenced file
    /// must hold the embedding; see `write(to:embeddingsFile:)`), others inline.
    var file: ConceptSetFile {
        ConceptSetFile(
            format: Self.formatName, version: Self.formatVersion, name: name, description: description,
            embeddingSize: embeddingSize, adjustment: adjustment, provenance: provenance,
            concepts: concepts.map {
                ConceptSetFile.Entry(
                    name: $0.name, kind: $0.kind, threshold: $0.threshold, enabled: $0.enabled,
                    embedding: $0.reference.map { .reference($0) } ?? .values($0.embedding))
            })
    }

    /// The set as JSON text (pretty, sorted keys; numbers as the shortest text that reads back to the same
    /// Float32).
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(file), as: UTF8.self) + "\n"
    }

    /// Writes the set to `url` (atomically). With `embeddingsFile` (a file name next to `url`, `.npy`), every
    /// concept's embedding goes into that file as one row of a `[N, P]` float32 array, in set order, and the
    /// JSON references it; otherwise concepts keep their references (which must still resolve from `url`'s
    /// folder) or are written inline.
    public func write(to url: URL, embeddingsFile: String? = nil) throws {
        var set = self
        let dir = url.deletingLastPathComponent()
        if let embeddingsFile {
            guard let p = embeddingSize else { throw SafetyError(file: url.path, "cannot write an empty set to .npy") }
            var values: [Float] = []
            for (i, c) in concepts.enumerated() {
                guard c.embedding.count == p else {
                    throw SafetyError(
                        file: url.path, concept: c.name, "embedding has \(c.embedding.count) values, expected \(p)")
                }
                values += c.embedding
                set.concepts[i].reference = EmbeddingReference(file: embeddingsFile, row: i)
            }
            let tensor = try Tensor(shape: [concepts.count, p], values: values)
            try AtomicFile.write(to: dir.appendingPathComponent(embeddingsFile)) { try NPY.write(tensor, to: $0) }
        }
        try AtomicFile.write(Data(try set.jsonText().utf8), to: url)
    }
}
