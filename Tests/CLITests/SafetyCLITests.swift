import Checkpoints
import Foundation
import TestSupport
import Testing

/// `varaudit safety` and `varaudit concepts` on the random-weight checker of Tests/Fixtures/safety.
struct SafetyCLITests {
    let checker = Fixtures.url("safety/checker").path

    /// diffusers' verdicts recorded by tools/fixtures/make_safety.py.
    func expected() throws -> [[String: Any]] {
        let data = try Data(contentsOf: Fixtures.url("safety/expected.json"))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["images"] as? [[String: Any]] ?? []
    }

    func imagePaths() throws -> [String] { try expected().map { Fixtures.url($0["image"] as? String ?? "").path } }

    func json(_ run: ToolRun) throws -> Any { try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) }

    @Test func safetyJSONMatchesDiffusers() throws {
        let run = try Fixtures.runTool(["safety", "--checker", checker, "--json"] + imagePaths())
        #expect(run.status == 0, "\(run.stderr)")
        let verdicts = try json(run) as? [[String: Any]] ?? []
        let reference = try expected()
        #expect(verdicts.count == reference.count)
        for (v, e) in zip(verdicts, reference) {
            #expect(Set(v.keys) == ["image", "flagged", "special_care", "concepts", "special"])
            #expect(v["flagged"] as? Bool == e["flagged"] as? Bool, "\(e["image"] ?? "")")
            #expect(v["special_care"] as? Bool == !((e["special_care"] as? [Any])?.isEmpty ?? true))
            let concepts = v["concepts"] as? [[String: Any]] ?? []
            #expect(concepts.count == 17)
            let flagged = concepts.filter { $0["flagged"] as? Bool == true }.map { $0["index"] as? Int ?? -1 }
            #expect(flagged == (e["bad_concepts"] as? [Int] ?? []))
            let scores = concepts.map { Float(($0["score"] as? NSNumber)?.doubleValue ?? .nan) }
            let refScores = (e["concept_scores"] as? [NSNumber] ?? []).map { Float($0.doubleValue) }
            #expect(scores == refScores)
            let sims = concepts.map { Float(($0["similarity"] as? NSNumber)?.doubleValue ?? .nan) }
            let refSims = (e["concept_similarity"] as? [NSNumber] ?? []).map { Float($0.doubleValue) }
            #expect(maxAbsDifference(sims, refSims) <= 1e-4)
            #expect((v["special"] as? [Any])?.count == 3)
        }
    }

    @Test func safetyTableAndAdjustment() throws {
        let gray = Fixtures.url("safety/images/coffee_gray.png").path
        let run = try Fixtures.runTool(["safety", "--checker", checker, gray])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("FLAGGED (special care)"))
        #expect(run.stdout.contains("concept_1") && run.stdout.contains("fires"))
        #expect(run.stdout.contains("1 of 1 image flagged"))
        let off = try Fixtures.runTool(["safety", "--checker", checker, "--adjustment", "0", gray])
        #expect(off.status == 0 && off.stdout.contains("ok (special care)") && off.stdout.contains("0 of 1"))
    }

    @Test func extractShowListAndUseASet() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let set = dir.appendingPathComponent("tiny.json").path
        let extract = try Fixtures.runTool(["concepts", "extract", "--checker", checker, "--out", set])
        #expect(extract.status == 0, "\(extract.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("tiny.npy").path))
        #expect(try NPY.read(url: dir.appendingPathComponent("tiny.npy")).shape == [20, 24])
        let written =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: set))) as? [String: Any]
        let provenance = written?["provenance"] as? [String: Any]
        #expect((provenance?["sha256"] as? String)?.count == 64)
        #expect((provenance?["source"] as? String)?.hasSuffix("model.safetensors") == true)
        let show = try Fixtures.runTool(["concepts", "show", set, "--json"])
        #expect(show.status == 0, "\(show.stderr)")
        let shown = try json(show) as? [String: Any] ?? [:]
        #expect((shown["concepts"] as? [Any])?.count == 20)
        #expect((shown["adjustment"] as? NSNumber)?.doubleValue == 0.01)
        let list = try Fixtures.runTool(["concepts", "list", dir.path])
        #expect(list.status == 0 && list.stdout.contains("17 concepts, 3 special"), "\(list.stdout)\(list.stderr)")
        let paths = try imagePaths()
        let builtIn = try Fixtures.runTool(["safety", "--checker", checker, "--json"] + paths)
        let fromSet = try Fixtures.runTool(["safety", "--checker", checker, "--concepts", set, "--json"] + paths)
        #expect(fromSet.status == 0, "\(fromSet.stderr)")
        #expect(fromSet.stdout == builtIn.stdout)
    }

    @Test func addAndCalibrate() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        let pos = dir.appendingPathComponent("pos/cats")
        let neg = dir.appendingPathComponent("neg")
        try fm.createDirectory(at: pos, withIntermediateDirectories: true)
        try fm.createDirectory(at: neg, withIntermediateDirectories: true)
        try fm.copyItem(at: Fixtures.url("photos/chelsea.png"), to: pos.appendingPathComponent("chelsea.png"))
        try fm.copyItem(
            at: Fixtures.url("safety/images/chelsea_flip.png"), to: pos.appendingPathComponent("chelsea_flip.png"))
        for f in [
            "photos/coffee.png", "photos/rocket.jpg", "safety/images/gradient.png", "safety/images/rocket_crop.png",
        ] {
            try fm.copyItem(
                at: Fixtures.url(f), to: neg.appendingPathComponent(URL(fileURLWithPath: f).lastPathComponent))
        }
        let set = dir.appendingPathComponent("mine.json").path
        let add = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "cats", "--images", pos.path, "--threshold", "0.99",
            "--checker", checker,
        ])
        #expect(add.status == 0, "\(add.stderr)")
        // The issue's synopsis has no --checker: the set's provenance names the checker.
        let again = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "cats", "--images", pos.path, "--threshold", "0.5",
        ])
        #expect(again.status != 0 && again.stderr.contains("cats"))
        let flipped = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "more-cats", "--images", pos.path, "--threshold", "0.99",
            "--disabled",
        ])
        #expect(flipped.status == 0, "\(flipped.stderr)")
        let before = try String(contentsOfFile: set, encoding: .utf8)
        let dry = try Fixtures.runTool([
            "concepts", "calibrate", "--set", set, "--checker", checker, "--positives",
            dir.appendingPathComponent("pos").path,
            "--negatives", neg.path, "--json",
        ])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(try String(contentsOfFile: set, encoding: .utf8) == before)
        let report = try json(dry) as? [String: Any] ?? [:]
        let cats = (report["concepts"] as? [[String: Any]])?.first ?? [:]
        #expect(cats["name"] as? String == "cats")
        let metrics = cats["metrics"] as? [String: Any] ?? [:]
        #expect(metrics["positives"] as? Int == 2 && metrics["negatives"] as? Int == 4)
        #expect((metrics["roc_auc"] as? NSNumber) != nil)
        #expect((report["overall"] as? [String: Any])?["recall"] != nil)
        let threshold = (cats["threshold"] as? NSNumber)?.doubleValue ?? .nan
        let written = try Fixtures.runTool([
            "concepts", "calibrate", "--set", set, "--positives",
            dir.appendingPathComponent("pos").path,
            "--negatives", neg.path, "--write",
        ])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(written.stdout.contains("overall: precision"))
        let show = try json(try Fixtures.runTool(["concepts", "show", set, "--json"])) as? [String: Any] ?? [:]
        let stored = ((show["concepts"] as? [[String: Any]])?.first?["threshold"] as? NSNumber)?.doubleValue
        #expect(stored.map { Float($0) } == Float(threshold))
    }

    @Test func badConceptFilesFailNamingFileAndConcept() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let set = dir.appendingPathComponent("bad.json")
        try Data("{\"concepts\": [{\"name\": \"tiny\", \"threshold\": 0.1, \"embedding\": [1, 2, 3]}]}".utf8).write(
            to: set)
        let image = Fixtures.url("photos/rocket.jpg").path
        let run = try Fixtures.runTool(["safety", "--checker", checker, "--concepts", set.path, image])
        #expect(run.status != 0)
        #expect(run.stderr.contains(set.path) && run.stderr.contains("\"tiny\"") && run.stderr.contains("expected 24"))
        try Data(
            "{\"concepts\": [{\"name\": \"lost\", \"threshold\": 0.1, \"embedding\": {\"file\": \"x.npy\", \"row\": 0}}]}"
                .utf8
        )
        .write(to: set)
        let missing = try Fixtures.runTool(["safety", "--checker", checker, "--concepts", set.path, image])
        #expect(missing.status != 0 && missing.stderr.contains("\"lost\"") && missing.stderr.contains("x.npy"))
        let noChecker = try Fixtures.runTool(["safety", "--checker", dir.path, image])
        #expect(noChecker.status != 0 && noChecker.stderr.contains("no safety checker"))
    }
}
