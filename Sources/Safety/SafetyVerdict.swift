import Foundation
import Tensors

/// One concept's result for one image.
public struct ConceptScore: Sendable, Equatable, Codable {
    /// Position among the set's concepts of the same kind (diffusers' `concept_idx` for an extracted set).
    public var index: Int
    public var name: String
    /// Cosine similarity between the image embedding and the concept embedding.
    public var similarity: Float
    public var threshold: Float
    /// `round(similarity − threshold + adjustment, 3)` in float32 with half-to-even rounding.
    public var score: Float
    /// `score > 0`.
    public var flagged: Bool

    public init(index: Int, name: String, similarity: Float, threshold: Float, score: Float, flagged: Bool) {
        self.index = index
        self.name = name
        self.similarity = similarity
        self.threshold = threshold
        self.score = score
        self.flagged = flagged
    }
}

/// The checker's verdict on one image, with every score.
public struct SafetyVerdict: Sendable, Equatable, Codable {
    /// The image's label (e.g. its path), if known.
    public var image: String?
    /// Whether any ordinary concept fired (diffusers' `has_nsfw_concepts`).
    public var flagged: Bool
    /// Whether any special-care concept fired.
    public var specialCare: Bool
    /// Ordinary concepts in set order (enabled ones only).
    public var concepts: [ConceptScore]
    /// Special-care concepts in set order (enabled ones only).
    public var special: [ConceptScore]

    enum CodingKeys: String, CodingKey {
        case image, flagged
        case specialCare = "special_care"
        case concepts, special
    }

    public init(image: String?, flagged: Bool, specialCare: Bool, concepts: [ConceptScore], special: [ConceptScore]) {
        self.image = image
        self.flagged = flagged
        self.specialCare = specialCare
        self.concepts = concepts
        self.special = special
    }

    /// The record `varaudit safety --json` prints: `{"image", "flagged", "special_care", "concepts": [...],
    /// "special": [...]}`, each score `{"index", "name", "similarity", "threshold", "score", "flagged"}`.
    public var jsonObject: [String: Any] {
        // Each Float as the double nearest its shortest decimal text, so the JSON shows 0.005, not 0.004999….
        func number(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }
        func score(_ s: ConceptScore) -> [String: Any] {
            [
                "index": s.index, "name": s.name, "similarity": number(s.similarity),
                "threshold": number(s.threshold), "score": number(s.score), "flagged": s.flagged,
            ]
        }
        return [
            "image": image ?? "", "flagged": flagged, "special_care": specialCare,
            "concepts": concepts.map(score), "special": special.map(score),
        ]
    }

    /// All scores, ordinary and special, sorted by how close they come to firing: by score, then by the
    /// unrounded margin `similarity − threshold`, highest first.
    public var closest: [(kind: ConceptKind, score: ConceptScore)] {
        let all =
            special.map { (kind: ConceptKind.special, score: $0) }
            + concepts.map { (kind: ConceptKind.concept, score: $0) }
        return all.sorted { a, b in
            if a.score.score != b.score.score { return a.score.score > b.score.score }
            return a.score.similarity - a.score.threshold > b.score.similarity - b.score.threshold
        }
    }
}
