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
public struct ConceptSetProvenance: Sendable, Equatable {
    /// The source file (e.g. the checker's `model.safetensors`), as given when the set was made.
    public var source: String
    /// SHA-256 of `source` (lowercase hex).
    public var sha256: String?
    /// Free text: how the set was made.
    public var note: String?

    public init(source: String, sha256: String? = nil, note: String? = nil) {
        self.source = source
        self.sha256 = sha256
        self.note = note
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
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw SafetyError(file: file, "not valid JSON: \(error.localizedDescription)")
        }
        guard let top = parsed as? [String: Any] else { throw SafetyError(file: file, "not a JSON object") }
        if let format = top["format"] {
            guard format as? String == formatName else {
                throw SafetyError(file: file, "format is \(format), expected \"\(formatName)\"")
            }
        }
        if let version = top["version"] {
            guard let v = number(version), v == Double(formatVersion) else {
                throw SafetyError(file: file, "unsupported version \(version) (this reader knows \(formatVersion))")
            }
        }
        let name = top["name"] as? String ?? url(file).deletingPathExtension().lastPathComponent
        var adjustment = defaultAdjustment
        if let a = top["adjustment"] {
            guard let v = number(a) else { throw SafetyError(file: file, "adjustment must be a number, got \(a)") }
            adjustment = Float(v)
        }
        var provenance: ConceptSetProvenance?
        if let p = top["provenance"] {
            guard let p = p as? [String: Any], let source = p["source"] as? String else {
                throw SafetyError(file: file, "provenance must be an object with a string \"source\"")
            }
            provenance = ConceptSetProvenance(
                source: source, sha256: p["sha256"] as? String, note: p["note"] as? String)
        }
        guard let entries = top["concepts"] as? [Any] else {
            throw SafetyError(file: file, "missing \"concepts\" array")
        }
        var declaredSize: Int?
        if let s = top["embedding_size"] {
            guard let v = number(s), v >= 1, v == v.rounded() else {
                throw SafetyError(file: file, "embedding_size must be a positive integer, got \(s)")
            }
            declaredSize = Int(v)
        }
        var loader = ReferenceLoader(setFile: file, base: baseDirectory)
        var concepts: [Concept] = []
        for (i, entry) in entries.enumerated() {
            concepts.append(try parseConcept(entry, position: i, file: file, loader: &loader))
        }
        let set = ConceptSet(
            name: name, description: top["description"] as? String, adjustment: adjustment, provenance: provenance,
            concepts: concepts, source: file)
        try set.validate(embeddingSize: declaredSize)
        return set
    }

    private static func url(_ path: String) -> URL { URL(fileURLWithPath: path) }

    /// A JSON number (not a Bool). Foundation bridges both to `NSNumber`; booleans have objCType "c"/"B".
    static func number(_ value: Any) -> Double? {
        guard let n = value as? NSNumber, !isBool(value) else { return nil }
        return n.doubleValue
    }

    /// A JSON `true` / `false`.
    static func isBool(_ value: Any) -> Bool {
        if type(of: value) == Bool.self { return true }
        guard let n = value as? NSNumber else { return false }
        let t = String(cString: n.objCType)
        return t == "c" || t == "B"
    }

    private static func parseConcept(_ entry: Any, position: Int, file: String, loader: inout ReferenceLoader) throws
        -> Concept
    {
        guard let obj = entry as? [String: Any] else {
            throw SafetyError(file: file, concept: "#\(position)", "entry is not a JSON object")
        }
        guard let name = obj["name"] as? String, !name.isEmpty else {
            throw SafetyError(file: file, concept: "#\(position)", "missing or empty \"name\"")
        }
        func fail(_ message: String) -> SafetyError { SafetyError(file: file, concept: name, message) }
        let kindText = obj["kind"] as? String ?? "concept"
        guard let kind = ConceptKind(rawValue: kindText) else {
            throw fail("kind must be \"concept\" or \"special\", got \"\(kindText)\"")
        }
        guard let t = obj["threshold"], let threshold = number(t) else {
            throw fail("missing or non-numeric \"threshold\"")
        }
        var enabled = true
        if let e = obj["enabled"] {
            guard isBool(e), let b = e as? Bool else { throw fail("\"enabled\" must be true or false") }
            enabled = b
        }
        guard let raw = obj["embedding"] else { throw fail("missing \"embedding\"") }
        var embedding: [Float]
        var reference: EmbeddingReference?
        if let values = raw as? [Any] {
            embedding = []
            embedding.reserveCapacity(values.count)
            for v in values {
                guard let x = number(v) else { throw fail("embedding holds a non-number: \(v)") }
                embedding.append(Float(x))
            }
        } else if let ref = raw as? [String: Any] {
            guard let f = ref["file"] as? String, !f.isEmpty else {
                throw fail("embedding reference needs a \"file\"")
            }
            var row: Int?
            if let r = ref["row"] {
                guard let v = number(r), v >= 0, v == v.rounded() else {
                    throw fail("embedding row must be a non-negative integer, got \(r)")
                }
                row = Int(v)
            }
            if let k = ref["key"], !(k is String) { throw fail("embedding key must be a string") }
            let r = EmbeddingReference(file: f, key: ref["key"] as? String, row: row)
            embedding = try loader.embedding(r, concept: name)
            reference = r
        } else {
            throw fail("embedding must be an array of numbers or {\"file\", \"key\", \"row\"}")
        }
        return Concept(
            name: name, kind: kind, threshold: Float(threshold), enabled: enabled, embedding: embedding,
            reference: reference)
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
    /// The set as JSON text (format in `concepts/README.md`): concepts with a `reference` are written as that
    /// reference (the referenced file must hold the embedding; see `writeEmbeddings`), others inline.
    /// Numbers are written as the shortest text that reads back to the same Float32.
    public func jsonText() -> String {
        func str(_ s: String) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data()
            let text = String(decoding: data, as: UTF8.self)
            return String(text.dropFirst().dropLast())
        }
        func num(_ f: Float) -> String { "\(f)" }
        var lines: [String] = ["{"]
        lines.append("  \"format\": \(str(Self.formatName)),")
        lines.append("  \"version\": \(Self.formatVersion),")
        lines.append("  \"name\": \(str(name)),")
        if let description { lines.append("  \"description\": \(str(description)),") }
        if let size = embeddingSize { lines.append("  \"embedding_size\": \(size),") }
        lines.append("  \"adjustment\": \(num(adjustment)),")
        if let p = provenance {
            var fields = ["\"source\": \(str(p.source))"]
            if let h = p.sha256 { fields.append("\"sha256\": \(str(h))") }
            if let n = p.note { fields.append("\"note\": \(str(n))") }
            lines.append("  \"provenance\": {\(fields.joined(separator: ", "))},")
        }
        lines.append("  \"concepts\": [")
        for (i, c) in concepts.enumerated() {
            let embedding: String
            if let r = reference(c) {
                var fields = ["\"file\": \(str(r.file))"]
                if let k = r.key { fields.append("\"key\": \(str(k))") }
                if let row = r.row { fields.append("\"row\": \(row)") }
                embedding = "{\(fields.joined(separator: ", "))}"
            } else {
                embedding = "[" + c.embedding.map(num).joined(separator: ", ") + "]"
            }
            let comma = i + 1 < concepts.count ? "," : ""
            lines.append(
                "    {\"name\": \(str(c.name)), \"kind\": \"\(c.kind.rawValue)\", \"threshold\": \(num(c.threshold)), "
                    + "\"enabled\": \(c.enabled), \"embedding\": \(embedding)}\(comma)")
        }
        lines.append("  ]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private func reference(_ c: Concept) -> EmbeddingReference? { c.reference }

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
            let npyURL = dir.appendingPathComponent(embeddingsFile)
            let tensor = try Tensor(shape: [concepts.count, p], values: values)
            try atomically(npyURL) { try NPY.write(tensor, to: $0) }
        }
        let text = set.jsonText()
        try atomically(url) { try Data(text.utf8).write(to: $0) }
    }

    /// Writes through a temporary file in the same folder, then renames it over `url`.
    private func atomically(_ url: URL, _ body: (URL) throws -> Void) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try body(tmp)
            guard rename(tmp.path, url.path) == 0 else {
                throw SafetyError(file: url.path, "cannot rename the temporary file into place (errno \(errno))")
            }
        } catch let error as SafetyError {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw SafetyError(file: url.path, "cannot write: \(error.localizedDescription)")
        }
    }
}
