import Foundation
import Tensors

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
