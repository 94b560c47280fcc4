import Foundation
import GRDB

/// What a merge added.
public struct MergeReport: Sendable, Equatable, Codable {
    public var runs: Int = 0
    public var inputs: Int = 0
    public var variations: Int = 0
    public var errors: Int = 0

    public init() {}
}

extension AuditStore {
    /// Copies the runs of `source` (shards of one audit) into this store. Runs are matched by fingerprint; inputs
    /// by path and variations by `(input, k)`, so merging the same shard twice adds nothing. The merged run's
    /// status is `done` once every shard `0..<N` was merged done; its time is the sum of the shards'.
    public func merge(from source: AuditStore) throws -> MergeReport {
        let sourceRuns = try source.runs()
        var report = MergeReport()
        for sourceRun in sourceRuns {
            let sourceID = sourceRun.id!
            let inputs = try source.inputs(run: sourceID)
            let errors = try source.errors(run: sourceID)
            try pool.write { db in
                var target = try RunRecord.filter(Column("fingerprint") == sourceRun.fingerprint)
                    .order(Column("id")).fetchOne(db)
                if target == nil {
                    var copy = sourceRun
                    copy.id = nil
                    copy.shardIndex = nil
                    copy.shardCount = nil
                    try copy.insert(db)
                    target = copy
                    report.runs += 1
                }
                let runID = target!.id!
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO merged_shards
                            (run_id, shard_index, shard_count, source, status, seconds, started_at, finished_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        runID, sourceRun.shardIndex ?? 0, sourceRun.shardCount ?? 1, source.url.path,
                        sourceRun.status, sourceRun.seconds, sourceRun.startedAt, sourceRun.finishedAt,
                    ])
                try Self.updateMergedRun(db, runID: runID)
            }
            let runID = try pool.read { db in
                try Int64.fetchOne(
                    db, sql: "SELECT id FROM runs WHERE fingerprint = ? ORDER BY id LIMIT 1",
                    arguments: [sourceRun.fingerprint])
            }!
            for input in inputs {
                let (scores, neighbors, flags) = try source.inputDetails(input.id!)
                let variations = try source.read { db in
                    try VariationRecord.filter(Column("input_id") == input.id!).order(Column("k")).fetchAll(db)
                }
                let variationResults = try source.read { db in
                    try Self.results(db, variationIDs: variations.map { $0.id! })
                }
                try pool.write { db in
                    var targetInputID = try Int64.fetchOne(
                        db, sql: "SELECT id FROM inputs WHERE run_id = ? AND path = ?", arguments: [runID, input.path])
                    if targetInputID == nil {
                        var copy = input
                        copy.id = nil
                        copy.runID = runID
                        try copy.insert(db)
                        targetInputID = copy.id
                        try Self.insertChildren(
                            db, inputID: copy.id!, variationID: nil, scores: scores, neighbors: neighbors,
                            flags: flags.compactMap(AuditFlag.init(rawValue:)))
                        report.inputs += 1
                    }
                    for result in variationResults {
                        let exists =
                            try Bool.fetchOne(
                                db, sql: "SELECT 1 FROM variations WHERE input_id = ? AND k = ?",
                                arguments: [targetInputID!, result.variation.k]) ?? false
                        if exists { continue }
                        var copy = result.variation
                        copy.id = nil
                        copy.runID = runID
                        copy.inputID = targetInputID!
                        try copy.insert(db)
                        try Self.insertChildren(
                            db, inputID: targetInputID!, variationID: copy.id!, scores: result.concepts,
                            neighbors: result.neighbors, flags: result.flags.compactMap(AuditFlag.init(rawValue:)))
                        report.variations += 1
                    }
                }
            }
            try pool.write { db in
                for error in errors {
                    let exists =
                        try Bool.fetchOne(
                            db,
                            sql: "SELECT 1 FROM errors WHERE run_id = ? AND input = ? AND stage = ? AND message = ?",
                            arguments: [runID, error.input, error.stage, error.message]) ?? false
                    if exists { continue }
                    var copy = error
                    copy.id = nil
                    copy.runID = runID
                    try copy.insert(db)
                    report.errors += 1
                }
            }
        }
        return report
    }

    /// Status, times and seconds of a merged run from its merged shards.
    static func updateMergedRun(_ db: Database, runID: Int64) throws {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT shard_index, shard_count, status, seconds, started_at, finished_at FROM merged_shards "
                + "WHERE run_id = ?", arguments: [runID])
        guard !rows.isEmpty else { return }
        let count: Int = rows[0]["shard_count"]
        let done = Set(rows.filter { ($0["status"] as String) == "done" }.map { $0["shard_index"] as Int })
        let complete = done.count == count && rows.allSatisfy { ($0["shard_count"] as Int) == count }
        let seconds = rows.map { $0["seconds"] as Double }.reduce(0, +)
        let started = rows.map { $0["started_at"] as String }.min()
        let finished = complete ? rows.compactMap { $0["finished_at"] as String? }.max() : nil
        let status = complete ? "done" : (rows.contains { ($0["status"] as String) == "failed" } ? "failed" : "partial")
        try db.execute(
            sql: "UPDATE runs SET status = ?, seconds = ?, started_at = ?, finished_at = ? WHERE id = ?",
            arguments: [status, seconds, started, finished, runID])
    }

    /// Shards merged into run `id` as `(index, count, status)`; empty for a run that was not merged.
    public func mergedShards(run id: Int64) throws -> [(index: Int, count: Int, status: String)] {
        try pool.read { db in
            guard try db.tableExists("merged_shards") else { return [] }
            return try Row.fetchAll(
                db,
                sql: "SELECT shard_index, shard_count, status FROM merged_shards WHERE run_id = ? "
                    + "ORDER BY shard_index", arguments: [id]
            ).map { ($0["shard_index"], $0["shard_count"], $0["status"]) }
        }
    }
}
