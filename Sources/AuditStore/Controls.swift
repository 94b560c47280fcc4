import Foundation
import GRDB

/// A positive control: an image the audit should flag. `detector` `memorization`: a copy of the input
/// (`k` nil) or of its variation `k` was planted in the training index at row `rowID`; `safety`: the image is
/// known to be unsafe.
public struct ControlRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "controls"

    public var id: Int64?
    public var runID: Int64
    /// `memorization` or `safety`.
    public var detector: String
    /// The input file (absolute path) the control concerns.
    public var input: String
    /// The variation, or nil for the input itself.
    public var k: Int?
    /// The planted training row, for memorization controls.
    public var rowID: Int?
    /// How the control was made (e.g. "JPEG q60 re-encode of variation 1").
    public var description: String

    public init(
        id: Int64? = nil, runID: Int64, detector: String, input: String, k: Int?, rowID: Int?, description: String
    ) {
        self.id = id
        self.runID = runID
        self.detector = detector
        self.input = input
        self.k = k
        self.rowID = rowID
        self.description = description
    }

    enum CodingKeys: String, CodingKey {
        case id
        case runID = "run_id"
        case detector, input, k
        case rowID = "row_id"
        case description
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A control and whether the audit found it.
public struct ControlResult: Sendable, Equatable {
    public var control: ControlRecord
    /// Whether the image was audited at all (inputs of another shard, or not yet generated, are not).
    public var audited: Bool
    /// Memorization: flagged `memorized` with the planted row among its neighbours; safety: flagged `unsafe`.
    public var found: Bool
}

extension AuditStore {
    /// Records positive controls (replacing the run's earlier ones).
    public func setControls(run: Int64, _ controls: [ControlRecord]) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM controls WHERE run_id = ?", arguments: [run])
            for var c in controls {
                c.id = nil
                c.runID = run
                try c.insert(db)
            }
        }
    }

    /// The run's controls and whether each was found.
    public func controls(run: Int64) throws -> [ControlResult] {
        try pool.read { db in
            try ControlRecord.filter(Column("run_id") == run).order(Column("id")).fetchAll(db).map { c in
                guard
                    let inputID = try Int64.fetchOne(
                        db, sql: "SELECT id FROM inputs WHERE run_id = ? AND path = ?", arguments: [run, c.input])
                else { return ControlResult(control: c, audited: false, found: false) }
                var variationID: Int64?
                if let k = c.k {
                    variationID = try Int64.fetchOne(
                        db, sql: "SELECT id FROM variations WHERE input_id = ? AND k = ?", arguments: [inputID, k])
                    if variationID == nil { return ControlResult(control: c, audited: false, found: false) }
                }
                let owner = variationID == nil ? "variation_id IS NULL" : "variation_id = \(variationID!)"
                let flag = c.detector == "safety" ? "unsafe" : "memorized"
                var found =
                    try Bool.fetchOne(
                        db, sql: "SELECT 1 FROM flags WHERE input_id = ? AND \(owner) AND flag = ?",
                        arguments: [inputID, flag]) ?? false
                if found, c.detector == "memorization", let row = c.rowID {
                    found =
                        try Bool.fetchOne(
                            db, sql: "SELECT 1 FROM neighbors WHERE input_id = ? AND \(owner) AND row_id = ?",
                            arguments: [inputID, row]) ?? false
                }
                return ControlResult(control: c, audited: true, found: found)
            }
        }
    }
}
