import Imaging
import Safety
import Testing

/// The scoring rules of diffusers' `forward` on hand-made sets (any number of concepts and specials).
struct ScorerTests {
    @Test func roundsLikeNumpyFloat32() {
        #expect(ConceptScorer.round3(0.0005) == 0)
        #expect(ConceptScorer.round3(0.0015) == 0.002)
        #expect(ConceptScorer.round3(0.0025) == 0.002)
        #expect(ConceptScorer.round3(-0.0005) == 0)
        #expect(ConceptScorer.round3(0.0105) == 0.01)  // f32(0.0105)·1000 is exactly 10.5 in float32
        #expect(ConceptScorer.round3(0.12345) == 0.123)
    }

    func set(adjustment: Float = 0.01) -> ConceptSet {
        // 2-D embeddings; the image [1, 0] has cosine cos(θ) with a concept at angle θ.
        ConceptSet(
            name: "t", adjustment: adjustment,
            concepts: [
                Concept(name: "s0", kind: .special, threshold: 0.99, embedding: [1, 0.1]),  // cos 0.995 → +0.005
                Concept(name: "s1", kind: .special, threshold: 0.605, embedding: [0.6, 0.8]),  // cos 0.6: −0.005 + 0.01
                // −0.005, then +0.005 once adjusted:
                Concept(name: "c0", kind: .concept, threshold: 0.805, embedding: [0.8, 0.6]),
                Concept(name: "off", kind: .concept, threshold: -1, enabled: false, embedding: [1, 0]),
                Concept(name: "c1", kind: .concept, threshold: 0.9, embedding: [0, 1]),
            ])
    }

    @Test func adjustmentAppliesToLaterSpecialsAndAllConcepts() throws {
        let v = try ConceptScorer(set: set()).verdict(embedding: [2, 0])
        #expect(v.specialCare && v.flagged)
        #expect(v.special.map(\.score) == [0.005, 0.005] && v.special.map(\.flagged) == [true, true])
        #expect(v.concepts.map(\.name) == ["c0", "c1"])  // disabled concepts are skipped
        #expect(v.concepts.map(\.index) == [0, 2])  // indices stay positions within the kind
        #expect(v.concepts[0].score == 0.005 && v.concepts[0].flagged)
        #expect(v.concepts[1].score == -0.89 && !v.concepts[1].flagged)
        let none = try ConceptScorer(set: set(), adjustment: 0).verdict(embedding: [2, 0])
        #expect(none.specialCare && !none.flagged)
        #expect(none.special.map(\.flagged) == [true, false])
        #expect(none.concepts[0].score == -0.005)
    }

    @Test func cosineIsScaleFreeAndSizeIsChecked() throws {
        let scorer = try ConceptScorer(set: set())
        #expect(try scorer.verdict(embedding: [0.001, 0]) == scorer.verdict(embedding: [50, 0]))
        #expect(throws: SafetyError.self) { try scorer.verdict(embedding: [1, 0, 0]) }
        let json = try scorer.verdict(embedding: [1, 0], image: "x.png").jsonObject
        #expect(json["image"] as? String == "x.png")
        #expect(Set(json.keys) == ["image", "flagged", "special_care", "concepts", "special"])
        let first = (json["concepts"] as? [[String: Any]])?.first ?? [:]
        #expect(Set(first.keys) == ["index", "name", "similarity", "threshold", "score", "flagged"])
    }

    @Test func closestSortsByScore() throws {
        let v = try ConceptScorer(set: set(), adjustment: 0).verdict(embedding: [1, 0])
        #expect(v.closest.map(\.score.name) == ["s0", "s1", "c0", "c1"])
    }

    @Test func unsafePolicies() throws {
        var pixels: [UInt8] = []
        for y in 0..<20 { for x in 0..<30 { pixels += [UInt8(x * 8), UInt8(y * 12), (x + y) % 2 == 0 ? 255 : 0] } }
        let image = try RGBImage(width: 30, height: 20, pixels: pixels)
        let flagged = SafetyVerdict(image: nil, flagged: true, specialCare: false, concepts: [], special: [])
        var clean = flagged
        clean.flagged = false
        #expect(UnsafeImagePolicy.black.apply(to: image, verdict: flagged).pixels.allSatisfy { $0 == 0 })
        #expect(UnsafeImagePolicy.black.apply(to: image, verdict: clean) == image)
        #expect(UnsafeImagePolicy.keep.apply(to: image, verdict: flagged) == image)
        let blurred = UnsafeImagePolicy.blur.apply(to: image, verdict: flagged)
        #expect(blurred.width == 30 && blurred.height == 20 && blurred != image)
        // The checkerboard in the blue channel is smoothed to about its mean.
        let blue = stride(from: 2, to: blurred.pixels.count, by: 3).map { Int(blurred.pixels[$0]) }
        #expect(blue.allSatisfy { abs($0 - 128) < 20 })
        let flat = try RGBImage(width: 7, height: 5, pixels: [UInt8](repeating: 77, count: 105))
        #expect(UnsafeImagePolicy.blur.apply(to: flat) == flat)
    }
}
