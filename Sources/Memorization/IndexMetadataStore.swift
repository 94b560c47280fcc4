import Foundation
import GRDB

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
    /// The JSONL metadata file imported, if any.
    public var metadataFile: String?
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
