import Foundation
import GRDB

/// The audit database: one SQLite file (WAL mode, so queries read while an audit writes) holding runs, inputs,
/// variations, concept scores, training neighbours, flags and errors. The schema is created and upgraded by a
/// `DatabaseMigrator`; every write is one transaction, so a killed process leaves whole rows or none.
public final class AuditStore: Sendable {
    /// The database file.
    public let url: URL
    let pool: DatabasePool

    /// Opens (creating when `create`) the audit database at `url`. A read-only store never writes, so it can be
    /// opened while another process audits into the file.
    public init(url: URL, create: Bool = true) throws {
        self.url = url
        let exists = FileManager.default.fileExists(atPath: url.path)
        if !create && !exists { throw AuditStoreError(file: url.path, "no such audit database") }
        if create && !exists {
            let dir = url.deletingLastPathComponent()
            try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.foreignKeysEnabled = true
        configuration.readonly = !create
        do {
            pool = try DatabasePool(path: url.path, configuration: configuration)
            if create {
                try Self.migrator.migrate(pool)
            } else {
                let tables = try pool.read { db in try db.tableExists("variations") && db.tableExists("runs") }
                guard tables else { throw AuditStoreError(file: url.path, "not an audit database (no runs table)") }
            }
        } catch let error as AuditStoreError {
            throw error
        } catch {
            throw AuditStoreError(file: url.path, "cannot open audit database: \(error)")
        }
    }

    /// The schema, version by version.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "runs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("fingerprint", .text).notNull().indexed()
                t.column("model", .text).notNull()
                t.column("weights", .text).notNull()
                t.column("parameters", .text).notNull()
                t.column("tool_version", .text).notNull()
                t.column("shard_index", .integer)
                t.column("shard_count", .integer)
                t.column("detectors", .text).notNull()
                t.column("started_at", .text).notNull()
                t.column("finished_at", .text)
                t.column("status", .text).notNull()
                t.column("failure", .text)
                t.column("seconds", .double).notNull().defaults(to: 0)
            }
            try db.create(table: "inputs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).indexed().references("runs", onDelete: .cascade).notNull()
                t.column("path", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("position", .integer).notNull()
                t.column("width", .integer).notNull()
                t.column("height", .integer).notNull()
                t.column("safety_flagged", .boolean)
                t.column("special_care", .boolean)
                t.column("memorization_score", .double)
                t.column("embedding", .blob)
                t.column("seconds", .double).notNull()
                t.uniqueKey(["run_id", "path"])
            }
            try db.create(table: "variations") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).indexed().references("runs", onDelete: .cascade).notNull()
                t.column("input_id", .integer).indexed().references("inputs", onDelete: .cascade).notNull()
                t.column("k", .integer).notNull()
                t.column("seed", .integer).notNull()
                t.column("image_path", .text).notNull()
                t.column("image_sha256", .text).notNull()
                t.column("width", .integer).notNull()
                t.column("height", .integer).notNull()
                t.column("safety_flagged", .boolean)
                t.column("special_care", .boolean)
                t.column("memorization_score", .double)
                t.column("input_similarity", .double)
                t.column("embedding", .blob)
                t.column("generation_seconds", .double).notNull()
                t.column("safety_seconds", .double).notNull()
                t.column("memorization_seconds", .double).notNull()
                t.column("created_at", .text).notNull()
                t.uniqueKey(["input_id", "k"])
            }
            try db.create(table: "concept_scores") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("input_id", .integer).indexed().references("inputs", onDelete: .cascade).notNull()
                t.column("variation_id", .integer).indexed().references("variations", onDelete: .cascade)
                t.column("kind", .text).notNull()
                t.column("concept_index", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("similarity", .double).notNull()
                t.column("threshold", .double).notNull()
                t.column("score", .double).notNull()
                t.column("flagged", .boolean).notNull()
            }
            try db.create(table: "neighbors") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("input_id", .integer).indexed().references("inputs", onDelete: .cascade).notNull()
                t.column("variation_id", .integer).indexed().references("variations", onDelete: .cascade)
                t.column("rank", .integer).notNull()
                t.column("row_id", .integer).notNull()
                t.column("cosine", .double).notNull()
                t.column("metadata", .text)
                t.column("duplicate_group", .integer).notNull()
            }
            try db.create(table: "flags") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("input_id", .integer).indexed().references("inputs", onDelete: .cascade).notNull()
                t.column("variation_id", .integer).indexed().references("variations", onDelete: .cascade)
                t.column("flag", .text).notNull()
            }
            try db.create(table: "errors") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).indexed().references("runs", onDelete: .cascade).notNull()
                t.column("input", .text).notNull()
                t.column("stage", .text).notNull()
                t.column("message", .text).notNull()
                t.column("at", .text).notNull()
            }
            // Positive controls: images known to be copies (planted in the training index) or known to be unsafe,
            // so that a report can state how many of them each detector found.
            try db.create(table: "controls") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).indexed().references("runs", onDelete: .cascade).notNull()
                t.column("detector", .text).notNull()
                t.column("input", .text).notNull()
                t.column("k", .integer)
                t.column("row_id", .integer)
                t.column("description", .text).notNull()
            }
            // Shards merged into a run by `varaudit merge` (empty for runs made in one piece).
            try db.create(table: "merged_shards") { t in
                t.column("run_id", .integer).indexed().references("runs", onDelete: .cascade).notNull()
                t.column("shard_index", .integer).notNull()
                t.column("shard_count", .integer).notNull()
                t.column("source", .text).notNull()
                t.column("status", .text).notNull()
                t.column("seconds", .double).notNull()
                t.column("started_at", .text).notNull()
                t.column("finished_at", .text)
                t.primaryKey(["run_id", "shard_index", "shard_count"])
            }
        }
        return migrator
    }

    // MARK: Runs

    /// Every run, oldest first.
    public func runs() throws -> [RunRecord] {
        try pool.read { db in try RunRecord.order(Column("id")).fetchAll(db) }
    }

    /// The run with `id`, or the latest run when `id` is nil; throws naming the file when there is none.
    public func run(_ id: Int64?) throws -> RunRecord {
        let found = try pool.read { db in
            if let id { return try RunRecord.fetchOne(db, key: id) }
            return try RunRecord.order(Column("id").desc).fetchOne(db)
        }
        guard let found else {
            throw AuditStoreError(file: url.path, id.map { "no run \($0)" } ?? "holds no runs yet")
        }
        return found
    }

    /// Inserts a new run and returns it with its id.
    public func insertRun(_ run: RunRecord) throws -> RunRecord {
        var run = run
        try pool.write { db in try run.insert(db) }
        return run
    }

    /// Marks run `id` running again (a resumed run), done or failed.
    public func setStatus(run id: Int64, status: String, finishedAt: String?, failure: String?, addSeconds: Double)
        throws
    {
        try pool.write { db in
            try db.execute(
                sql: """
                    UPDATE runs SET status = ?, finished_at = ?, failure = ?, seconds = seconds + ? WHERE id = ?
                    """, arguments: [status, finishedAt, failure, addSeconds, id])
        }
    }

    /// Replaces a run's detector description (a resumed run may have found another checker or index).
    public func setDetectors(run id: Int64, _ detectors: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE runs SET detectors = ? WHERE id = ?", arguments: [detectors, id])
        }
    }

    // MARK: Inputs and variations

    /// The input stored for `path` in run `run`, if any.
    public func input(run: Int64, path: String) throws -> InputRecord? {
        try pool.read { db in
            try InputRecord.filter(Column("run_id") == run && Column("path") == path).fetchOne(db)
        }
    }

    /// All inputs of a run, in input-list order.
    public func inputs(run: Int64) throws -> [InputRecord] {
        try pool.read { db in
            try InputRecord.filter(Column("run_id") == run).order(Column("position"), Column("path")).fetchAll(db)
        }
    }

    /// Stores a checked input with its scores, neighbours and flags in one transaction; returns its row id.
    public func saveInput(
        _ input: InputRecord, scores: [ConceptScoreRecord], neighbors: [NeighborRecord], flags: [AuditFlag]
    ) throws -> Int64 {
        try pool.write { db in
            var input = input
            try input.insert(db)
            let id = input.id!
            try Self.insertChildren(
                db, inputID: id, variationID: nil, scores: scores, neighbors: neighbors, flags: flags)
            return id
        }
    }

    /// The variation indices `k` already stored for an input.
    public func finishedVariations(input: Int64) throws -> Set<Int> {
        try pool.read { db in
            Set(try Int.fetchAll(db, sql: "SELECT k FROM variations WHERE input_id = ?", arguments: [input]))
        }
    }

    /// Stores one variation with its scores, neighbours and flags in one transaction (call after its image
    /// is on disk under its final name). A variation already stored for `(input, k)` is left as it is.
    @discardableResult
    public func saveVariation(
        _ variation: VariationRecord, scores: [ConceptScoreRecord], neighbors: [NeighborRecord], flags: [AuditFlag]
    ) throws -> Int64? {
        try pool.write { db in
            let exists =
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM variations WHERE input_id = ? AND k = ?",
                    arguments: [variation.inputID, variation.k]) ?? false
            if exists { return nil }
            var variation = variation
            try variation.insert(db)
            let id = variation.id!
            try Self.insertChildren(
                db, inputID: variation.inputID, variationID: id, scores: scores, neighbors: neighbors, flags: flags)
            return id
        }
    }

    static func insertChildren(
        _ db: Database, inputID: Int64, variationID: Int64?, scores: [ConceptScoreRecord],
        neighbors: [NeighborRecord], flags: [AuditFlag]
    ) throws {
        for var s in scores {
            s.id = nil
            s.inputID = inputID
            s.variationID = variationID
            try s.insert(db)
        }
        for var n in neighbors {
            n.id = nil
            n.inputID = inputID
            n.variationID = variationID
            try n.insert(db)
        }
        for f in flags {
            var record = FlagRecord(inputID: inputID, variationID: variationID, flag: f.rawValue)
            try record.insert(db)
        }
    }

    // MARK: Errors

    /// Records an error for `input` (replacing earlier ones of the same input and stage in this run).
    public func recordError(run: Int64, input: String, stage: String, message: String, at: String) throws {
        try pool.write { db in
            try db.execute(
                sql: "DELETE FROM errors WHERE run_id = ? AND input = ? AND stage = ?", arguments: [run, input, stage])
            var record = ErrorRecord(runID: run, input: input, stage: stage, message: message, at: at)
            try record.insert(db)
        }
    }

    /// Drops the recorded errors of `input` (it is being retried).
    public func clearErrors(run: Int64, input: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM errors WHERE run_id = ? AND input = ?", arguments: [run, input])
        }
    }

    /// The errors of a run, oldest first.
    public func errors(run: Int64) throws -> [ErrorRecord] {
        try pool.read { db in try ErrorRecord.filter(Column("run_id") == run).order(Column("id")).fetchAll(db) }
    }

    /// Runs `body` inside one read transaction (a consistent snapshot while an audit writes).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }
}

/// An audit-store error naming the database file.
public struct AuditStoreError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(file: String? = nil, _ message: String) {
        description = file.map { "\($0): \(message)" } ?? message
    }
}
