import Foundation
import GRDB
import GRDBSQLite
import Parquet

/// What `buildIndex` did, kept next to the index so that `info`, `search` and `recall` can report it.
public struct IndexBuildInfo: Codable, Sendable, Equatable {
    /// The faiss factory string used.
    public var factory: String
    /// Why that factory (the automatic rule, or "given").
    public var factoryReason: String
    /// The index metric.
    public var metric: IndexMetric
    /// Whether vectors were L2-normalized before indexing (queries should be too).
    public var normalized: Bool
    /// Vector length.
    public var dimension: Int
    /// Number of indexed vectors.
    public var count: Int
    /// The embedding shards, in row order (empty for in-memory builds).
    public var shards: [EmbeddingShard]
    /// The JSONL metadata file imported, if any (for parquet metadata: the first file).
    public var metadataFile: String?
    /// The parquet metadata files imported, in row order, and the columns kept.
    public var metadataFiles: [String]?
    public var metadataColumns: [String]?
    /// Rows used to train (0 for Flat and HNSW).
    public var trainingRows: Int
    /// The tuned search parameter (`nprobe` or `efSearch`) and its value, if the index has one.
    public var searchParameter: String?
    public var searchParameterValue: Int?
    /// recall@10 of the tuning queries (stored rows) at that value, against exact search.
    public var tunedRecall: Double?
    /// Wall-clock seconds for reading, training, adding and tuning.
    public var buildSeconds: Double
    /// faiss version the index was built with.
    public var faissVersion: String
}

/// The SQLite file next to an index (`PATH.meta.sqlite`): the build info and, optionally, one JSON object of
/// metadata per row (`path`, `url`, `caption`, ...), looked up by global row id.
public final class IndexMetadataStore: Sendable {
    /// The database file.
    public let url: URL
    private let queue: DatabaseQueue

    /// `PATH.meta.sqlite` for the index at `PATH`.
    public static func sidecarURL(forIndex url: URL) -> URL {
        URL(fileURLWithPath: url.path + ".meta.sqlite")
    }

    /// Opens the sidecar of the index at `index`, or nil when there is none (e.g. an index made by Python).
    public static func open(forIndex index: URL) throws -> IndexMetadataStore? {
        let url = sidecarURL(forIndex: index)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try IndexMetadataStore(url: url, create: false)
    }

    /// Opens (or, with `create`, replaces with an empty one) the store at `url`.
    public init(url: URL, create: Bool) throws {
        self.url = url
        if create { try? FileManager.default.removeItem(at: url) }
        do {
            var configuration = Configuration()
            configuration.readonly = !create
            queue = try DatabaseQueue(path: url.path, configuration: configuration)
            if create {
                try queue.write { db in
                    try db.execute(
                        sql: """
                            CREATE TABLE index_info (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                            CREATE TABLE metadata (id INTEGER PRIMARY KEY NOT NULL, json TEXT NOT NULL);
                            """)
                }
            } else {
                _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM index_info") }
            }
        } catch let error as MemorizationError {
            throw error
        } catch {
            throw MemorizationError(file: url.path, "not an index metadata database: \(error)")
        }
    }

