import Foundation
import Tensors

/// Thresholds and sizes of one memorization scoring run.
public struct MemorizationConfiguration: Sendable {
    /// Training neighbours returned per output; default 10.
    public var k: Int = 10
    /// Cosine to the nearest training image at or above which the output is flagged `memorized`; default
    /// 0.95 (for CLIP ViT-L/14 image embeddings).
    public var memorizedThreshold: Float = 0.95
    /// Cosine between the output and its own input image at or above which it is flagged
    /// `reproduces-input`; default 0.95.
    public var reproducesInputThreshold: Float = 0.95
    /// Cosine at or above which two neighbours are the same image (clip-retrieval's duplicate cut); default 0.94.
    public var duplicateCut: Float = 0.94

    public init() {}
}

/// A flag raised on an output image.
public enum MemorizationFlag: String, Sendable, Codable, CaseIterable {
    /// Its nearest training embedding is at least `memorizedThreshold` cosine-similar.
    case memorized
    /// It is at least `reproducesInputThreshold` cosine-similar to the image it was a variation of.
    case reproducesInput = "reproduces-input"
}

/// A training image near an output.
public struct TrainingNeighbor: Sendable, Equatable {
    /// Global row id in the training embeddings.
    public var id: Int
    /// Cosine similarity to the output.
    public var cosine: Float
    /// The row's metadata (a JSON object's text: `path`, `url`, `caption`, ...), if stored.
    public var metadata: String?
    /// Index into `MemorizationScore.duplicateGroups` of the group this neighbour belongs to.
    public var group: Int
}

/// Memorization scores of one output image: every value is kept, flags are derived from thresholds.
public struct MemorizationScore: Sendable, Equatable {
    /// The top-k training neighbours, most similar first.
    public var neighbors: [TrainingNeighbor]
    /// Cosine to the nearest training image (nil when the index is empty).
    public var score: Float?
    /// Cosine between the output and its own input, when the input embedding was given.
    public var inputSimilarity: Float?
    /// Raised flags.
    public var flags: [MemorizationFlag]
    /// Neighbour ids grouped as duplicates of each other (cosine ≥ the duplicate cut to the group's first,
    /// most similar member), in rank order; a unique neighbour is a group of one.
    public var duplicateGroups: [[Int]]
}

/// Scores outputs against a training index. Embeddings are L2-normalized here; the stored vectors must be
/// normalized too (clip-retrieval's are; build with `normalize`). With an inner-product index the score is
/// the cosine; with an L2 index (squared distances of unit vectors) cosine = 1 − d²/2.
public struct MemorizationScorer {
    /// The training embeddings' index.
    public let index: any MemorizationIndex
    /// Metadata per training row, if any.
    public let metadata: IndexMetadataStore?
    /// Thresholds.
    public let configuration: MemorizationConfiguration

    public init(
        index: any MemorizationIndex, metadata: IndexMetadataStore? = nil,
        configuration: MemorizationConfiguration = .init()
    ) {
        self.index = index
        self.metadata = metadata
        self.configuration = configuration
    }

    /// Scores each row of `outputs` `[n, d]`; `inputs` (same shape) are the images each output was made from.
    public func score(outputs: Tensor, inputs: Tensor? = nil) throws -> [MemorizationScore] {
        guard outputs.rank == 2, outputs.shape[1] == index.dimension else {
            throw MemorizationError(
                "memorization: output embeddings must be [n, \(index.dimension)], got \(outputs.shape)")
        }
        if let inputs, inputs.shape != outputs.shape {
            throw MemorizationError(
                "memorization: input embeddings \(inputs.shape) do not match outputs \(outputs.shape)")
        }
        var queries = outputs
        l2NormalizeRows(&queries)
        var normalizedInputs = inputs
        if normalizedInputs != nil { l2NormalizeRows(&normalizedInputs!) }
        let found =
            index.count > 0
            ? try index.search(queries, k: configuration.k) : Array(repeating: [], count: outputs.shape[0])
        let meta = try metadata?.metadata(for: found.flatMap { $0.map(\.id) }) ?? [:]
        let d = index.dimension
        let q = queries.scalars
        let inp = normalizedInputs?.scalars
        var results: [MemorizationScore] = []
        for (row, hits) in found.enumerated() {
            let cosines = hits.map { index.metric == .innerProduct ? $0.score : 1 - $0.score / 2 }
            var vectors: [[Float]] = []
            for hit in hits {
                vectors.append(l2Normalized(try index.reconstruct(hit.id)))
            }
            var groups: [[Int]] = []
            var representatives: [Int] = []  // position in hits of each group's first member
            var neighbors: [TrainingNeighbor] = []
            for (position, hit) in hits.enumerated() {
                var group = -1
                for (g, rep) in representatives.enumerated()
                where dot(vectors[rep], vectors[position]) >= configuration.duplicateCut {
                    group = g
                    break
                }
                if group < 0 {
                    group = groups.count
                    groups.append([])
                    representatives.append(position)
                }
                groups[group].append(hit.id)
                neighbors.append(
                    TrainingNeighbor(id: hit.id, cosine: cosines[position], metadata: meta[hit.id], group: group))
            }
            var flags: [MemorizationFlag] = []
            let score = cosines.first
            if let score, score >= configuration.memorizedThreshold { flags.append(.memorized) }
            var inputSimilarity: Float?
            if let inp {
                let s = dot(Array(q[(row * d)..<((row + 1) * d)]), Array(inp[(row * d)..<((row + 1) * d)]))
                inputSimilarity = s
                if s >= configuration.reproducesInputThreshold { flags.append(.reproducesInput) }
            }
            results.append(
                MemorizationScore(
                    neighbors: neighbors, score: score, inputSimilarity: inputSimilarity, flags: flags,
                    duplicateGroups: groups))
        }
        return results
    }
}

func dot(_ a: [Float], _ b: [Float]) -> Float {
    var s: Float = 0
    for i in 0..<min(a.count, b.count) { s += a[i] * b[i] }
    return s
}
