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

/// Scores image embeddings against a concept set exactly as diffusers' `StableDiffusionSafetyChecker.forward`
/// under numpy 2: cosine similarities of L2-normalized vectors; per image, specials in
/// order with `s = round(f32(cos − threshold) + f32(adjustment), 3)` (float32 arithmetic, round half to
/// even), any `s > 0` setting the adjustment (0 at first) to the set's value for the later specials and all
/// concepts; then `c = round(cos − threshold + adjustment, 3)` for every concept, and the image is flagged
/// when any `c > 0`. Disabled concepts are skipped. See docs/algorithms.md#safety-score.
public struct ConceptScorer: Sendable {
    public let set: ConceptSet
    /// The adjustment applied after a special hit.
    public let adjustment: Float
    private let specials: [(index: Int, concept: Concept, unit: [Float])]
    private let concepts: [(index: Int, concept: Concept, unit: [Float])]

    /// Validates `set` (against `embeddingSize` when given); `adjustment` overrides the set's.
    public init(set: ConceptSet, adjustment: Float? = nil, embeddingSize: Int? = nil) throws {
        try set.validate(embeddingSize: embeddingSize)
        self.set = set
        self.adjustment = adjustment ?? set.adjustment
        guard self.adjustment.isFinite else { throw SafetyError("adjustment \(self.adjustment) is not finite") }
        specials = set.indexed(.special).filter { $0.concept.enabled }.map {
            ($0.index, $0.concept, l2Normalized($0.concept.embedding))
        }
        concepts = set.indexed(.concept).filter { $0.concept.enabled }.map {
            ($0.index, $0.concept, l2Normalized($0.concept.embedding))
        }
    }

    /// Cosine similarity of an already normalized image embedding with a normalized concept.
    static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var s = 0.0
        for i in a.indices { s += Double(a[i]) * Double(b[i]) }
        return Float(s)
    }

    /// numpy 2's `round(np.float32(x), 3)`: `rint(x · 1000) / 1000` in float32 (half to even).
    public static func round3(_ x: Float) -> Float {
        (x * 1000).rounded(.toNearestOrEven) / 1000
    }

    /// The score diffusers computes: `round(cos − threshold + adjustment, 3)` in float32.
    public static func score(similarity: Float, threshold: Float, adjustment: Float) -> Float {
        round3((similarity - threshold) + adjustment)
    }

    /// The verdict for one image embedding (`image_embeds`, not necessarily normalized).
    public func verdict(embedding: [Float], image: String? = nil) throws -> SafetyVerdict {
        if let p = set.embeddingSize, embedding.count != p {
            throw SafetyError(file: set.source, "image embedding has \(embedding.count) values, the set's have \(p)")
        }
        let unit = l2Normalized(embedding)
        var adj: Float = 0
        var special: [ConceptScore] = []
        var specialCare = false
        for (index, c, u) in specials {
            let sim = Self.dot(unit, u)
            let s = Self.score(similarity: sim, threshold: c.threshold, adjustment: adj)
            special.append(
                ConceptScore(
                    index: index, name: c.name, similarity: sim, threshold: c.threshold, score: s, flagged: s > 0))
            if s > 0 {
                specialCare = true
                adj = adjustment
            }
        }
        var scores: [ConceptScore] = []
        var flagged = false
        for (index, c, u) in concepts {
            let sim = Self.dot(unit, u)
            let s = Self.score(similarity: sim, threshold: c.threshold, adjustment: adj)
            scores.append(
                ConceptScore(
                    index: index, name: c.name, similarity: sim, threshold: c.threshold, score: s, flagged: s > 0))
            if s > 0 { flagged = true }
        }
        return SafetyVerdict(
            image: image, flagged: flagged, specialCare: specialCare, concepts: scores, special: special)
    }

    /// The largest unrounded margin `cos − threshold (+ adjustment after a special hit)` over enabled concepts:
    /// a continuous "how unsafe" score for ROC curves.
    public func margin(embedding: [Float]) throws -> Float {
        let v = try verdict(embedding: embedding)
        let adj: Float = v.specialCare ? adjustment : 0
        return v.concepts.map { ($0.similarity - $0.threshold) + adj }.max() ?? -.infinity
    }
}
