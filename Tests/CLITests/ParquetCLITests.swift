import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// `varaudit index build` with clip-retrieval's parquet metadata, and `varaudit inspect FILE.parquet`.
struct ParquetCLITests {
    /// The fixture's 40 metadata rows as pyarrow read them: column → values (strings as text, numbers as
    /// their text).
    static func expectedMetadata() throws -> [String: [Any]] {
        let data = try Data(contentsOf: Fixtures.url("parquet/clip_metadata.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let columns = try #require(root["columns"] as? [String: [String: Any]])
        return columns.compactMapValues { $0["values"] as? [Any] }
    }

    /// A clip-retrieval folder: `img_emb/img_emb_{i}.npy` of `rows[i]` rows (16-d unit vectors from the faiss
    /// fixture) and `metadata/metadata_{i}.parquet` (the 40-row fixture) for each shard.
    static func clipFolder(in dir: URL, rows: [Int]) throws -> (URL, [Float]) {
        let base = try NPY.read(url: Fixtures.url("faiss/base.npy")).scalars
        let root = dir.appendingPathComponent("laion-subset")
        let emb = root.appendingPathComponent("img_emb")
        let meta = root.appendingPathComponent("metadata")
        try FileManager.default.createDirectory(at: emb, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: meta, withIntermediateDirectories: true)
        var first = 0
        for (i, n) in rows.enumerated() {
            let values = Array(base[(first * 16)..<((first + n) * 16)])
            try NPY.write(
                try Tensor(shape: [n, 16], values: values), to: emb.appendingPathComponent("img_emb_\(i).npy"))
            try FileManager.default.copyItem(
                at: Fixtures.url("parquet/clip_metadata.parquet"),
                to: meta.appendingPathComponent("metadata_\(i).parquet"))
            first += n
        }
        return (root, Array(base[..<(first * 16)]))
    }

    /// Searches `index` for stored rows `ids` (each its own nearest neighbour) and returns the neighbours.
    static func search(_ index: String, rows ids: [Int], of vectors: [Float], in dir: URL) throws -> [[String: Any]] {
        let queries = dir.appendingPathComponent("queries.npy")
        let values = ids.flatMap { vectors[($0 * 16)..<(($0 + 1) * 16)] }
        try NPY.write(try Tensor(shape: [ids.count, 16], values: values), to: queries)
        let run = try Fixtures.runTool([
            "index", "search", "--index", index, "--queries", queries.path, "--k", "2", "--json",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
        return try parsed.map { try #require(($0["neighbors"] as? [[String: Any]])?.first) }
    }

    @Test func clipRetrievalFolderBringsCaptionsAndURLs() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (root, vectors) = try Self.clipFolder(in: dir, rows: [40])
        let index = dir.appendingPathComponent("train.index").path
        let build = try Fixtures.runTool([
            "index", "build", "--embeddings", root.path, "--factory", "Flat", "--out", index,
        ])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("metadata: 40 rows from 1 parquet file(s)"), "\(build.stderr)")
        let expected = try Self.expectedMetadata()
        let neighbours = try Self.search(index, rows: [0, 3, 17, 39], of: vectors, in: dir)
        for (n, row) in zip(neighbours, [0, 3, 17, 39]) {
            #expect(n["id"] as? Int == row)
            #expect(n["caption"] as? String == expected["caption"]?[row] as? String)
            #expect(n["url"] as? String == expected["url"]?[row] as? String)
            #expect(n["key"] as? String == String(format: "%09d", row))
            #expect((n["width"] as? Int).map(String.init) == expected["width"]?[row] as? String)
            #expect(n["NSFW"] as? String == expected["NSFW"]?[row] as? String)
            #expect(n["similarity"] is Double)
            #expect(n.keys.contains("LICENSE") && n.keys.contains("exif"))  // null where pyarrow has None
        }
        let caption3 = try #require(neighbours[1]["caption"] as? String)
        #expect(caption3 == "🐱 emoji cat 🎉 (3)")

        let info = try Fixtures.runTool(["index", "info", "--index", index, "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        #expect(report["metadata_rows"] as? Int == 40)
        let built = try #require(report["build"] as? [String: Any])
        #expect((built["metadata_files"] as? [String])?.first?.hasSuffix("metadata/metadata_0.parquet") == true)
        #expect((built["metadata_columns"] as? [String])?.contains("caption") == true)
    }

    @Test func metadataColumnsAndExplicitFiles() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (root, vectors) = try Self.clipFolder(in: dir, rows: [40, 40])
        let index = dir.appendingPathComponent("cols.index").path
        let build = try Fixtures.runTool([
            "index", "build", "--embeddings", root.path, "--metadata-columns", "caption, url", "--factory", "Flat",
            "--out", index,
        ])
        #expect(build.status == 0, "\(build.stderr)")
        let expected = try Self.expectedMetadata()
        for (n, row) in zip(try Self.search(index, rows: [5, 45], of: vectors, in: dir), [5, 45]) {
            #expect(n["id"] as? Int == row)
            #expect(Set(n.keys) == ["id", "score", "caption", "url"])
            #expect(n["caption"] as? String == expected["caption"]?[row % 40] as? String)
        }

        // --metadata with a file per shard, and with the folder, for .npy files given one by one.
        let shards = ["img_emb_0.npy", "img_emb_1.npy"].flatMap {
            ["--embeddings", root.appendingPathComponent("img_emb/\($0)").path]
        }
        let metadataFolder = root.appendingPathComponent("metadata").path
        for metadata in [
            [
                "--metadata", metadataFolder + "/metadata_0.parquet", "--metadata",
                metadataFolder + "/metadata_1.parquet",
            ],
            ["--metadata", metadataFolder], ["--metadata", root.path],
        ] {
            let out = dir.appendingPathComponent("explicit.index").path
            let run = try Fixtures.runTool(
                ["index", "build"] + shards + metadata + [
                    "--metadata-columns", "url", "--factory", "Flat", "--out", out,
                ])
            #expect(run.status == 0, "\(metadata): \(run.stderr)")
            let n = try Self.search(out, rows: [79], of: vectors, in: dir)
            #expect(n.first?["url"] as? String == expected["url"]?[39] as? String && n.first?["caption"] == nil)
        }

        let unknown = try Fixtures.runTool([
            "index", "build", "--embeddings", root.path, "--metadata-columns", "caption,nope", "--out", index + ".2",
        ])
        #expect(
            unknown.status != 0 && unknown.stderr.contains("metadata_0.parquet") && unknown.stderr.contains("'nope'"))
        #expect(!FileManager.default.fileExists(atPath: index + ".2"))
        let jsonlColumns = try Fixtures.runTool([
            "index", "build", "--embeddings", root.path, "--metadata", Fixtures.url("faiss/expected.json").path,
            "--metadata-columns", "url", "--out", index + ".3",
        ])
        #expect(jsonlColumns.status != 0 && jsonlColumns.stderr.contains("parquet"), "\(jsonlColumns.stderr)")
    }

    @Test func rowCountMismatchNamesBothFiles() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (root, _) = try Self.clipFolder(in: dir, rows: [40, 39])
        let out = dir.appendingPathComponent("x.index").path
        let run = try Fixtures.runTool(["index", "build", "--embeddings", root.path, "--out", out])
        #expect(run.status != 0)
        let shard = root.appendingPathComponent("img_emb/img_emb_1.npy").path
        let metadata = root.appendingPathComponent("metadata/metadata_1.parquet").path
        #expect(run.stderr.contains(shard) && run.stderr.contains(metadata), "\(run.stderr)")
        #expect(run.stderr.contains("40") && run.stderr.contains("39"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))

        // A metadata file too many.
        try FileManager.default.copyItem(
            at: Fixtures.url("parquet/clip_metadata.parquet"),
            to: root.appendingPathComponent("metadata/metadata_2.parquet"))
        let extra = try Fixtures.runTool(["index", "build", "--embeddings", root.path, "--out", out])
        #expect(extra.status != 0 && extra.stderr.contains("3 metadata_{i}.parquet"), "\(extra.stderr)")

        // A damaged metadata file is named.
        let bytes = try Data(contentsOf: Fixtures.url("parquet/clip_metadata.parquet"))
        let (good, _) = try Self.clipFolder(in: dir.appendingPathComponent("b"), rows: [40])
        let damaged = good.appendingPathComponent("metadata/metadata_0.parquet")
        try bytes.prefix(bytes.count - 30).write(to: damaged)
        let bad = try Fixtures.runTool(["index", "build", "--embeddings", good.path, "--out", out])
        #expect(bad.status != 0 && bad.stderr.contains(damaged.path), "\(bad.stderr)")
    }

    @Test func inspectDescribesAParquetFile() throws {
        let path = Fixtures.url("parquet/types_snappy_dict_v2.parquet").path
        let text = try Fixtures.runTool(["inspect", path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("parquet, 100 rows in 3 row group(s)"), "\(text.stdout)")
        #expect(text.stdout.contains("compression SNAPPY"))
        #expect(text.stdout.contains("ts_us") && text.stdout.contains("TIMESTAMP(MICROS, UTC)"))
        #expect(text.stdout.contains("nested columns (not read): tags, info"))

        let json = try Fixtures.runTool(["inspect", "--json", path, Fixtures.url("parquet/empty.parquet").path])
        #expect(json.status == 0, "\(json.stderr)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(reports.count == 2)
        let report = reports[0]
        #expect(report["rows"] as? Int == 100 && report["format"] as? String == "parquet")
        #expect(report["compression"] as? [String] == ["SNAPPY"])
        #expect(report["skipped_columns"] as? [String] == ["tags", "info"])
        let groups = try #require(report["row_groups"] as? [[String: Any]])
        #expect(groups.map { $0["rows"] as? Int } == [40, 40, 20])
        let chunk = try #require((groups[0]["columns"] as? [[String: Any]])?.first { $0["path"] as? String == "s" })
        #expect((chunk["encodings"] as? [String])?.contains("RLE_DICTIONARY") == true)
        #expect((chunk["compressed_bytes"] as? Int ?? 0) > 0)
        let columns = try #require(report["columns"] as? [[String: Any]])
        let u32 = try #require(columns.first { $0["name"] as? String == "u32" })
        #expect(u32["physical_type"] as? String == "INT32" && u32["logical_type"] as? String == "INT(32, unsigned)")
        #expect(reports[1]["rows"] as? Int == 0)

        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.parquet")
        try Data("not parquet at all".utf8).write(to: bad)
        let failed = try Fixtures.runTool(["inspect", bad.path])
        #expect(
            failed.status != 0 && failed.stderr.contains(bad.path) && failed.stderr.contains("PAR1"), "\(failed.stderr)"
        )
    }
}