    /// Stores the build info.
    public func setBuildInfo(_ info: IndexBuildInfo) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let text = String(decoding: try encoder.encode(info), as: UTF8.self)
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO index_info(key, value) VALUES ('build', ?)", arguments: [text])
        }
    }

    /// The stored build info, if any.
    public func buildInfo() throws -> IndexBuildInfo? {
        let text = try queue.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM index_info WHERE key = 'build'")
        }
        guard let text else { return nil }
        do {
            // snake_case keys; sidecars written before 0.2 used camelCase.
            let snake = JSONDecoder()
            snake.keyDecodingStrategy = .convertFromSnakeCase
            let data = Data(text.utf8)
            return try (try? snake.decode(IndexBuildInfo.self, from: data))
                ?? JSONDecoder().decode(IndexBuildInfo.self, from: data)
        } catch {
            throw MemorizationError(file: url.path, "unreadable build info: \(error)")
        }
    }

    /// Number of metadata rows.
    public func metadataCount() throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metadata") ?? 0 }
    }

    /// Imports a JSONL file, one JSON object per line for rows `0..<expectedRows` (trailing blank lines are
    /// allowed, others are not). Errors name the file and line.
    public func importJSONL(_ file: URL, expectedRows: Int) throws {
        let data: Data
        do {
            data = try Data(contentsOf: file, options: .alwaysMapped)
        } catch {
            throw MemorizationError(file: file.path, "cannot read metadata: \(error.localizedDescription)")
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        while let last = lines.last, last.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { lines.removeLast() }
        guard lines.count == expectedRows else {
            throw MemorizationError(
                file: file.path, "has \(lines.count) metadata rows but the embeddings have \(expectedRows)")
        }
        try queue.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO metadata(id, json) VALUES (?, ?)")
            for (i, line) in lines.enumerated() {
                let object = try? JSONSerialization.jsonObject(with: Data(line))
                guard object is [String: Any] else {
                    throw MemorizationError(file: file.path, "line \(i + 1) is not a JSON object")
                }
                try statement.execute(arguments: [i, String(decoding: line, as: UTF8.self)])
            }
        }
    }

    /// The metadata JSON object text of each id that has one.
    public func metadata(for ids: [Int]) throws -> [Int: String] {
        guard !ids.isEmpty else { return [:] }
        return try queue.read { db in
            var out: [Int: String] = [:]
            let unique = Array(Set(ids))
            for start in stride(from: 0, to: unique.count, by: 500) {
                let chunk = Array(unique[start..<min(start + 500, unique.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchAll(
                    db, sql: "SELECT id, json FROM metadata WHERE id IN (\(marks))",
                    arguments: StatementArguments(chunk))
                for row in rows { out[row["id"]] = row["json"] }
            }
            return out
        }
    }
}

/// Decodes a metadata object's text into a dictionary (for merging into JSON output).
public func metadataObject(_ json: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
}

/// What `IndexMetadataStore.importParquet` stored.
public struct ParquetMetadataImport: Sendable, Equatable {
    /// Rows stored.
    public var rows: Int
    /// The columns kept, in the order first seen.
    public var columns: [String]
    /// Nested columns (lists, structs) left out, in the order first seen.
    public var skippedColumns: [String]
}

extension IndexMetadataStore {
    /// Imports parquet files (clip-retrieval / img2dataset metadata) as rows `0..<expectedRows` in file order:
    /// one JSON object per row of the columns `columns` (nil: every scalar column of each file), streamed one
    /// row group at a time. Every footer is read first: with `shards` (one per file, in order), each file must
    /// hold exactly its shard's rows; the total must be `expectedRows`. Errors name the files.
    @discardableResult
    public func importParquet(
        files: [URL], expectedRows: Int, columns: [String]? = nil, pairedWith shards: [EmbeddingShard]? = nil
    ) throws -> ParquetMetadataImport {
        guard let first = files.first else { throw MemorizationError("no parquet metadata files given") }
        var opened: [(file: ParquetFile, columns: [ParquetColumnSchema])] = []
        var summary = ParquetMetadataImport(rows: 0, columns: [], skippedColumns: [])
        do {
            for url in files {
                let file = try ParquetFile(url: url)
                let selected = try file.columns(named: columns)
                opened.append((file, selected))
                for c in selected.map(\.name) where !summary.columns.contains(c) { summary.columns.append(c) }
                for c in file.skippedColumns where !summary.skippedColumns.contains(c) && columns == nil {
                    summary.skippedColumns.append(c)
                }
            }
        } catch let error as ParquetError {
            throw MemorizationError(error.description)
        }
        if let shards {
            guard shards.count == files.count else {
                throw MemorizationError(
                    file: first.path, "\(files.count) metadata files for \(shards.count) embedding shards")
            }
            for (shard, entry) in zip(shards, opened) where entry.file.rowCount != shard.rows {
                throw MemorizationError(
                    file: entry.file.url.path,
                    "has \(entry.file.rowCount) metadata rows but its embedding shard \(shard.path) has \(shard.rows)")
            }
        }
        let total = opened.reduce(0) { $0 + $1.file.rowCount }
        guard total == expectedRows else {
            let what = files.count == 1 ? "has" : "and \(files.count - 1) more parquet files have"
            throw MemorizationError(
                file: first.path, "\(what) \(total) metadata rows but the embeddings have \(expectedRows)")
        }
        do {
            try queue.write { db in
                let statement = try db.makeStatement(sql: "INSERT INTO metadata(id, json) VALUES (?, ?)")
                var id = 0
                var text: [UInt8] = []
                text.reserveCapacity(4096)
                for (file, selected) in opened {
                    for g in file.rowGroups.indices {
                        let values = try file.readRowGroup(g, columns: selected)
                        let writer = ParquetJSONRowWriter(columns: values)
                        for row in 0..<file.rowGroups[g].rows {
                            text.removeAll(keepingCapacity: true)
                            writer.write(row: row, into: &text)
                            try insert(statement, id: id, json: text, db: db)
                            id += 1
                        }
                    }
                }
            }
        } catch let error as ParquetError {
            throw MemorizationError(error.description)
        }
        summary.rows = total
        return summary
    }

    /// The parquet files of a folder, in row order: by `i` when every name ends in `_{i}.parquet`
    /// (clip-retrieval's `metadata_{i}.parquet`), otherwise by name.
    public static func parquetFiles(in folder: URL) throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
                .filter { $0.hasSuffix(".parquet") && !$0.hasPrefix(".") }
        } catch {
            throw MemorizationError(file: folder.path, "cannot list the folder: \(error.localizedDescription)")
        }
        guard !names.isEmpty else { throw MemorizationError(file: folder.path, "folder holds no .parquet files") }
        let numbers = names.map { name -> Int? in
            let stem = name.dropLast(".parquet".count)
            guard let underscore = stem.lastIndex(of: "_") else { return nil }
            return Int(stem[stem.index(after: underscore)...])
        }
        let sorted: [String]
        if numbers.allSatisfy({ $0 != nil }) {
            sorted = zip(names, numbers).sorted { ($0.1 ?? 0, $0.0) < ($1.1 ?? 0, $1.0) }.map(\.0)
        } else {
            sorted = names.sorted()
        }
        return sorted.map { folder.appendingPathComponent($0) }
    }
}

/// Inserts one metadata row through SQLite's own binding calls: building `StatementArguments` for every row
/// took a third of the import's time.
private func insert(_ statement: Statement, id: Int, json: [UInt8], db: Database) throws {
    guard json.count < Int(Int32.max) else { throw MemorizationError("metadata row \(id) is over 2 GB of JSON") }
    let raw = statement.sqliteStatement
    sqlite3_reset(raw)
    var code = sqlite3_bind_int64(raw, 1, Int64(id))
    if code == SQLITE_OK {
        code = json.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in
                sqlite3_bind_text(
                    raw, 2, c.baseAddress, Int32(c.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
        }
    }
    if code == SQLITE_OK { code = sqlite3_step(raw) }
    guard code == SQLITE_DONE else {
        throw MemorizationError(
            "metadata row \(id): SQLite error \(code): \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
    }
}
