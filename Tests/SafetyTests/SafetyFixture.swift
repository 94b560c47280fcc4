import Foundation
import Imaging
import Safety
import TestSupport

/// `Tests/Fixtures/safety/` (written by tools/fixtures/make_safety.py): a random-weight diffusers safety checker
/// with planted concepts and diffusers' verdicts on real photographs.
struct SafetyFixture {
    struct Expected {
        let image: String
        let flagged: Bool
        let specialCare: [Int]
        let badConcepts: [Int]
        let specialSimilarity: [Float]
        let specialScores: [Float]
        let conceptSimilarity: [Float]
        let conceptScores: [Float]
        let imageEmbeds: [Float]
    }

    static let checkerURL = Fixtures.url("safety/checker")
    let expected: [Expected]
    let zeroRow: Int

    init() throws {
        let data = try Data(contentsOf: Fixtures.url("safety/expected.json"))
        let top = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        zeroRow = top["zero_projection_row"] as? Int ?? -1
        func floats(_ v: Any?) -> [Float] { (v as? [Any] ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }
        func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? -1 } }
        expected = (top["images"] as? [[String: Any]] ?? []).map { r in
            Expected(
                image: r["image"] as? String ?? "", flagged: r["flagged"] as? Bool ?? false,
                specialCare: ints(r["special_care"]), badConcepts: ints(r["bad_concepts"]),
                specialSimilarity: floats(r["special_similarity"]), specialScores: floats(r["special_scores"]),
                conceptSimilarity: floats(r["concept_similarity"]), conceptScores: floats(r["concept_scores"]),
                imageEmbeds: floats(r["image_embeds"]))
        }
    }

    func images() throws -> [RGBImage] {
        try expected.map { try RGBImage.load(contentsOf: Fixtures.url($0.image)) }
    }

    func index(of stem: String) -> Int? {
        expected.firstIndex { URL(fileURLWithPath: $0.image).deletingPathExtension().lastPathComponent == stem }
    }
}
