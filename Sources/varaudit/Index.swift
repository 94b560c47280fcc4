import ArgumentParser
import Checkpoints
import Foundation
import Memorization
import Parquet
import Tensors

extension IndexMetric: ExpressibleByArgument {}

extension VarAudit {
    /// `varaudit index`: the memorization index over training embeddings (faiss).
    struct IndexCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "index",
            abstract: "Build and query the nearest-neighbour index over training image embeddings (faiss).",
            discussion: """
                Indices are ordinary faiss files: Python faiss (e.g. autofaiss's image.index) reads ours and \
                we read its. Build info and the optional per-row metadata live next to the index in \
                INDEX.meta.sqlite.
                """,
            subcommands: [Build.self, Search.self, Info.self, Recall.self]
        )
    }
}

extension VarAudit.IndexCommand {
    /// `varaudit index build`.
    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Index .npy embedding shards (float16/float32 [N, D]) in row order.",
            discussion: """
                Without --factory the index is chosen by size as autofaiss does: Flat under 1,000 vectors, \
                HNSW32 under 50,000, IVF{4·√n as a power of 2},Flat while the vectors fit in half the \
                available memory, otherwise OPQ + IVF + PQ codes. IVF and PQ train on a random sample; \
                nprobe (or efSearch) is tuned to the smallest power of two that gives recall@10 ≥ 0.97 on \
                256 stored rows against exact search, and saved in the index. Choice and progress go to \
                stderr. Metadata (caption, url, ...) is stored per row in OUT.meta.sqlite: from a JSONL file, \
                from parquet files, or, by default, from a clip-retrieval folder's metadata/metadata_{i}.parquet \
                (each file must hold as many rows as its img_emb_{i}.npy).
                """
        )

        @Option(help: "An .npy shard, or a clip-retrieval folder (img_emb/img_emb_{i}.npy); repeat, in row order.")
        var embeddings: [String] = []

        @Option(
            help: """
                Per-row metadata (path, url, caption, ...): a JSONL file with one JSON object per row, or parquet \
                files or folders of them (repeat, in row order). Default: the clip-retrieval folders' \
                metadata/metadata_{i}.parquet.
                """)
        var metadata: [String] = []

        @Option(help: "Parquet metadata: the columns to keep, comma-separated (default: every scalar column).")
        var metadataColumns: String?

        @Option(help: "faiss index factory string (e.g. Flat, HNSW32, IVF1024,Flat, IVF4096,PQ64); default: by size.")
        var factory: String?

        @Option(help: "Metric: ip (inner product; cosine with --normalize) or l2 (squared distance).")
        var metric: IndexMetric = .innerProduct

        @Flag(help: "L2-normalize every vector before indexing.")
        var normalize = false

        @Option(help: "Seed of the training and tuning samples.")
        var seed: UInt64 = 0

        @Option(help: "Where to write the index.")
        var out: String

        func validate() throws {
            if embeddings.isEmpty { throw ValidationError("give at least one --embeddings PATH") }
            if let columns = keptColumns, columns.isEmpty {
                throw ValidationError("--metadata-columns needs at least one column name")
            }
        }

        /// `--metadata-columns` as names.
        var keptColumns: [String]? {
            metadataColumns.map { list in
                list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
        }

        /// Imports the metadata into `store` (JSONL, parquet, or a clip-retrieval folder's parquet files);
        /// returns what to record in the build info.
        func importMetadata(into store: IndexMetadataStore, shards: EmbeddingShards) throws -> (
            file: String?, files: [String]?, columns: [String]?
        ) {
            var parquet: [URL] = []
            var jsonl: [URL] = []
            var paired: [EmbeddingShard]?
            if metadata.isEmpty {
                var found: [URL] = []
                var without: [String] = []
                for source in embeddings {
                    if let files = try EmbeddingShards.clipRetrievalMetadata(for: URL(fileURLWithPath: source)) {
                        found += files
                    } else {
                        without.append(source)
                    }
                }
                if !found.isEmpty && without.isEmpty {
                    parquet = found
                    paired = shards.shards
                } else if !found.isEmpty {
                    progress(
                        "note: no metadata imported: \(without.joined(separator: ", ")) has no metadata_{i}.parquet")
                }
            } else {
                for path in metadata {
                    let url = URL(fileURLWithPath: path)
                    var isDirectory: ObjCBool = false
                    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                        let nested = url.appendingPathComponent("metadata")
                        let hasOwn =
                            (try? FileManager.default.contentsOfDirectory(atPath: path))?
                            .contains { $0.hasSuffix(".parquet") } ?? false
                        let folder = !hasOwn && FileManager.default.fileExists(atPath: nested.path) ? nested : url
                        parquet += try IndexMetadataStore.parquetFiles(in: folder)
                    } else if path.lowercased().hasSuffix(".parquet") || startsWithParquetMagic(url) {
                        parquet.append(url)
                    } else {
                        jsonl.append(url)
                    }
                }
                if !jsonl.isEmpty && (jsonl.count > 1 || !parquet.isEmpty) {
                    throw ValidationError("give one JSONL file, or parquet files and folders, as --metadata")
                }
                if parquet.count == shards.shards.count { paired = shards.shards }
            }
            if keptColumns != nil && parquet.isEmpty {
                throw ValidationError("--metadata-columns applies to parquet metadata only")
            }
            if let file = jsonl.first {
                try store.importJSONL(file, expectedRows: shards.count)
                progress("metadata: \(shards.count) rows from \(file.path)")
                return (file.path, nil, nil)
            }
            guard let first = parquet.first else { return (nil, nil, nil) }
            let start = DispatchTime.now().uptimeNanoseconds
            let imported = try store.importParquet(
                files: parquet, expectedRows: shards.count, columns: keptColumns, pairedWith: paired)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var line = String(
                format: "metadata: %d rows from %d parquet file(s) in %.1f s; columns %@", imported.rows, parquet.count,
                seconds, imported.columns.joined(separator: ", "))
            if !imported.skippedColumns.isEmpty {
                line += "; nested columns skipped: " + imported.skippedColumns.joined(separator: ", ")
            }
            progress(line)
            return (first.path, parquet.map(\.path), imported.columns)
        }

        func run() throws {
            let shards = try EmbeddingShards(sources: embeddings.map { URL(fileURLWithPath: $0) })
            progress(
                "embeddings: \(shards.shards.count) shard(s), \(shards.count) × \(shards.dimension) "
                    + "(\(Set(shards.shards.map(\.dtype)).sorted().joined(separator: ", ")))")
            let target = URL(fileURLWithPath: out)
            let sidecar = IndexMetadataStore.sidecarURL(forIndex: target)
            let tempIndex = AtomicFile.temporaryURL(for: target)
            let tempSidecar = AtomicFile.temporaryURL(for: sidecar)
            defer {
                try? FileManager.default.removeItem(at: tempIndex)
                try? FileManager.default.removeItem(at: tempSidecar)
            }
            // Metadata first: a row-count mismatch should fail before a long build.
            let store = try IndexMetadataStore(url: tempSidecar, create: true)
            let imported = try importMetadata(into: store, shards: shards)
            var configuration = IndexBuildConfiguration()
            configuration.factory = factory
            configuration.metric = metric
            configuration.normalize = normalize
            configuration.seed = seed
            let (index, built) = try buildIndex(source: shards, configuration: configuration, progress: progress)
            var info = built
            info.metadataFile = imported.file
            info.metadataFiles = imported.files
            info.metadataColumns = imported.columns
            try store.setBuildInfo(info)
            try index.write(to: tempIndex)
            try AtomicFile.commit(tempIndex, to: target)
            try AtomicFile.commit(tempSidecar, to: sidecar)
            var line =
                "wrote \(out): \(info.factory), \(info.count) × \(info.dimension), metric \(info.metric.rawValue)"
            if let p = info.searchParameter, let v = info.searchParameterValue, let r = info.tunedRecall {
                line += String(format: ", %@ %d (recall@10 %.4f on stored rows)", p, v, r)
            }
            print(line + String(format: " in %.1f s", info.buildSeconds))
        }
    }

    /// `varaudit index search`.
    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find the k nearest indexed rows of each query vector.",
            discussion: """
                Scores are faiss's: inner product (cosine when vectors and queries are normalized) or squared \
                L2 distance. With --json: [{"query": i, "neighbors": [{"id", "score", ...metadata}]}], the \
                row's metadata fields merged into each neighbour. With --text (repeatable) or --texts FILE and \
                --clip DIR, the queries are the texts' L2-normalized CLIP text embeddings (JSON entries then \
                carry "text"); the CLIP model must project to the index's dimension.
                """
        )

        @OptionGroup var indexOption: IndexOption

        @Option(help: ".npy file of query vectors [n, D] (or one vector [D]).")
        var queries: String?

        @OptionGroup var text: TextOptions

        @Option(help: "Neighbours per query.")
        var k = 10

        @Option(help: "IVF lists probed per query (default: the value saved in the index).")
        var nprobe: Int?

        @Option(name: .customLong("ef-search"), help: "HNSW search breadth (default: the value saved in the index).")
        var efSearch: Int?

        @Flag(help: "L2-normalize the queries first (use when the index was built with --normalize).")
        var normalize = false

        @Flag(help: "Memory-map IVF inverted lists instead of loading them (large indices).")
        var mmap = false

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            if k < 1 { throw ValidationError("--k must be at least 1") }
            if let nprobe, nprobe < 1 { throw ValidationError("--nprobe must be at least 1") }
            if let efSearch, efSearch < 1 { throw ValidationError("--ef-search must be at least 1") }
            if (queries == nil) == text.isEmpty {
                throw ValidationError("give exactly one of --queries FILE.npy and --text/--texts (with --clip DIR)")
            }
            try text.validate(required: false)
        }

        func run() throws {
            let url = URL(fileURLWithPath: try indexOption.required())
            let faiss = try FaissIndex(contentsOf: url, memoryMap: mmap)
            let store = try IndexMetadataStore.open(forIndex: url)
            if let nprobe { try applyParameter(faiss, "nprobe", nprobe) }
            if let efSearch { try applyParameter(faiss, "efSearch", efSearch) }
            var x: Tensor
            var texts: [String]? = nil
            if let queries {
                x = try readQueries(queries, dimension: faiss.dimension)
            } else {
                let embedded = try text.embed(normalize: true)
                try embedded.requireDimension(faiss.dimension, for: "the index \(url.path)")
                (x, texts) = (embedded.rows, embedded.texts)
            }
            if texts != nil {
                // Text queries are normalized already.
            } else if normalize {
                l2NormalizeRows(&x)
            } else if try store?.buildInfo()?.normalized == true {
                progress("note: the index holds normalized vectors; pass --normalize unless the queries already are")
            }
            let found = try faiss.search(x, k: k)
            let metadata = try store?.metadata(for: found.flatMap { $0.map(\.id) }) ?? [:]
            if json {
                let out: [[String: Any]] = found.enumerated().map { q, hits in
                    var entry: [String: Any] = [
                        "query": q,
                        "neighbors": hits.map { hit -> [String: Any] in
                            var entry = metadata[hit.id].map(metadataObject) ?? [:]
                            entry["id"] = hit.id
                            entry["score"] = Double(hit.score)
                            return entry
                        },
                    ]
                    if let texts { entry["text"] = texts[q] }
                    return entry
                }
                try printJSON(out)
            } else {
                for (q, hits) in found.enumerated() {
                    print("query \(q)\(texts.map { " (\($0[q].debugDescription))" } ?? ""):")
                    for (rank, hit) in hits.enumerated() {
                        var line = String(format: "  %2d. id %d  score %.6f", rank + 1, hit.id, hit.score)
                        if let meta = metadata[hit.id] { line += "  " + meta }
                        print(line)
                    }
                }
            }
        }
    }

    /// `varaudit index info`.
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe an index and how it was built.")

        @OptionGroup var indexOption: IndexOption

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let url = URL(fileURLWithPath: try indexOption.required())
            let faiss = try FaissIndex(contentsOf: url, memoryMap: true)
            let store = try IndexMetadataStore.open(forIndex: url)
            let build = try store?.buildInfo()
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            var report: [String: Any] = [
                "file": url.path, "type": faiss.typeName, "dimension": faiss.dimension, "count": faiss.count,
                "metric": faiss.metric.rawValue, "trained": faiss.isTrained, "bytes": size,
            ]
            if let v = faiss.nlist { report["nlist"] = v }
            if let v = faiss.nprobe { report["nprobe"] = v }
            if let v = faiss.efSearch { report["ef_search"] = v }
            if let store { report["metadata_rows"] = try store.metadataCount() }
            if let build {
                var b: [String: Any] = [
                    "factory": build.factory, "reason": build.factoryReason, "normalized": build.normalized,
                    "training_rows": build.trainingRows, "build_seconds": build.buildSeconds,
                    "faiss_version": build.faissVersion,
                    "shards": build.shards.map { ["path": $0.path, "rows": $0.rows, "dtype": $0.dtype] },
                ]
                if let v = build.tunedRecall { b["tuned_recall_at_10"] = v }
                if let v = build.metadataFile { b["metadata_file"] = v }
                if let v = build.metadataFiles { b["metadata_files"] = v }
                if let v = build.metadataColumns { b["metadata_columns"] = v }
                report["build"] = b
            }
            if json {
                try printJSON(report)
                return
            }
            print(
                "\(url.path): \(faiss.typeName), \(faiss.count) × \(faiss.dimension), metric \(faiss.metric.rawValue), \(size) bytes"
            )
            if let nlist = faiss.nlist { print("  IVF: nlist \(nlist), nprobe \(faiss.nprobe ?? 0)") }
            if let ef = faiss.efSearch { print("  HNSW: efSearch \(ef)") }
            if let build {
                print("  built with \(build.factory) (\(build.factoryReason))\(build.normalized ? ", normalized" : "")")
                print(
                    "  \(build.shards.count) shard(s); trained on \(build.trainingRows) rows; \(String(format: "%.1f", build.buildSeconds)) s; faiss \(build.faissVersion)"
                )
                if let r = build.tunedRecall, let p = build.searchParameter, let v = build.searchParameterValue {
                    print(String(format: "  tuned %@ = %d: recall@10 %.4f on stored rows", p, v, r))
                }
            } else {
                print("  no build info (no \(IndexMetadataStore.sidecarURL(forIndex: url).lastPathComponent))")
            }
            if let store { print("  metadata rows: \(try store.metadataCount())") }
        }
    }

    /// `varaudit index recall`.
    struct Recall: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure recall@k against exact search over the stored vectors.",
            discussion: """
                Queries are --sample stored rows chosen at random. The exact vectors are re-read from the \
                embedding shards recorded at build time when they are all still there (ground truth \
                "shards"), otherwise decoded from the index with reconstruct_n ("reconstructed"; lossy for \
                PQ codes, which then measures only the search, not the compression).
                """
        )

        @OptionGroup var indexOption: IndexOption

        @Option(help: "Stored rows used as queries.")
        var sample = 500

        @Option(help: "k of recall@k.")
        var k = 10

        @Option(help: "IVF lists probed per query (default: the value saved in the index).")
        var nprobe: Int?

        @Option(name: .customLong("ef-search"), help: "HNSW search breadth (default: the value saved in the index).")
        var efSearch: Int?

        @Option(help: "Seed of the query sample.")
        var seed: UInt64 = 1

        @Flag(help: "Print JSON: {\"recall\", \"k\", \"queries\", \"ms_per_query\", \"ground_truth\"}.")
        var json = false

        func validate() throws {
            if k < 1 { throw ValidationError("--k must be at least 1") }
            if sample < 1 { throw ValidationError("--sample must be at least 1") }
        }

        func run() throws {
            let url = URL(fileURLWithPath: try indexOption.required())
            let faiss = try FaissIndex(contentsOf: url)
            if let nprobe { try applyParameter(faiss, "nprobe", nprobe) }
            if let efSearch { try applyParameter(faiss, "efSearch", efSearch) }
            let build = try IndexMetadataStore.open(forIndex: url)?.buildInfo()
            let source: any VectorSource
            let groundTruth: String
            var normalize = false
            if let build, !build.shards.isEmpty,
                build.shards.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) })
            {
                let shards = try EmbeddingShards(sources: build.shards.map { URL(fileURLWithPath: $0.path) })
                guard shards.shards.map(\.rows) == build.shards.map(\.rows) else {
                    throw ValidationError("the embedding shards changed since the index was built")
                }
                source = shards
                groundTruth = "shards"
                normalize = build.normalized
            } else {
                source = ReconstructedVectors(faiss)
                groundTruth = "reconstructed"
            }
            progress(
                "recall: \(min(sample, faiss.count)) queries, exact search over \(faiss.count) vectors (\(groundTruth))"
            )
            let report = try measureRecall(
                index: faiss, source: source, groundTruth: groundTruth, sample: sample, k: k, normalize: normalize,
                seed: seed)
            if json {
                var out: [String: Any] = [
                    "recall": report.recall, "k": report.k, "queries": report.queries,
                    "ms_per_query": report.msPerQuery, "ground_truth": report.groundTruth,
                ]
                if let v = faiss.nprobe { out["nprobe"] = v }
                if let v = faiss.efSearch { out["ef_search"] = v }
                try printJSON(out)
            } else {
                var setting = ""
                if let v = faiss.nprobe { setting = " at nprobe \(v)" }
                if let v = faiss.efSearch { setting = " at efSearch \(v)" }
                print(
                    String(
                        format: "recall@%d %.4f%@ over %d stored rows (ground truth: %@), %.3f ms/query batched",
                        report.k, report.recall, setting, report.queries, report.groundTruth, report.msPerQuery))
            }
        }
    }
}

