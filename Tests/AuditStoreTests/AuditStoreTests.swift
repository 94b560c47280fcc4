import AuditStore
import Foundation
import TestSupport
import Testing

/// The store on its own: one transaction per variation, no duplicates, counts, filters and sorting.
struct AuditStoreTests {
    func store() throws -> (AuditStore, URL) {
        let dir = try Fixtures.temporaryDirectory()
        return (try AuditStore(url: dir.appendingPathComponent("a.sqlite")), dir)
    }

    func run(_ store: AuditStore) throws -> Int64 {
        try store.insertRun(
            RunRecord(
                fingerprint: "f", model: "/m", weights: "{}", parameters: #"{"variations": 2}"#, toolVersion: "t",
                detectors: "{}", startedAt: "2026-01-01T00:00:00Z", status: "running")
        ).id!
    }

    func variation(_ run: Int64, _ input: Int64, _ k: Int, memorization: Double?) -> VariationRecord {
        VariationRecord(
            runID: run, inputID: input, k: k, seed: UInt64.max, imagePath: "/img/\(input)-\(k).png",
            imageSHA256: "s", width: 8, height: 8, safetyFlagged: false, specialCare: false,
            memorizationScore: memorization, inputSimilarity: 0.5, embedding: nil, generationSeconds: 1,
            safetySeconds: 0, memorizationSeconds: 0, createdAt: "now")
    }

    func score(_ name: String, _ value: Double) -> ConceptScoreRecord {
        ConceptScoreRecord(
            inputID: 0, variationID: nil, kind: "concept", conceptIndex: 0, name: name, similarity: 0.2,
            threshold: 0.1, score: value, flagged: value > 0)
    }

    @Test func variationsAreStoredOnceWithTheirChildren() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let runID = try run(store)
        let input = try store.saveInput(
            InputRecord(
                runID: runID, path: "/in/a.png", sha256: "x", position: 0, width: 8, height: 8, safetyFlagged: nil,
                specialCare: nil, memorizationScore: 0.99, embedding: nil, seconds: 0),
            scores: [], neighbors: [], flags: [.memorized])
        let first = try store.saveVariation(
            variation(runID, input, 0, memorization: 0.5), scores: [score("c", -0.1)],
            neighbors: [
                NeighborRecord(
                    inputID: 0, variationID: nil, rank: 0, rowID: 7, cosine: 0.5,
                    metadata: #"{"caption": "<b>x</b>", "id": 99}"#, duplicateGroup: 0)
            ],
            flags: [])
        #expect(first != nil)
        #expect(
            try store.saveVariation(variation(runID, input, 0, memorization: 0.9), scores: [], neighbors: [], flags: [])
                == nil)
        try store.saveVariation(
            variation(runID, input, 1, memorization: 0.97), scores: [score("c", 0.2)], neighbors: [],
            flags: [.memorized, .unsafe])
        #expect(try store.finishedVariations(input: input) == [0, 1])

        let summary = try store.summary(of: try store.run(nil))
        #expect(summary.variations == 2)
        #expect(summary.expectedVariations == 2)
        #expect(summary.memorized == 1)
        #expect(summary.unsafe == 1)
        #expect(summary.flagged == 1)
        #expect(summary.memorizedInputs == 1)

        let byMemorization = try store.variations(VariationQuery(sort: .memorization))
        #expect(byMemorization.map(\.variation.k) == [1, 0])
        #expect(try store.variations(VariationQuery(flag: "unsafe")).map(\.variation.k) == [1])
        #expect(try store.variations(VariationQuery(minMemorization: 0.96)).count == 1)
        #expect(try store.variations(VariationQuery(input: "/in/b.png")).isEmpty)
        let first0 = try #require(try store.variations(VariationQuery(limit: 1)).first)
        #expect(first0.variation.seed == UInt64.max)
        // The neighbour's metadata never overrides its id and score.
        let neighbor = try #require(first0.json.objectValue?["memorization"]?.objectValue?["neighbor"]?.objectValue)
        #expect(neighbor["id"] == .int(7))
        #expect(neighbor["caption"] == .string("<b>x</b>"))
    }

    @Test func mergingTheSameShardTwiceAddsNothing() throws {
        let (source, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let runID = try run(source)
        let input = try source.saveInput(
            InputRecord(
                runID: runID, path: "/in/a.png", sha256: "x", position: 0, width: 8, height: 8, safetyFlagged: nil,
                specialCare: nil, memorizationScore: nil, embedding: nil, seconds: 0),
            scores: [], neighbors: [], flags: [])
        try source.saveVariation(
            variation(runID, input, 0, memorization: nil), scores: [score("c", 0.1)],
            neighbors: [], flags: [.unsafe])
        try source.recordError(run: runID, input: "/in/bad.png", stage: "read", message: "m", at: "t")
        let target = try AuditStore(url: dir.appendingPathComponent("merged.sqlite"))
        let first = try target.merge(from: source)
        #expect(first.runs == 1 && first.inputs == 1 && first.variations == 1 && first.errors == 1)
        let second = try target.merge(from: source)
        #expect(second == MergeReport())
        let merged = try target.variations(VariationQuery())
        #expect(merged.count == 1)
        #expect(merged.first?.concepts.count == 1)
        #expect(merged.first?.flags == ["unsafe"])
        #expect(try target.errors(run: 1).count == 1)
    }

    @Test func readOnlyOpeningRefusesMissingAndForeignFiles() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("none.sqlite")
        #expect(throws: AuditStoreError.self) { try AuditStore(url: missing, create: false) }
        let foreign = dir.appendingPathComponent("foreign.sqlite")
        try Data("not sqlite at all, just text".utf8).write(to: foreign)
        #expect(throws: AuditStoreError.self) { try AuditStore(url: foreign, create: false) }
    }
}
