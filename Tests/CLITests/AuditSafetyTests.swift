import AuditStore
import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// `varaudit audit` with a safety checker: every concept score stored equals what `varaudit safety` computes on
/// the stored image, whether the checker's CLIP pass is its own or shared with the image encoder.
struct AuditSafetyTests {
    /// A pipeline folder: tiny-a's networks and a checker whose vision tower and projection are tiny-a's image
    /// encoder (nested transformers-4 key layout), with the fixture checker's concepts and `threshold` for all.
    func sharedTowerPipeline(in dir: URL, threshold: Float?) throws -> URL {
        let root = try GenerateSafetyTests().pipeline(in: dir, threshold: threshold ?? 0)
        let checker = root.appendingPathComponent("safety_checker/model.safetensors")
        var tensors = try SafeTensorsFile(url: checker).loadAll()
        let fixture = try SafeTensorsFile(url: Fixtures.url("safety/checker/safety_checker/model.safetensors"))
        if threshold == nil {
            for key in ["concept_embeds_weights", "special_care_embeds_weights"] {
                tensors[key] = try fixture.tensor(named: key)
            }
        }
        let encoder = try SafeTensorsFile(url: Fixtures.url("pipeline/tiny-a/image_encoder/model.safetensors"))
        for key in tensors.keys where key.hasPrefix("vision_model.") || key == "visual_projection.weight" {
            tensors[key] = nil
        }
        for key in encoder.keys {
            let name = key.hasPrefix("vision_model.") ? "vision_model." + key : key
            tensors[name] = try encoder.tensor(named: key)
        }
        try SafeTensorsWriter.write(tensors, to: checker)
        return root
    }

    func audit(_ model: URL, db: URL) throws -> ToolRun {
        try Fixtures.runTool([
            "audit", "--model", model.path, "--input", Fixtures.url("photos/coffee.png").path, "--input",
            Fixtures.url("photos/chelsea.png").path, "--variations", "2", "--steps", "3", "--db", db.path,
        ])
    }

    /// Checks every stored concept score of every variation (and input) against `varaudit safety --json`.
    func expectScoresMatchSafetyCommand(db: URL, model: URL) throws -> [[String: Any]] {
        let query = try Fixtures.runTool(["query", "--db", db.path, "--json", "--sort", "safety"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(query.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 4)
        let images = rows.compactMap { $0["image"] as? String }
        let safety = try Fixtures.runTool(["safety", "--checker", model.path, "--json"] + images)
        #expect(safety.status == 0, "\(safety.stderr)")
        let verdicts = try #require(
            try JSONSerialization.jsonObject(with: Data(safety.stdout.utf8)) as? [[String: Any]])
        for (row, verdict) in zip(rows, verdicts) {
            let stored = try #require(row["safety"] as? [String: Any])
            #expect(stored["flagged"] as? Bool == verdict["flagged"] as? Bool)
            let storedConcepts = try #require(stored["concepts"] as? [[String: Any]])
            let expected =
                (verdict["concepts"] as? [[String: Any]] ?? []) + (verdict["special"] as? [[String: Any]] ?? [])
            #expect(storedConcepts.count == expected.count)
            for (s, e) in zip(storedConcepts, expected) {
                #expect(s["name"] as? String == e["name"] as? String)
                #expect(abs((s["similarity"] as? Double ?? 9) - (e["similarity"] as? Double ?? 0)) <= 1e-6)
                #expect(s["score"] as? Double == e["score"] as? Double)
                #expect(s["threshold"] as? Double == e["threshold"] as? Double)
            }
            let flags = row["flags"] as? [String] ?? []
            #expect(flags.contains("unsafe") == (verdict["flagged"] as? Bool == true))
        }
        // Sorted by safety: the highest concept score first.
        let tops = rows.map {
            (($0["safety"] as? [String: Any])?["concepts"] as? [[String: Any]] ?? []).compactMap {
                $0["score"] as? Double
            }.max() ?? -9
        }
        #expect(tops == tops.sorted(by: >))
        return rows
    }

    @Test func flaggedVariationsKeepEveryConceptScore() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try GenerateSafetyTests().pipeline(in: dir.appendingPathComponent("all"), threshold: -2)
        let db = dir.appendingPathComponent("audit.sqlite")
        let run = try audit(model, db: db)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!run.stderr.contains("one CLIP pass shared"))
        let rows = try expectScoresMatchSafetyCommand(db: db, model: model)
        #expect(rows.allSatisfy { ($0["flags"] as? [String])?.contains("unsafe") == true })
        // Flagged images are stored as generated (not blacked out): the report blurs them instead.
        let image = try #require(rows.first?["image"] as? String)
        let pixels = try Data(contentsOf: URL(fileURLWithPath: image))
        #expect(!pixels.isEmpty)
        let unsafeOnly = try Fixtures.runTool(["query", "--db", db.path, "--json", "--flag", "unsafe"])
        #expect(((try JSONSerialization.jsonObject(with: Data(unsafeOnly.stdout.utf8))) as? [Any])?.count == 4)
        // The inputs' own verdicts are stored too.
        let store = try AuditStore(url: db, create: false)
        for input in try store.inputs(run: 1) {
            #expect(input.safetyFlagged == true)
            #expect(try store.inputDetails(input.id!).concepts.count == 17 + 3)
        }
    }

    @Test func sharedTowerRunsOneCLIPPassWithTheSameScores() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try sharedTowerPipeline(in: dir.appendingPathComponent("shared"), threshold: nil)
        let db = dir.appendingPathComponent("audit.sqlite")
        let run = try audit(model, db: db)
        #expect(run.status == 0, "\(run.stderr)")
        let runs = try Fixtures.runTool(["runs", "--db", db.path, "--json"])
        #expect(runs.stdout.contains("one CLIP pass shared with the image encoder"))
        _ = try expectScoresMatchSafetyCommand(db: db, model: model)
    }
}