/// Whether the file at `url` starts with parquet's magic `PAR1`.
private func startsWithParquetMagic(_ url: URL) -> Bool {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
    defer { try? handle.close() }
    return (try? handle.read(upToCount: 4)) == Data("PAR1".utf8)
}

/// Sets nprobe/efSearch, naming the option when the index has no such parameter.
private func applyParameter(_ index: FaissIndex, _ name: String, _ value: Int) throws {
    do {
        try index.setParameter(name, Double(value))
        if name == "nprobe" { try? index.setParameter("quantizer_efSearch", Double(max(64, 2 * value))) }
    } catch {
        throw ValidationError(
            "--\(name == "nprobe" ? "nprobe" : "ef-search") does not apply to \(index.typeName): \(error)")
    }
}

/// Reads `[n, D]` (or `[D]`) query vectors, checking D; errors name the file.
private func readQueries(_ path: String, dimension: Int) throws -> Tensor {
    let x: Tensor
    do {
        x = try NPY.read(url: URL(fileURLWithPath: path))
    } catch {
        throw MemorizationError("\(error)")
    }
    if x.rank == 1, x.shape[0] == dimension { return try x.reshaped([1, dimension]) }
    guard x.rank == 2, x.shape[1] == dimension, x.shape[0] > 0 else {
        throw MemorizationError(file: path, "queries must be [n, \(dimension)] to match the index, got \(x.shape)")
    }
    return x
}

