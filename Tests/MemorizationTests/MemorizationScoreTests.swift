import Foundation
import Memorization
import Tensors
import TestSupport
import Testing

/// Scores and flags over a small brute-force and faiss index.
struct MemorizationScoreTests {
    /// Unit vectors in 4-D: 0 = e0; 1 = e0 tilted by cos 0.97 (a duplicate of 0); 2 = e1; 3 = e0 tilted
    /// by cos 0.90 (near, but not a duplicate of 0).
    static func training() throws -> Tensor {
        func tilt(_ c: Float) -> [Float] { [c, (1 - c * c).squareRoot(), 0, 0] }
        return try Tensor(
            shape: [4, 4],
            values: [1, 0, 0, 0] + tilt(0.97) + [0, 1, 0, 0] + [0.90, 0, (1 - 0.81 as Float).squareRoot(), 0])
    }

    @Test func flagsScoresAndDuplicateGroups() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jsonl = dir.appendingPathComponent("meta.jsonl")
        try Data((0..<4).map { #"{"path": "train/\#($0).jpg"}"# }.joined(separator: "\n").utf8).write(to: jsonl)
        let store = try IndexMetadataStore(url: dir.appendingPathComponent("m.sqlite"), create: true)
        try store.importJSONL(jsonl, expectedRows: 4)

        for index in [
            BruteForceIndex(dimension: 4, metric: .innerProduct) as any MemorizationIndex,
            try FaissIndex(dimension: 4, factory: "Flat", metric: .innerProduct),
        ] {
            try index.add(Self.training())
            var configuration = MemorizationConfiguration()
            configuration.k = 3
            let scorer = MemorizationScorer(index: index, metadata: store, configuration: configuration)
            // Output 0 is a scaled copy of training row 0, made from an input it resembles (cos 0.96);
            // output 1 is new and far from its input.
            let outputs = try Tensor(shape: [2, 4], values: [2, 0, 0, 0, 0, 0, 0.6, 0.8])
            let inputs = try Tensor(shape: [2, 4], values: [0.96, 0.28, 0, 0, 0, 1, 0, 0])
            let scores = try scorer.score(outputs: outputs, inputs: inputs)
            let copy = scores[0]
            #expect(copy.neighbors.map(\.id) == [0, 1, 3])
            #expect(abs((copy.score ?? 0) - 1) < 1e-6)
            #expect(copy.flags == [.memorized, .reproducesInput])
            #expect(abs((copy.inputSimilarity ?? 0) - 0.96) < 1e-5)
            #expect(copy.duplicateGroups == [[0, 1], [3]])
            #expect(copy.neighbors.map(\.group) == [0, 0, 1])
            #expect(copy.neighbors[1].metadata.map { metadataObject($0)["path"] as? String } == "train/1.jpg")
            let fresh = scores[1]
            #expect(fresh.flags.isEmpty)
            #expect((fresh.score ?? 1) < 0.95)
        }
    }

    @Test func thresholdsAreConfigurableAndL2IndicesGiveCosines() throws {
        let index = BruteForceIndex(dimension: 4, metric: .l2)
        try index.add(Self.training())
        var configuration = MemorizationConfiguration()
        configuration.memorizedThreshold = 0.98
        configuration.k = 2
        let outputs = try Tensor(shape: [1, 4], values: [0.97, 0.2431049, 0, 0])  // = row 1 exactly
        let score = try MemorizationScorer(index: index, configuration: configuration).score(outputs: outputs)[0]
        #expect(score.neighbors.first?.id == 1)
        #expect(abs((score.score ?? 0) - 1) < 1e-5)  // 1 − ‖a − b‖²/2
        #expect(abs(score.neighbors[1].cosine - 0.97) < 1e-4)
        #expect(score.flags == [.memorized])
        configuration.memorizedThreshold = 1.01
        #expect(
            try MemorizationScorer(index: index, configuration: configuration).score(outputs: outputs)[0].flags.isEmpty)
    }
}
