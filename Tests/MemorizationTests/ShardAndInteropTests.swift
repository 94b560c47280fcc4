import Checkpoints
import Foundation
import Memorization
import Tensors
import TestSupport
import Testing

/// Embedding shards, metadata, bad input, and indices written by Python faiss.
struct ShardAndInteropTests {
    @Test func clipRetrievalFolderIsReadInNumericOrder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("img_emb")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // 12 shards of 3 rows; row r holds the value r everywhere, so order is visible.
        for i in 0..<12 {
            let values = (0..<3).flatMap { r in [Float](repeating: Float(i * 3 + r), count: 4) }
            try NPY.write(
                try Tensor(shape: [3, 4], values: values), to: folder.appendingPathComponent("img_emb_\(i).npy"),
                dtype: .float16)
        }
        let shards = try EmbeddingShards(sources: [dir])
        #expect(
            shards.shards.map { URL(fileURLWithPath: $0.path).lastPathComponent }
                == (0..<12).map { "img_emb_\($0).npy" })
        let all = try shards.gather(Array(0..<36))
        #expect(all.scalars == (0..<36).flatMap { [Float](repeating: Float($0), count: 4) })
        // A gap is an error naming the missing shard.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("img_emb_5.npy"))
        #expect { _ = try EmbeddingShards(sources: [dir]) } throws: { "\($0)".contains("img_emb_5.npy") }
    }

    @Test func badInputNamesTheFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.npy")
        let b = dir.appendingPathComponent("b.npy")
        try NPY.write(Tensor(zeros: [4, 8]), to: a)
        try NPY.write(Tensor(zeros: [4, 6]), to: b)
        #expect { _ = try EmbeddingShards(sources: [a, b]) } throws: {
            "\($0)".contains(b.path) && "\($0)".contains("dimension 6")
        }
        let empty = dir.appendingPathComponent("empty.npy")
        try NPY.write(Tensor(zeros: [0, 8]), to: empty)
        #expect { _ = try EmbeddingShards(sources: [a, empty]) } throws: {
            "\($0)".contains(empty.path) && "\($0)".contains("empty")
        }
        let text = dir.appendingPathComponent("notes.npy")
        try Data("hello".utf8).write(to: text)
        #expect { _ = try EmbeddingShards(sources: [text]) } throws: {
            "\($0)".contains(text.path) && "\($0)".contains("not an .npy")
        }
        let truncated = dir.appendingPathComponent("truncated.npy")
        try Data(try Data(contentsOf: a).dropLast(10)).write(to: truncated)
        #expect { _ = try EmbeddingShards(sources: [truncated]) } throws: { "\($0)".contains(truncated.path) }
        let vector = dir.appendingPathComponent("vector.npy")
        try NPY.write(Tensor(zeros: [8]), to: vector)
        #expect { _ = try EmbeddingShards(sources: [vector]) } throws: {
            "\($0)".contains(vector.path) && "\($0)".contains("2-D")
        }
        let missing = dir.appendingPathComponent("missing.npy")
        #expect { _ = try EmbeddingShards(sources: [missing]) } throws: { "\($0)".contains(missing.path) }

        // A corrupt index file: faiss's reader throws, we name the file.
        let corrupt = dir.appendingPathComponent("corrupt.index")
        let good = try Data(contentsOf: Fixtures.url("faiss/python_ivf16_ip.index"))
        try Data(good.prefix(good.count / 2)).write(to: corrupt)
        #expect { _ = try FaissIndex(contentsOf: corrupt) } throws: { "\($0)".contains(corrupt.path) }
        try Data("not an index at all".utf8).write(to: corrupt)
        #expect { _ = try FaissIndex(contentsOf: corrupt) } throws: { "\($0)".contains(corrupt.path) }
        #expect { _ = try FaissIndex(contentsOf: missing) } throws: { "\($0)".contains(missing.path) }

        // Queries of the wrong width.
        let index = try FaissIndex(contentsOf: Fixtures.url("faiss/python_flat_l2.index"))
        #expect { _ = try index.search(Tensor(zeros: [2, 5]), k: 3) } throws: { "\($0)".contains("[n, 16]") }
    }

    @Test func metadataIsStoredNextToTheIndexAndLookedUpById() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jsonl = dir.appendingPathComponent("meta.jsonl")
        let lines = (0..<5).map {
            #"{"path": "img/\#($0).jpg", "caption": "a \"quoted\" caption \#($0)", "width": \#(100 + $0)}"#
        }
        try Data((lines.joined(separator: "\n") + "\n\n").utf8).write(to: jsonl)
        let store = try IndexMetadataStore(
            url: IndexMetadataStore.sidecarURL(forIndex: dir.appendingPathComponent("x.index")), create: true)
        try store.importJSONL(jsonl, expectedRows: 5)
        #expect(try store.metadataCount() == 5)
        let found = try store.metadata(for: [3, 0, 3])
        #expect(found.count == 2)
        #expect(metadataObject(found[3] ?? "")["path"] as? String == "img/3.jpg")
        #expect(metadataObject(found[0] ?? "")["width"] as? Int == 100)
        #expect(
            IndexMetadataStore.sidecarURL(forIndex: dir.appendingPathComponent("x.index")).lastPathComponent
                == "x.index.meta.sqlite")

        let other = try IndexMetadataStore(url: dir.appendingPathComponent("y.sqlite"), create: true)
        #expect { try other.importJSONL(jsonl, expectedRows: 6) } throws: {
            "\($0)".contains(jsonl.path) && "\($0)".contains("6")
        }
        let bad = dir.appendingPathComponent("bad.jsonl")
        try Data("{\"a\": 1}\n[1, 2]\n".utf8).write(to: bad)
        let third = try IndexMetadataStore(url: dir.appendingPathComponent("z.sqlite"), create: true)
        #expect { try third.importJSONL(bad, expectedRows: 2) } throws: {
            "\($0)".contains(bad.path) && "\($0)".contains("line 2")
        }
    }

    /// Indices written by Python faiss (`tools/fixtures/make_faiss.py`, faiss-cpu 1.15.1) load and search
    /// like Python: ids exactly (HNSW: ≥ 99 % of positions, its search order may differ across versions),
    /// scores within 1e-4.
    @Test(arguments: ["python_flat_l2", "python_ivf16_ip", "python_hnsw16_l2"])
    func pythonIndicesLoadAndAgree(name: String) throws {
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("faiss/expected.json")))
                as? [String: Any])
        let entry = try #require(expected[name] as? [String: Any])
        let ids = try #require(entry["ids"] as? [[Int]])
        let scores = try #require(entry["scores"] as? [[Double]])
        let index = try FaissIndex(contentsOf: Fixtures.url("faiss/\(name).index"))
        if let nprobe = entry["nprobe"] as? Int { #expect(index.nprobe == nprobe) }
        let queries = try NPY.read(url: Fixtures.url("faiss/queries.npy"))
        let found = try index.search(queries, k: 10)
        var agree = 0
        for q in ids.indices {
            for j in 0..<10 where found[q][j].id == ids[q][j] {
                agree += 1
                #expect(abs(Double(found[q][j].score) - scores[q][j]) <= 1e-4)
            }
        }
        let needed = name.contains("hnsw") ? Int(0.99 * Double(ids.count * 10)) : ids.count * 10
        #expect(agree >= needed, "\(agree) of \(ids.count * 10) positions agree")
    }

    @Test func pythonBinaryIndexLoadsAndAgrees() throws {
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("faiss/expected.json")))
                as? [String: Any])
        let entry = try #require(expected["python_binary64"] as? [String: Any])
        let index = try FaissBinaryIndex(contentsOf: Fixtures.url("faiss/python_binary64.index"))
        #expect(index.bits == 64 && index.count == 200)
        let queries = try NPY.read(url: Fixtures.url("faiss/binary_queries.npy")).scalars.map { UInt8($0) }
        let found = try index.search(queries, k: 3)
        #expect(found.map { $0.map(\.id) } == entry["ids"] as? [[Int]])
        #expect(found.map { $0.map(\.distance) } == entry["distances"] as? [[Int]])
    }
}