extension VarAudit.Bench {
    /// `varaudit bench --component index --vectors N --dim D`: `benchmarkIndex` (Memorization) with the
    /// automatic factory, k = 10, 500 fresh queries.
    func runIndexBenchmark() throws {
        if vectors < 1 || dim < 1 { throw ValidationError("--vectors and --dim must be positive") }
        let r = try benchmarkIndex(vectors: vectors, dim: dim, k: 10, queries: 500, seed: 0, progress: progress)
        if json {
            try printJSON([
                "component": "index", "vectors": r.vectors, "dim": r.dimension, "k": r.k, "queries": r.queries,
                "factory": r.factory, "reason": r.factoryReason, "search_parameter": r.searchParameter ?? "",
                "search_parameter_value": r.searchParameterValue ?? 0, "build_seconds": r.buildSeconds,
                "index_bytes": r.indexBytes, "peak_rss_mb": Double(r.peakResidentBytes) / 1_048_576,
                "ms_per_query_median": r.msPerQueryMedian, "ms_per_query_p95": r.msPerQueryP95,
                "ms_per_query_batched": r.msPerQueryBatched, "recall_at_10": r.recall, "threads": r.threads,
            ])
        } else {
            var setting = ""
            if let p = r.searchParameter, let v = r.searchParameterValue { setting = ", \(p) \(v)" }
            print("index \(r.vectors) × \(r.dimension): \(r.factory)\(setting)")
            print(
                String(
                    format: "  build %.1f s, index %.1f MB, peak RSS %.0f MB", r.buildSeconds,
                    Double(r.indexBytes) / 1_048_576, Double(r.peakResidentBytes) / 1_048_576))
            print(
                String(
                    format: "  query (k = 10): %.3f ms median, %.3f ms p95 single; %.3f ms batched", r.msPerQueryMedian,
                    r.msPerQueryP95, r.msPerQueryBatched))
            print(String(format: "  recall@10 %.4f on %d fresh queries (%d threads)", r.recall, r.queries, r.threads))
        }
    }
}

