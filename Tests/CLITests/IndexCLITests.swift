import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// `varaudit index build|search|info|recall`, run as a user would.
struct IndexCLITests {
    /// Writes the fixture base vectors as two shards (float32 rows 0..<600, float16 rows 600..<1000) and a
    /// JSONL metadata file; returns (shard paths, metadata path, the vectors as stored).
    static func shards(in dir: URL) throws -> ([String], String, [Float]) {
        let base = try NPY.read(url: Fixtures.url("faiss/base.npy"))
        let all = base.scalars
        let a = try Tensor(shape: [600, 16], values: Array(all[..<(600 * 16)]))
        let b = try Tensor(shape: [400, 16], values: Array(all[(600 * 16)...]))
        let pa = dir.appendingPathComponent("emb_0.npy")
        let pb = dir.appendingPathComponent("emb_1.npy")
        try NPY.write(a, to: pa)
        try NPY.write(b, to: pb, dtype: .float16)
        let meta = dir.appendingPathComponent("meta.jsonl")
        try Data(
            (0..<1000).map { #"{"path": "train/\#($0).jpg", "caption": "row \#($0)"}"# }.joined(separator: "\n").utf8
        )
        .write(to: meta)
        let stored = Array(all[..<(600 * 16)]) + all[(600 * 16)...].map { Float(Float16($0)) }
        return ([pa.path, pb.path], meta.path, stored)
    }

    @Test func flatBuildSearchesExactlyWithMetadata() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (paths, meta, stored) = try Self.shards(in: dir)
        let index = dir.appendingPathComponent("train.index").path
        let build = try Fixtures.runTool(
            ["index", "build", "--embeddings", paths[0], "--embeddings", paths[1], "--metadata", meta, "--out", index])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("HNSW32"))  // 1,000 vectors: the automatic choice
        let flat = dir.appendingPathComponent("flat.index").path
        let buildFlat = try Fixtures.runTool(
            [
                "index", "build", "--embeddings", paths[0], "--embeddings", paths[1], "--metadata", meta, "--factory",
                "Flat",
                "--out", flat,
            ])
        #expect(buildFlat.status == 0, "\(buildFlat.stderr)")
        #expect(FileManager.default.fileExists(atPath: flat + ".meta.sqlite"))

        let queriesPath = Fixtures.url("faiss/queries.npy").path
        let run = try Fixtures.runTool([
            "index", "search", "--index", flat, "--queries", queriesPath, "--k", "5", "--json",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
        let queries = try NPY.read(url: Fixtures.url("faiss/queries.npy")).scalars
        #expect(parsed.count == 20)
        for (q, entry) in parsed.enumerated() {
            #expect(entry["query"] as? Int == q)
            let neighbors = try #require(entry["neighbors"] as? [[String: Any]])
            // Exact inner products over the stored (float16-rounded where stored so) vectors.
            let scores = (0..<1000).map { j in
                (0..<16).reduce(Float(0)) { $0 + queries[q * 16 + $1] * stored[j * 16 + $1] }
            }
            let order = (0..<1000).sorted { scores[$0] > scores[$1] }.prefix(5)
            #expect(neighbors.compactMap { $0["id"] as? Int } == Array(order))
            for n in neighbors {
                let id = try #require(n["id"] as? Int)
                #expect(abs((n["score"] as? Double ?? 0) - Double(scores[id])) <= 1e-4)
                #expect(n["path"] as? String == "train/\(id).jpg")
                #expect(n["caption"] as? String == "row \(id)")
            }
        }

        let info = try Fixtures.runTool(["index", "info", "--index", index, "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        #expect(report["count"] as? Int == 1000 && report["dimension"] as? Int == 16)
        #expect(report["type"] as? String == "IndexHNSWFlat")
        #expect(report["metadata_rows"] as? Int == 1000)
        #expect((report["build"] as? [String: Any])?["factory"] as? String == "HNSW32")

        let recall = try Fixtures.runTool(["index", "recall", "--index", index, "--sample", "200", "--json"])
        #expect(recall.status == 0, "\(recall.stderr)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(recall.stdout.utf8)) as? [String: Any])
        #expect((r["recall"] as? Double ?? 0) >= 0.95)
        #expect(r["ground_truth"] as? String == "shards")
    }

    /// An IVF index written by Python faiss (tools/fixtures/make_faiss.py) searches like Python.
    @Test func searchesAnIndexWrittenByPythonFaiss() throws {
        let index = Fixtures.url("faiss/python_ivf16_ip.index").path
        let run = try Fixtures.runTool(
            ["index", "search", "--index", index, "--queries", Fixtures.url("faiss/queries.npy").path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("faiss/expected.json")))
                as? [String: Any])
        let ids = (expected["python_ivf16_ip"] as? [String: Any])?["ids"] as? [[Int]]
        #expect(parsed.map { ($0["neighbors"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int } } == ids)
        let info = try Fixtures.runTool(["index", "info", "--index", index])
        #expect(info.status == 0 && info.stdout.contains("nprobe 4") && info.stdout.contains("no build info"))
        let recall = try Fixtures.runTool([
            "index", "recall", "--index", index, "--sample", "100", "--nprobe", "16", "--json",
        ])
        let r = try #require(try JSONSerialization.jsonObject(with: Data(recall.stdout.utf8)) as? [String: Any])
        #expect(r["ground_truth"] as? String == "reconstructed")
        #expect(r["recall"] as? Double == 1)  // nprobe = nlist: exhaustive
    }

    @Test func badInputFailsNamingTheFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (paths, meta, _) = try Self.shards(in: dir)
        let out = dir.appendingPathComponent("x.index").path
        let narrow = dir.appendingPathComponent("narrow.npy")
        try NPY.write(Tensor(zeros: [3, 8]), to: narrow)
        let empty = dir.appendingPathComponent("empty.npy")
        try NPY.write(Tensor(zeros: [0, 16]), to: empty)
        let text = dir.appendingPathComponent("notes.txt")
        try Data("not numpy".utf8).write(to: text)
        for (shard, words) in [(narrow.path, "dimension 8"), (empty.path, "empty"), (text.path, "not an .npy")] {
            let run = try Fixtures.runTool([
                "index", "build", "--embeddings", paths[0], "--embeddings", shard, "--out", out,
            ])
            #expect(run.status != 0)
            #expect(run.stderr.contains(shard) && run.stderr.contains(words), "\(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        let short = try Fixtures.runTool(
            ["index", "build", "--embeddings", paths[0], "--metadata", meta, "--out", out])
        #expect(short.status != 0 && short.stderr.contains(meta) && short.stderr.contains("1000"), "\(short.stderr)")

        let index = Fixtures.url("faiss/python_flat_l2.index").path
        let wrongQueries = try Fixtures.runTool(["index", "search", "--index", index, "--queries", narrow.path])
        #expect(wrongQueries.status != 0 && wrongQueries.stderr.contains(narrow.path), "\(wrongQueries.stderr)")
        let corrupt = dir.appendingPathComponent("corrupt.index")
        try Data(try Data(contentsOf: URL(fileURLWithPath: index)).prefix(1000)).write(to: corrupt)
        for command in ["search", "info", "recall"] {
            var args = ["index", command, "--index", corrupt.path]
            if command == "search" { args += ["--queries", Fixtures.url("faiss/queries.npy").path] }
            let run = try Fixtures.runTool(args)
            #expect(run.status != 0 && run.stderr.contains(corrupt.path), "\(command): \(run.stderr)")
        }
    }
}
