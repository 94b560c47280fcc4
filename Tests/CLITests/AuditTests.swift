import AuditStore
import Checkpoints
import Foundation
import Imaging
import Tensors
import TestSupport
import Testing

/// `varaudit audit`, `query`, `runs` and `merge` on the tiny golden pipeline, run as a user would.
@Suite(.serialized)
struct AuditTests {
    static let model = Fixtures.url("pipeline/tiny-a").path
    static let photos = ["chelsea.png", "coffee.png", "rocket.jpg"].map { Fixtures.url("photos/\($0)").path }

    /// `audit` on the three photographs with tiny-a.
    static func audit(_ db: URL, _ extra: [String] = [], steps: Int = 4, variations: Int = 2) throws -> ToolRun {
        try Fixtures.runTool(
            [
                "audit", "--model", model, "--inputs", Fixtures.url("photos").path, "--variations", "\(variations)",
                "--steps", "\(steps)", "--seed", "42", "--db", db.path,
            ] + extra)
    }

    static func query(_ db: URL, _ extra: [String] = []) throws -> [[String: Any]] {
        let run = try Fixtures.runTool(["query", "--db", db.path, "--json"] + extra)
        #expect(run.status == 0, "\(run.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    /// `(input file name, k) → image SHA-256` of a query result.
    static func images(_ rows: [[String: Any]]) -> [String: String] {
        var out: [String: String] = [:]
        for r in rows {
            let name = ((r["input"] as? String ?? "") as NSString).lastPathComponent
            out["\(name)#\(r["variation"] as? Int ?? -1)"] = r["image_sha256"] as? String
        }
        return out
    }

    @Test func auditMatchesDiffusersAndQueryReportsEveryVariation() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("audit.sqlite")
        let run = try Self.audit(db, ["--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("step 5/5"))
        #expect(run.stderr.contains("safety check skipped: no --checker"))
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(summary["variations"] as? Int == 6)
        #expect(summary["inputs"] as? Int == 3)
        #expect(summary["status"] as? String == "done")
        let weights = try #require(summary["weights"] as? [String: [String: Any]])
        #expect(Set(weights.keys) == ["image_encoder", "unet", "vae"])

        // The images are diffusers' (PNDM, the model's scheduler; seed 42, 4 steps, guidance 3) within 2/255.
        let rows = try Self.query(db)
        #expect(rows.count == 6)
        for r in rows {
            let input = ((r["input"] as? String ?? "") as NSString).lastPathComponent
            let stem = (input as NSString).deletingPathExtension
            let k = r["variation"] as? Int ?? -1
            let path = try #require(r["image"] as? String)
            #expect(path.hasPrefix("/"))
            let ours = try RGBImage.load(contentsOf: URL(fileURLWithPath: path))
            let ref = try RGBImage.load(contentsOf: Fixtures.url("pipeline/tiny-a-expected/pndm/\(stem)-\(k).png"))
            let worst = zip(ours.pixels, ref.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
            #expect(worst <= 2, "\(stem)-\(k)")
            #expect(r["seed"] as? Int == 42)
            #expect(r["safety"] is NSNull)
            let memorization = try #require(r["memorization"] as? [String: Any])
            #expect(memorization["score"] is NSNull)
            #expect((memorization["neighbors"] as? [Any])?.isEmpty == true)
            #expect(memorization["input_similarity"] is Double)
        }
        // Sorting and filtering.
        let byInput = try Self.query(db, ["--input", Self.photos[1]])
        #expect(byInput.count == 2)
        #expect(try Self.query(db, ["--limit", "1"]).count == 1)
        #expect(try Self.query(db, ["--flag", "any"]).isEmpty)
        let csv = try Fixtures.runTool(["query", "--db", db.path, "--csv"])
        #expect(csv.stdout.split(separator: "\n").count == 7)
        let runs = try Fixtures.runTool(["runs", "--db", db.path, "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list.first?["variations"] as? Int == 6)
    }

    @Test func otherParametersAreRefusedUnlessNewRun() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("audit.sqlite")
        #expect(try Self.audit(db, variations: 1).status == 0)
        let again = try Self.audit(db, variations: 1)
        #expect(again.status == 0)
        #expect(again.stderr.contains("already audited"))
        let other = try Self.audit(db, steps: 3, variations: 1)
        #expect(other.status == 1)
        #expect(other.stderr.contains("steps: 4 → 3"), "\(other.stderr)")
        #expect(other.stderr.contains("--new-run"))
        let new = try Self.audit(db, ["--new-run"], steps: 3, variations: 1)
        #expect(new.status == 0, "\(new.stderr)")
        let runs = try Fixtures.runTool(["runs", "--db", db.path, "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == 2)
        #expect(try Self.query(db, ["--run", "1"]).count == 3)
        let missing = try Fixtures.runTool(["query", "--db", dir.appendingPathComponent("none.sqlite").path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("none.sqlite"))
    }

    @Test func killedAuditResumesWithEveryVariationOnceAndQueryAnswersWhileRunning() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = dir.appendingPathComponent("reference.sqlite")
        #expect(try Self.audit(reference, steps: 10, variations: 3).status == 0)

        let db = dir.appendingPathComponent("killed.sqlite")
        let args = [
            "audit", "--model", Self.model, "--inputs", Fixtures.url("photos").path, "--variations", "3", "--steps",
            "10", "--seed", "42", "--db", db.path, "--images", dir.appendingPathComponent("reference-images").path,
        ]
        // Kill once as soon as a variation is stored (queried while the audit writes), once a moment later.
        for round in 0..<2 {
            let process = Process()
            process.executableURL = Fixtures.tool
            process.arguments = args
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let before = FileManager.default.fileExists(atPath: db.path) ? try Self.query(db).count : 0
            var seen = before
            let deadline = Date().addingTimeInterval(60)
            while seen == before && process.isRunning && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
                if FileManager.default.fileExists(atPath: db.path) {
                    let r = try Fixtures.runTool(["query", "--db", db.path, "--json"])
                    if r.status == 0 {
                        seen = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [Any])?.count ?? 0
                    }
                }
            }
            if round == 1 { Thread.sleep(forTimeInterval: 0.3) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(seen > before, "query answered during the run (round \(round))")
        }
        let partial = try Self.query(db).count
        #expect(partial < 9)
        let resumed = try Fixtures.runTool(args)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming run 1"))
        let rows = try Self.query(db)
        #expect(rows.count == 9)
        let keys = rows.map { "\($0["input"] ?? "")#\($0["variation"] ?? "")" }
        #expect(Set(keys).count == 9)
        #expect(Self.images(rows) == Self.images(try Self.query(reference)))
        let store = try AuditStore(url: db, create: false)
        #expect(try store.inputs(run: 1).count == 3)
        // No temporary files are left beside the images.
        let imageDir = URL(fileURLWithPath: (rows[0]["image"] as? String ?? "")).deletingLastPathComponent()
        let names = try FileManager.default.contentsOfDirectory(atPath: imageDir.path)
        #expect(names.filter { $0.hasSuffix(".tmp") }.isEmpty)
    }

    @Test func shardsMergeIntoWhatOneMachineStores() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let images = ["--images", dir.appendingPathComponent("images").path]
        let single = dir.appendingPathComponent("single.sqlite")
        #expect(try Self.audit(single, images).status == 0)
        let s0 = dir.appendingPathComponent("s0.sqlite")
        let s1 = dir.appendingPathComponent("s1.sqlite")
        #expect(try Self.audit(s0, images + ["--shard", "0/2"]).status == 0)
        #expect(try Self.query(s0).count == 4)  // positions 0 and 2 of 3
        // The second shard comes from a SLURM job array's environment; the database gets the shard's name.
        let slurm = try Fixtures.runTool(
            [
                "audit", "--model", Self.model, "--inputs", Fixtures.url("photos").path, "--variations", "2", "--steps",
                "4", "--seed", "42", "--db", dir.appendingPathComponent("arr.sqlite").path,
            ] + images,
            environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"])
        #expect(slurm.status == 0, "\(slurm.stderr)")
        try FileManager.default.moveItem(at: dir.appendingPathComponent("arr.shard-1-of-2.sqlite"), to: s1)
        #expect(try Self.query(s1).count == 2)

        let merged = dir.appendingPathComponent("merged.sqlite")
        let merge = try Fixtures.runTool(["merge", "--db", merged.path, s0.path, s1.path])
        #expect(merge.status == 0, "\(merge.stderr)")
        func normalized(_ db: URL) throws -> String {
            let r = try Fixtures.runTool(["query", "--db", db.path, "--json", "--sort", "memorization"])
            return r.stdout
        }
        #expect(try normalized(merged) == (try normalized(single)))
        let again = try Fixtures.runTool(["merge", "--db", merged.path, s1.path, s0.path])
        #expect(again.status == 0)
        #expect(try normalized(merged) == (try normalized(single)))
        let runs = try Fixtures.runTool(["runs", "--db", merged.path, "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list.first?["status"] as? String == "done")

        // A shard of another audit is refused, naming the parameter.
        let other = dir.appendingPathComponent("other.sqlite")
        #expect(try Self.audit(other, images + ["--shard", "0/2"], steps: 3).status == 0)
        let refused = try Fixtures.runTool(["merge", "--db", merged.path, other.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("steps"))
    }

    @Test func unreadableInputIsAnErrorRowAndTheRunGoesOn() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: Fixtures.url("photos/coffee.png"), to: inputs.appendingPathComponent("coffee.png"))
        try Data("<html>not a picture</html>".utf8).write(to: inputs.appendingPathComponent("bogus.png"))
        let db = dir.appendingPathComponent("audit.sqlite")
        let run = try Fixtures.runTool(
            [
                "audit", "--model", Self.model, "--inputs", inputs.path, "--variations", "1", "--steps", "2", "--db",
                db.path, "--json",
            ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("bogus.png"))
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(summary["errors"] as? Int == 1)
        #expect(summary["variations"] as? Int == 1)
        let store = try AuditStore(url: db, create: false)
        let errors = try store.errors(run: 1)
        #expect(errors.count == 1)
        #expect(errors.first?.input.hasSuffix("bogus.png") == true)
        #expect(errors.first?.stage == "read")
        // A rerun retries the bad input and records its error once.
        #expect(
            try Fixtures.runTool(
                [
                    "audit", "--model", Self.model, "--inputs", inputs.path, "--variations", "1", "--steps", "2",
                    "--db",
                    db.path,
                ]).status == 0)
        #expect(try store.errors(run: 1).count == 1)
    }

    @Test func plantedCopiesAreFlaggedWithTheirTrainingRow() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("first.sqlite")
        #expect(try Self.audit(first).status == 0)
        let rows = try Self.query(first)
        let copied = try #require(
            rows.first { ($0["input"] as? String)?.hasSuffix("coffee.png") == true && $0["variation"] as? Int == 1 })
        let copiedImage = try #require(copied["image"] as? String)

        // The memorization embeddings of that variation and of the rocket input, as `embed` computes them.
        let planted = dir.appendingPathComponent("planted.npy")
        let embed = try Fixtures.runTool(
            [
                "embed", "--encoder", Self.model, "--preprocess", "clip", "--normalize", "--image", copiedImage,
                "--image", Self.photos[2], "--out", planted.path,
            ])
        #expect(embed.status == 0, "\(embed.stderr)")
        let vectors = try NPY.read(url: planted)
        let d = vectors.shape[1]
        // 300 random unit distractors with the two copies at rows 57 and 211.
        var rng = SystemRandomNumberGenerator()
        var values: [Float] = []
        for row in 0..<300 {
            if row == 57 || row == 211 {
                values += Array(vectors.scalars[((row == 57 ? 0 : 1) * d)..<((row == 57 ? 1 : 2) * d)])
                continue
            }
            var v = (0..<d).map { _ in Float.random(in: -1...1, using: &rng) }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / n }
            values += v
        }
        let train = dir.appendingPathComponent("train.npy")
        try NPY.write(try Tensor(shape: [300, d], values: values), to: train)
        let meta = dir.appendingPathComponent("meta.jsonl")
        try Data(
            (0..<300).map { #"{"caption": "training image \#($0)", "url": "https://example.com/\#($0).jpg"}"# }
                .joined(separator: "\n").utf8
        ).write(to: meta)
        let index = dir.appendingPathComponent("train.index")
        let build = try Fixtures.runTool(
            [
                "index", "build", "--embeddings", train.path, "--metadata", meta.path, "--factory", "Flat",
                "--normalize",
                "--out", index.path,
            ])
        #expect(build.status == 0, "\(build.stderr)")

        // The tiny model's random 24-dimensional embeddings of all variations lie in a narrow cone (pairwise
        // cosines 0.94–0.9998), so only an exact copy clears a threshold this close to 1.
        let second = dir.appendingPathComponent("second.sqlite")
        let strict = ["--index", index.path, "--memorization-threshold", "0.99999"]
        let run = try Self.audit(second, strict + ["--fail-on", "memorized"])
        #expect(run.status == 3, "\(run.stderr)")
        let memorized = try Self.query(second, ["--flag", "memorized"])
        #expect(memorized.count == 1)
        let hit = try #require(memorized.first)
        // The same variation (the PNG's text differs: the run's parameters now name the index).
        #expect(hit["input"] as? String == copied["input"] as? String)
        #expect(hit["variation"] as? Int == 1)
        let same = try RGBImage.load(contentsOf: URL(fileURLWithPath: hit["image"] as? String ?? ""))
        #expect(same.pixels == (try RGBImage.load(contentsOf: URL(fileURLWithPath: copiedImage))).pixels)
        let m = try #require(hit["memorization"] as? [String: Any])
        let neighbor = try #require(m["neighbor"] as? [String: Any])
        #expect(neighbor["id"] as? Int == 57)
        #expect((neighbor["score"] as? Double ?? 0) >= 0.99)
        #expect(neighbor["caption"] as? String == "training image 57")
        #expect((m["score"] as? Double ?? 0) >= 0.99)
        #expect((m["neighbors"] as? [Any])?.count == 10)
        #expect((hit["flags"] as? [String]) == ["memorized"])
        // Every other variation stays under the threshold; sorting by memorization puts the copy first.
        #expect(
            try Self.query(second, ["--sort", "memorization", "--limit", "1"]).first?["image"] as? String
                == hit["image"] as? String)
        #expect(try Self.query(second, ["--min-memorization", "0.99999"]).count == 1)

        // The rocket input itself is in the training set.
        let store = try AuditStore(url: second, create: false)
        let rocket = try #require(try store.inputs(run: 1).first { $0.path.hasSuffix("rocket.jpg") })
        #expect((rocket.memorizationScore ?? 0) >= 0.99)
        let details = try store.inputDetails(rocket.id!)
        #expect(details.neighbors.first?.rowID == 211)
        #expect(details.flags == ["memorized"])
        // Without --fail-on the same audit exits 0; --fail-on unsafe is not raised (no checker).
        #expect(try Self.audit(second, strict + ["--fail-on", "unsafe"]).status == 0)
    }
}