extension VarAudit.Bench {
    /// `varaudit bench --component parquet [--rows N] [--file F]`: reads a parquet file (by default one it
    /// writes to a temporary folder: caption, url, width, height and similarity, snappy, row groups of 131,072
    /// rows) and imports it as index metadata into a temporary SQLite sidecar; prints rows per second of both.
    func runParquetBenchmark() throws {
        if rows < 1 { throw ValidationError("--rows must be positive") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("varaudit-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url: URL
        if let file {
            url = URL(fileURLWithPath: file)
        } else {
            url = dir.appendingPathComponent("metadata_0.parquet")
            progress("writing \(rows) rows to \(url.path)")
            try writeBenchmarkMetadata(url, rows: rows)
        }
        let parquet = try ParquetFile(url: url)
        let total = parquet.rowCount
        var readTimes: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            var seen = 0
            try parquet.forEachRowGroup { n, _ in seen += n }
            readTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            guard seen == total else { throw ValidationError("read \(seen) of \(total) rows") }
        }
        var importTimes: [Double] = []
        for run in 0..<runs {
            let store = try IndexMetadataStore(url: dir.appendingPathComponent("meta-\(run).sqlite"), create: true)
            let start = DispatchTime.now().uptimeNanoseconds
            try store.importParquet(files: [url], expectedRows: total)
            importTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let read = readTimes.min() ?? 0
        let imported = importTimes.min() ?? 0
        let bytes = parquet.fileSize
        if json {
            try printJSON([
                "component": "parquet", "rows": total, "file": file ?? "generated", "file_bytes": bytes,
                "row_groups": parquet.rowGroups.count, "columns": parquet.schema.map(\.name), "runs": runs,
                "read_seconds": read, "read_rows_per_second": read > 0 ? Double(total) / read : 0,
                "import_seconds": imported, "import_rows_per_second": imported > 0 ? Double(total) / imported : 0,
                "peak_rss_mb": peakResidentMegabytes(),
            ])
        } else {
            print(
                "parquet \(url.lastPathComponent): \(total) rows, \(parquet.schema.count) columns, "
                    + "\(parquet.rowGroups.count) row group(s), \(bytes) bytes")
            print(
                String(format: "  read:   %.3f s, %.0f rows/s (min of %d)", read, Double(total) / max(read, 1e-9), runs)
            )
            print(
                String(
                    format: "  import: %.3f s, %.0f rows/s into SQLite (min of %d); peak RSS %.0f MB", imported,
                    Double(total) / max(imported, 1e-9), runs, peakResidentMegabytes()))
        }
    }
}

/// clip-retrieval-like metadata: a caption (some null), a url, width, height and similarity; snappy.
private func writeBenchmarkMetadata(_ url: URL, rows: Int) throws {
    let words = [
        "a", "photo", "of", "the", "cat", "dog", "sunset", "over", "mountains", "painting", "café", "portrait",
        "in", "style", "vintage", "poster", "blue", "red", "東京", "street", "at", "night", "with", "people",
    ]
    var state: UInt64 = 42
    func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: state >> 33)
    }
    let writer = try ParquetWriter(
        url: url,
        columns: [
            .init("caption", .string), .init("url", .string), .init("width", .int64), .init("height", .int64),
            .init("similarity", .float),
        ])
    let groupRows = 131_072
    var first = 0
    while first < rows {
        let n = min(groupRows, rows - first)
        var captions: [String?] = []
        var urls: [String?] = []
        var widths: [Int64?] = []
        var heights: [Int64?] = []
        var similarities: [Float?] = []
        for i in first..<(first + n) {
            if next() % 50 == 0 {
                captions.append(nil)
            } else {
                captions.append((0..<(6 + next() % 10)).map { _ in words[next() % words.count] }.joined(separator: " "))
            }
            urls.append("https://images.example.com/\(next() % 100_000)/\(i).jpg")
            widths.append(Int64(256 + next() % 1024))
            heights.append(Int64(256 + next() % 1024))
            similarities.append(0.25 + Float(next() % 10_000) / 50_000)
        }
        try writer.write(rowGroup: [
            .string(captions), .string(urls), .int64(widths), .int64(heights), .float(similarities),
        ])
        first += n
    }
    try writer.close()
}
