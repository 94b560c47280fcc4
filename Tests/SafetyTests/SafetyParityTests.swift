import Checkpoints
import Foundation
import Imaging
import Safety
import Tensors
import TestSupport
import Testing

/// Parity with diffusers' `StableDiffusionSafetyChecker.forward` on a random-weight checker with planted concepts
/// (Tests/Fixtures/safety, tools/fixtures/make_safety.py). Tolerances: embeddings 1e-4 relative, similarities
/// 1e-4 absolute; verdicts and rounded scores exactly (the fixture keeps every unrounded margin ≥ 5e-5 from a
/// rounding tie, except a planted exact tie).
struct SafetyParityTests {
    let fixture: SafetyFixture
    let checker: SafetyChecker

    init() throws {
        fixture = try SafetyFixture()
        checker = try SafetyChecker(directory: SafetyFixture.checkerURL)
    }

    @Test func loadsTheCheckpointConcepts() throws {
        #expect(checker.embeddingSize == 24)
        #expect(checker.builtInConcepts.indexed(.concept).count == 17)
        #expect(checker.builtInConcepts.indexed(.special).count == 3)
        #expect(checker.preprocessing.shortestEdge == 32 && checker.preprocessing.cropHeight == 32)
        #expect(fixture.expected.count == 7)
    }

    @Test func embeddingsOfDiffusersPixelsMatch() throws {
        let pixels = try Fixtures.tensors("safety/pixels.safetensors").tensor(named: "pixels")
        let embeds = try checker.imageEmbeds(pixels: pixels)
        let reference = fixture.expected.flatMap(\.imageEmbeds)
        #expect(maxRelativeError(embeds.scalars, reference: reference) < 1e-4)
    }

    @Test func ourPreprocessingMatchesThePillowPath() throws {
        let pixels = try Fixtures.tensors("safety/pixels.safetensors").tensor(named: "pixels")
        let ours = try concat(try fixture.images().map { try checker.pixels($0).reshaped([1, 3, 32, 32]) }, axis: 0)
        #expect(maxAbsDifference(ours.scalars, pixels.scalars) < 1e-5)
    }

    @Test func verdictsAndScoresMatchDiffusers() throws {
        let verdicts = try checker.check(try fixture.images(), labels: fixture.expected.map(\.image))
        #expect(verdicts.count == fixture.expected.count)
        for (v, e) in zip(verdicts, fixture.expected) {
            #expect(v.image == e.image)
            #expect(v.flagged == e.flagged, "\(e.image)")
            #expect(v.specialCare == !e.specialCare.isEmpty, "\(e.image)")
            #expect(v.special.filter(\.flagged).map(\.index) == e.specialCare, "\(e.image)")
            #expect(v.concepts.filter(\.flagged).map(\.index) == e.badConcepts, "\(e.image)")
            #expect(maxAbsDifference(v.concepts.map(\.similarity), e.conceptSimilarity) <= 1e-4, "\(e.image)")
            #expect(maxAbsDifference(v.special.map(\.similarity), e.specialSimilarity) <= 1e-4, "\(e.image)")
            #expect(v.concepts.map(\.score) == e.conceptScores, "\(e.image)")
            #expect(v.special.map(\.score) == e.specialScores, "\(e.image)")
        }
        // Mixed verdicts.
        #expect(verdicts.contains { $0.flagged } && verdicts.contains { !$0.flagged })
    }

    @Test func flaggedOnlyBecauseOfTheSpecialCareAdjustment() throws {
        let a = try #require(fixture.index(of: "coffee_gray"))
        let image = try fixture.images()[a]
        let normal = try #require(checker.check([image]).first)
        #expect(normal.specialCare && normal.flagged)
        let strict = try #require(checker.check([image], adjustment: 0).first)
        #expect(strict.specialCare && !strict.flagged)
        // Concept 1 misses by 0.004 without the adjustment and fires at +0.006 with it.
        #expect(strict.concepts[1].score == -0.004 && normal.concepts[1].score == 0.006)
    }

    @Test func halfToEvenRoundingDecidesThePlantedTie() throws {
        // Concept 2 is the one-hot on a zero row of visual_projection: cosine exactly 0, threshold -0.0005, so
        // the score is f32(0.0005), which rounds half to even to 0 (not flagged).
        let verdicts = try checker.check(try fixture.images())
        for v in verdicts where !v.specialCare {
            #expect(v.concepts[2].similarity == 0)
            #expect(v.concepts[2].score == 0 && !v.concepts[2].flagged)
        }
        #expect(ConceptScorer.score(similarity: 0, threshold: -0.0005, adjustment: 0) == 0)
        #expect(ConceptScorer.score(similarity: 0, threshold: -0.0015, adjustment: 0) == 0.002)
    }

    @Test func readsTheTransformers5Layout() throws {
        // transformers 5's save_pretrained writes the tower as vision_model.* (no second vision_model).
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = SafetyFixture.checkerURL
        let sc = dir.appendingPathComponent("safety_checker")
        try FileManager.default.createDirectory(at: sc, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: src.appendingPathComponent("safety_checker/config.json"), to: sc.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(
            at: src.appendingPathComponent("feature_extractor"), to: dir.appendingPathComponent("feature_extractor"))
        let archive = try SafeTensorsFile(url: src.appendingPathComponent("safety_checker/model.safetensors"))
        var renamed: [String: Tensor] = [:]
        for key in archive.keys {
            let k = key.hasPrefix("vision_model.vision_model.") ? String(key.dropFirst("vision_model.".count)) : key
            renamed[k] = try archive.tensor(named: key)
        }
        try SafeTensorsWriter.write(renamed, to: sc.appendingPathComponent("model.safetensors"))
        let flat = try SafetyChecker(directory: dir)
        let images = try fixture.images()
        #expect(try flat.check(images) == checker.check(images))
        // The safety_checker folder itself works too.
        #expect(try SafetyChecker(directory: sc).location.preprocessorConfig != nil)
    }

    @Test func missingCheckerIsAnErrorNamingTheFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try SafetyCheckerLocation.find(in: dir) == nil)
        let error = #expect(throws: SafetyError.self) { try SafetyChecker(directory: dir) }
        #expect(error?.description.contains(dir.path) == true)
    }
}
