import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// The text commands, run as a user would: `embed --text`, `tokenize`, `concepts add --text` and
/// `index search --text`, on the CLIP fixtures of `make_clip_text.py` (tiny-a: a CLIPModel folder projecting to
/// 24 dimensions, like the safety-checker fixture; tiny-b: a text-encoder folder projecting to 16).
struct TextCLITests {
    let tinyA = Fixtures.url("clip-text/tiny-a").path
    let tinyB = Fixtures.url("clip-text/tiny-b").path
    let checker = Fixtures.url("safety/checker").path

    struct Expected: Decodable { let texts: [String] }

    func texts(_ model: String) throws -> [String] {
        try JSONDecoder().decode(
            Expected.self, from: Data(contentsOf: Fixtures.url("clip-text/\(model)/expected.json"))
        ).texts
    }

    func reference(_ model: String) throws -> [[Float]] {
        let t = try Fixtures.tensors("clip-text/\(model)/expected.safetensors").tensor(named: "text_embeds")
        let d = t.shape[1]
        return (0..<t.shape[0]).map { Array(t.scalars[($0 * d)..<(($0 + 1) * d)]) }
    }

    func rows(_ path: String) throws -> [[Float]] {
        let t = try NPY.read(url: URL(fileURLWithPath: path))
        let d = t.shape[1]
        return (0..<t.shape[0]).map { Array(t.scalars[($0 * d)..<(($0 + 1) * d)]) }
    }

