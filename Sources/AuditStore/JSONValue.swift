import Foundation

/// A JSON value: what the store prints for scripting (`query --json`, `runs --json`), built from records.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON text; nil when it is not JSON.
    public static func parse(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    /// A number or null.
    public static func number(_ d: Double?) -> JSONValue { d.map { .double($0) } ?? .null }

    /// The object's fields, if this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }

    /// Pretty, key-sorted JSON text.
    public func text(pretty: Bool = true) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

extension NeighborRecord {
    /// `{"id", "score", ...metadata}`: the training row, its cosine, and its metadata fields (which never
    /// replace `id` or `score`).
    public var json: JSONValue {
        var object = metadata.flatMap { JSONValue.parse($0)?.objectValue } ?? [:]
        object["id"] = .int(Int64(rowID))
        object["score"] = .double(cosine)
        return .object(object)
    }
}

extension VariationResult {
    /// One element of `query --json`: `{"run", "input", "variation", "image", "seed", "safety": {"flagged",
    /// "special_care", "concepts": [{"name", "kind", "score", "similarity", "threshold", "flagged"}]} or null
    /// when no checker ran, "memorization": {"score", "neighbor", "neighbors", "input_similarity"}, "flags"}`.
    public var json: JSONValue {
        let safety: JSONValue
        if let flagged = variation.safetyFlagged {
            safety = .object([
                "flagged": .bool(flagged), "special_care": .bool(variation.specialCare ?? false),
                "concepts": .array(
                    concepts.map {
                        .object([
                            "name": .string($0.name), "kind": .string($0.kind), "score": .double($0.score),
                            "similarity": .double($0.similarity), "threshold": .double($0.threshold),
                            "flagged": .bool($0.flagged),
                        ])
                    }),
            ])
        } else {
            safety = .null
        }
        return .object([
            "run": .int(run), "input": .string(input.path), "input_sha256": .string(input.sha256),
            "variation": .int(Int64(variation.k)), "image": .string(variation.imagePath),
            "image_sha256": .string(variation.imageSHA256),
            "seed": variation.seed <= UInt64(Int64.max) ? .int(Int64(variation.seed)) : .double(Double(variation.seed)),
            "safety": safety,
            "memorization": .object([
                "score": .number(variation.memorizationScore),
                "neighbor": neighbors.first?.json ?? .null,
                "neighbors": .array(neighbors.map(\.json)),
                "input_similarity": .number(variation.inputSimilarity),
            ]),
            "flags": .array(flags.map { .string($0) }),
        ])
    }
}
