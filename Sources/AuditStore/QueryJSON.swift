import Checkpoints
import Foundation

extension NeighborRecord {
    /// `{"id", "score", ...metadata}`: the training row, its cosine, and its metadata fields (which never
    /// replace `id` or `score`).
    public var json: JSONValue {
        var object = metadata.flatMap { JSONValue.parse($0)?.objectValue } ?? [:]
        object["id"] = .int(rowID)
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
            "run": .int(Int(run)), "input": .string(input.path), "input_sha256": .string(input.sha256),
            "variation": .int(variation.k), "image": .string(variation.imagePath),
            "image_sha256": .string(variation.imageSHA256),
            "seed": variation.seed <= UInt64(Int.max) ? .int(Int(variation.seed)) : .double(Double(variation.seed)),
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