    func unit(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / n }
    }

    func json(_ run: ToolRun) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
    }

    @Test func embedTextsInInputOrder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let texts = try texts("tiny-a")
        let ref = try reference("tiny-a")
        let file = dir.appendingPathComponent("texts.txt")
        try Data("\(texts[2])\r\n\(texts[4])\n\(texts[5])\n".utf8).write(to: file)
        let out = dir.appendingPathComponent("t.npy").path
        let run = try Fixtures.runTool([
            "embed", "--clip", tinyA, "--text", texts[1], "--text", texts[0], "--texts", file.path, "--out", out,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let got = try rows(out)
        #expect(got.count == 5 && got.first?.count == 24)
        for (row, index) in zip(got, [1, 0, 2, 4, 5]) {
            #expect(maxRelativeError(row, reference: ref[index]) <= 1e-4, "row of text \(index)")
        }
        // --normalize on a text-encoder folder: unit rows.
        let normalized = dir.appendingPathComponent("n.npy").path
        let runB = try Fixtures.runTool([
            "embed", "--clip", tinyB, "--text", try self.texts("tiny-b")[3], "--normalize", "--out", normalized,
        ])
        #expect(runB.status == 0, "\(runB.stderr)")
        let b = try rows(normalized)
        let refB = unit(try reference("tiny-b")[3])
        #expect(b.count == 1 && maxRelativeError(b[0], reference: refB) <= 1e-4)
    }

    @Test func embedRefusesImagesWithTextsAndTextsWithoutCLIP() throws {
        let both = try Fixtures.runTool([
            "embed", "--clip", tinyA, "--text", "a cat", "--input", Fixtures.url("photos/chelsea.png").path,
            "--out", "/tmp/never.npy",
        ])
        #expect(both.status == 64 && both.stderr.contains("not both"), "\(both.stderr)")
        let noClip = try Fixtures.runTool(["embed", "--text", "a cat", "--out", "/tmp/never.npy"])
        #expect(noClip.status == 64 && noClip.stderr.contains("--clip"), "\(noClip.stderr)")
        let missing = try Fixtures.runTool([
            "embed", "--clip", tinyA, "--texts", "/nonexistent/texts.txt", "--out", "/tmp/never.npy",
        ])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/texts.txt"), "\(missing.stderr)")
    }

    @Test func tokenizeJSONMatchesTransformers() throws {
        struct Cases: Decodable {
            struct Case: Decodable {
                let text: String
                let a: [Int]
            }
            let pad: [String: Int]
            let cases: [Case]
        }
        let all = try JSONDecoder().decode(
            Cases.self, from: Data(contentsOf: Fixtures.url("clip-text/tokenizer-cases.json")))
        let picked = ["it's", "hello, world!", "café", "😀😂", "中文"].compactMap { t in
            all.cases.first { $0.text == t }
        }
        #expect(picked.count == 5)
        let run = try Fixtures.runTool(
            ["tokenize", "--clip", tinyA, "--json"] + picked.flatMap { ["--text", $0.text] })
        #expect(run.status == 0, "\(run.stderr)")
        let rows = try json(run) as? [[String: Any]] ?? []
        #expect(rows.count == picked.count)
        for (row, c) in zip(rows, picked) {
            let expected = c.a + [Int](repeating: all.pad["a"] ?? -1, count: 77 - c.a.count)
            #expect(row["text"] as? String == c.text)
            #expect(row["ids"] as? [Int] == expected, "\(c.text)")
            #expect((row["tokens"] as? [String])?.isEmpty == false)
        }
        // A text-encoder folder with 64 positions pads to 64 with its own pad token ("!", id 0).
        let plain = try Fixtures.runTool(["tokenize", "--clip", tinyB, "--text", "a cat"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let ids = plain.stdout.split(separator: " ").compactMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(ids.count == 64 && ids.last == 0)
    }

    @Test func conceptsAddFromTextsThenCalibrateAndRefuseOtherModels() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let set = dir.appendingPathComponent("words.json").path
        let add = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "weapon", "--text", "weapon", "--text", "a gun", "--clip", tinyA,
        ])
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.contains("from 2 texts"))
        // The concept is the mean of the two normalized text embeddings.
        let emb = dir.appendingPathComponent("e.npy").path
        let embed = try Fixtures.runTool([
            "embed", "--clip", tinyA, "--text", "weapon", "--text", "a gun", "--normalize", "--out", emb,
        ])
        #expect(embed.status == 0, "\(embed.stderr)")
        let units = try rows(emb)
        let mean = zip(units[0], units[1]).map { ($0 + $1) / 2 }
        let show = try json(try Fixtures.runTool(["concepts", "show", set, "--json"])) as? [String: Any] ?? [:]
        let provenance = show["provenance"] as? [String: Any] ?? [:]
        let hash = provenance["text_model_sha256"] as? String ?? ""
        #expect(hash.count == 64 && provenance["sha256"] as? String == hash, "\(provenance)")
        #expect((provenance["text_model"] as? String)?.hasSuffix("tiny-a/model.safetensors") == true)
        let concept = (show["concepts"] as? [[String: Any]])?.first ?? [:]
        #expect((concept["threshold"] as? NSNumber)?.floatValue == 0.2)
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: set)))
        let values =
            (((stored as? [String: Any])?["concepts"] as? [[String: Any]])?.first?["embedding"] as? [NSNumber])?
            .map(\.floatValue) ?? []
        #expect(maxAbsDifference(values, mean) <= 1e-6)

        // Used by `safety`, the text concept scores exactly as the same vector written into a set by hand.
        let byHand = dir.appendingPathComponent("by-hand.json")
        let inline = mean.map { "\($0)" }.joined(separator: ", ")
        try Data(
            #"{"concepts": [{"name": "weapon", "threshold": 0.2, "embedding": [\#(inline)]}]}"#.utf8
        ).write(to: byHand)
        let images = ["photos/chelsea.png", "photos/coffee.png", "safety/images/gradient.png"].flatMap {
            ["--input", Fixtures.url($0).path]
        }
        let fromText = try Fixtures.runTool(["safety", "--checker", checker, "--concepts", set, "--json"] + images)
        let fromHand = try Fixtures.runTool(
            ["safety", "--checker", checker, "--concepts", byHand.path, "--json"] + images)
        #expect(fromText.status == 0 && fromHand.status == 0, "\(fromText.stderr) \(fromHand.stderr)")
        let textScores = (try json(fromText) as? [[String: Any]] ?? []).map { $0["concepts"] as? [[String: Any]] ?? [] }
        let handScores = (try json(fromHand) as? [[String: Any]] ?? []).map { $0["concepts"] as? [[String: Any]] ?? [] }
        #expect(textScores.count == 3)
        for (a, b) in zip(textScores, handScores) {
            #expect(a.count == 1 && b.count == 1)
            #expect(a.first?["score"] as? Double == b.first?["score"] as? Double)
            #expect(a.first?["similarity"] as? Double == b.first?["similarity"] as? Double)
        }

        // A second text concept from the same model, with a threshold.
        let second = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "mouse", "--text", "Mickey Mouse", "--clip", tinyA,
            "--threshold", "0.3",
        ])
        #expect(second.status == 0, "\(second.stderr)")

        // Another CLIP model (other weights: other SHA-256) is refused, naming both.
        let other = try copyWithRewrittenWeights(tinyA, to: dir.appendingPathComponent("other-clip"))
        let refused = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "gun", "--text", "a gun", "--clip", other.path,
        ])
        #expect(refused.status == 1 && refused.stderr.contains("SHA-256") && refused.stderr.contains(hash))
        let refusedB = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "gun", "--text", "a gun", "--clip", tinyB,
        ])
        #expect(refusedB.status == 1 && refusedB.stderr.contains("SHA-256"), "\(refusedB.stderr)")

        // A set of another width (no model recorded) is refused by dimension, as is a checker of another width.
        let narrow = dir.appendingPathComponent("narrow.json")
        let sixteen = (0..<16).map { _ in "0.25" }.joined(separator: ",")
        let entry = #"{"name": "x", "kind": "concept", "threshold": 0.2, "embedding": [\#(sixteen)]}"#
        try Data(#"{"format": "varaudit-concepts", "version": 1, "concepts": [\#(entry)]}"#.utf8).write(to: narrow)
        let wide = try Fixtures.runTool([
            "concepts", "add", "--set", narrow.path, "--name", "y", "--text", "a gun", "--clip", tinyA,
        ])
        #expect(wide.status == 1 && wide.stderr.contains("24") && wide.stderr.contains("16"), "\(wide.stderr)")
        let checkerWidth = try Fixtures.runTool([
            "concepts", "add", "--set", dir.appendingPathComponent("b.json").path, "--name", "y", "--text", "a gun",
            "--clip", tinyB, "--checker", checker,
        ])
        #expect(checkerWidth.status == 1 && checkerWidth.stderr.contains("checker"), "\(checkerWidth.stderr)")

        // Without a checker, calibration asks for one; with the checker (24 wide), it tunes the thresholds.
        let noChecker = try Fixtures.runTool([
            "concepts", "calibrate", "--set", set, "--positives", Fixtures.url("photos").path, "--negatives",
            Fixtures.url("safety/images").path,
        ])
        #expect(noChecker.status == 1 && noChecker.stderr.contains("--checker"), "\(noChecker.stderr)")
        let calibrate = try Fixtures.runTool([
            "concepts", "calibrate", "--set", set, "--checker", checker, "--positives", Fixtures.url("photos").path,
            "--negatives", Fixtures.url("safety/images").path, "--write", "--json",
        ])
        #expect(calibrate.status == 0, "\(calibrate.stderr)")
        let report = try json(calibrate) as? [String: Any] ?? [:]
        #expect((report["concepts"] as? [[String: Any]])?.map { $0["name"] as? String } == ["weapon", "mouse"])

        // Usage: images and texts together, texts without --clip.
        let both = try Fixtures.runTool([
            "concepts", "add", "--set", set, "--name", "z", "--text", "a", "--clip", tinyA, "--input",
            Fixtures.url("photos/chelsea.png").path, "--threshold", "0.2",
        ])
        #expect(both.status == 64 && both.stderr.contains("not both"), "\(both.stderr)")
        let noClip = try Fixtures.runTool(["concepts", "add", "--set", set, "--name", "z", "--text", "a"])
        #expect(noClip.status == 64 && noClip.stderr.contains("--clip"), "\(noClip.stderr)")
    }

    /// A copy of a CLIP folder whose weights hold the same values in a rewritten file (so another SHA-256).
    func copyWithRewrittenWeights(_ source: String, to dir: URL) throws -> URL {
        try FileManager.default.copyItem(at: URL(fileURLWithPath: source), to: dir)
        let weights = dir.appendingPathComponent("model.safetensors")
        let archive = try SafeTensorsFile(url: weights)
        var tensors: [String: Tensor] = [:]
        for key in archive.keys where !key.hasSuffix("position_ids") { tensors[key] = try archive.tensor(named: key) }
        try SafeTensorsWriter.write(tensors, metadata: ["copy": "yes"], to: weights)
        return dir
    }

    @Test func indexSearchByText() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Twelve random unit vectors of width 24, with the normalized embedding of "Mickey Mouse" at row 7.
        let query = dir.appendingPathComponent("q.npy").path
        let embed = try Fixtures.runTool([
            "embed", "--clip", tinyA, "--text", "Mickey Mouse", "--normalize", "--out", query,
        ])
        #expect(embed.status == 0, "\(embed.stderr)")
        let mickey = try rows(query)[0]
        var generator = SplitMix64(seed: 7)
        var values: [Float] = []
        for r in 0..<12 {
            let row = r == 7 ? mickey : unit((0..<24).map { _ in Float(generator.next() % 2001) / 1000 - 1 })
            values += row
        }
        let vectors = dir.appendingPathComponent("train.npy")
        try NPY.write(try Tensor(shape: [12, 24], values: values), to: vectors)
        let index = dir.appendingPathComponent("train.index").path
        let build = try Fixtures.runTool(["index", "build", "--embeddings", vectors.path, "--out", index])
        #expect(build.status == 0, "\(build.stderr)")

        let search = try Fixtures.runTool([
            "index", "search", "--index", index, "--text", "Mickey Mouse", "--text", "weapon", "--clip", tinyA, "--k",
            "3", "--json",
        ])
        #expect(search.status == 0, "\(search.stderr)")
        let results = try json(search) as? [[String: Any]] ?? []
        #expect(results.count == 2 && results.first?["text"] as? String == "Mickey Mouse")
        let top = (results.first?["neighbors"] as? [[String: Any]])?.first ?? [:]
        #expect(top["id"] as? Int == 7)
        #expect(abs(((top["score"] as? NSNumber)?.doubleValue ?? 0) - 1) <= 1e-4, "\(top)")
        let plain = try Fixtures.runTool([
            "index", "search", "--index", index, "--text", "Mickey Mouse", "--clip", tinyA, "--k", "1",
        ])
        #expect(plain.status == 0 && plain.stdout.contains("\"Mickey Mouse\"") && plain.stdout.contains("id 7"))

        // A CLIP model of another width is refused; --queries and --text are exclusive, one is required.
        let narrow = try Fixtures.runTool(["index", "search", "--index", index, "--text", "a", "--clip", tinyB])
        #expect(narrow.status == 1 && narrow.stderr.contains("16") && narrow.stderr.contains("24"), "\(narrow.stderr)")
        let both = try Fixtures.runTool([
            "index", "search", "--index", index, "--queries", query, "--text", "a", "--clip", tinyA,
        ])
        #expect(both.status == 64 && both.stderr.contains("exactly one"), "\(both.stderr)")
        let neither = try Fixtures.runTool(["index", "search", "--index", index])
        #expect(neither.status == 64 && neither.stderr.contains("exactly one"), "\(neither.stderr)")
    }
}
