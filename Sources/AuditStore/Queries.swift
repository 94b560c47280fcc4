import Checkpoints
import Foundation
import GRDB

/// Counts of one run, as `varaudit runs` lists them.
public struct RunSummary: Codable, Sendable, Equatable {
    public var run: RunRecord
    public var inputs: Int
    public var variations: Int
    /// Variations the run's parameters ask for over the inputs stored so far (`inputs × variations`).
    public var expectedVariations: Int
    public var errors: Int
    /// Variations carrying each flag.
    public var unsafe: Int
    public var memorized: Int
    public var reproducesInput: Int
    /// Variations carrying any flag.
    public var flagged: Int
    /// Inputs the safety checker flagged, and inputs found in the training index.
    public var unsafeInputs: Int
    public var memorizedInputs: Int

    enum CodingKeys: String, CodingKey {
        case run, inputs, variations
        case expectedVariations = "expected_variations"
        case errors, unsafe, memorized
        case reproducesInput = "reproduces_input"
        case flagged
        case unsafeInputs = "unsafe_inputs"
        case memorizedInputs = "memorized_inputs"
    }
}

/// How `query` picks and orders variations.
public struct VariationQuery: Sendable, Equatable {
    public enum Sort: String, Sendable, CaseIterable {
        /// Highest memorization score first (variations without one last).
        case memorization
        /// Highest concept score first.
        case safety
        /// Input-list order, then `k`.
        case input
    }

    /// The run (default: the latest).
    public var run: Int64?
    /// Only variations carrying this flag (`nil`: all); `any` for any flag.
    public var flag: String?
    /// Only variations whose memorization score is at least this.
    public var minMemorization: Double?
    /// Only the variations of this input (absolute path).
    public var input: String?
    public var sort: Sort = .input
    public var limit: Int?

    public init(
        run: Int64? = nil, flag: String? = nil, minMemorization: Double? = nil, input: String? = nil,
        sort: Sort = .input, limit: Int? = nil
    ) {
        self.run = run
        self.flag = flag
        self.minMemorization = minMemorization
        self.input = input
        self.sort = sort
        self.limit = limit
    }
}

/// One stored variation with everything known about it: what `query --json` prints per variation.
public struct VariationResult: Sendable, Equatable {
    public var run: Int64
    public var input: InputRecord
    public var variation: VariationRecord
    /// Concept scores, ordinary then special, in set order (empty when no checker ran).
    public var concepts: [ConceptScoreRecord]
    /// Training neighbours, nearest first.
    public var neighbors: [NeighborRecord]
    public var flags: [String]

    /// The highest rounded concept score (nil when no checker ran).
    public var maxConceptScore: Double? { concepts.map(\.score).max() }
}

extension AuditStore {
    /// Per-run counts, oldest run first.
    public func summaries() throws -> [RunSummary] {
        try runs().map { try summary(of: $0) }
    }

    /// Counts of one run.
    public func summary(of run: RunRecord) throws -> RunSummary {
        let id = run.id ?? -1
        let perInput = JSONValue.parse(run.parameters)?.objectValue?["variations"]?.intValue ?? 0
        return try pool.read { db in
            func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql, arguments: [id]) ?? 0 }
            func flagged(_ flag: String?, inputs: Bool) throws -> Int {
                let owner = inputs ? "variation_id IS NULL" : "variation_id IS NOT NULL"
                let which = flag.map { "AND flag = '\($0)'" } ?? ""
                let column = inputs ? "input_id" : "variation_id"
                return try count(
                    """
                    SELECT COUNT(DISTINCT f.\(column)) FROM flags f JOIN inputs i ON i.id = f.input_id
                    WHERE i.run_id = ? AND f.\(owner) \(which)
                    """)
            }
            let inputs = try count("SELECT COUNT(*) FROM inputs WHERE run_id = ?")
            return RunSummary(
                run: run, inputs: inputs, variations: try count("SELECT COUNT(*) FROM variations WHERE run_id = ?"),
                expectedVariations: inputs * perInput,
                errors: try count("SELECT COUNT(*) FROM errors WHERE run_id = ?"),
                unsafe: try flagged("unsafe", inputs: false), memorized: try flagged("memorized", inputs: false),
                reproducesInput: try flagged("reproduces-input", inputs: false),
                flagged: try flagged(nil, inputs: false), unsafeInputs: try flagged("unsafe", inputs: true),
                memorizedInputs: try flagged("memorized", inputs: true))
        }
    }

    /// The variations matching `query`, each with its input, scores, neighbours and flags.
    public func variations(_ query: VariationQuery) throws -> [VariationResult] {
        let run = try self.run(query.run)
        let runID = run.id ?? -1
        return try pool.read { db in
            var conditions = ["v.run_id = ?"]
            var arguments: [any DatabaseValueConvertible] = [runID]
            if let flag = query.flag {
                if flag == "any" {
                    conditions.append("EXISTS (SELECT 1 FROM flags f WHERE f.variation_id = v.id)")
                } else {
                    conditions.append("EXISTS (SELECT 1 FROM flags f WHERE f.variation_id = v.id AND f.flag = ?)")
                    arguments.append(flag)
                }
            }
            if let m = query.minMemorization {
                conditions.append("v.memorization_score >= ?")
                arguments.append(m)
            }
            if let input = query.input {
                conditions.append("i.path = ?")
                arguments.append(input)
            }
            let order: String
            switch query.sort {
            case .memorization:
                order = "v.memorization_score IS NULL, v.memorization_score DESC, i.position, i.path, v.k"
            case .safety:
                order = """
                    (SELECT MAX(c.score) FROM concept_scores c WHERE c.variation_id = v.id) IS NULL,
                    (SELECT MAX(c.score) FROM concept_scores c WHERE c.variation_id = v.id) DESC, i.position, i.path, v.k
                    """
            case .input:
                order = "i.position, i.path, v.k"
            }
            var sql = """
                SELECT v.id FROM variations v JOIN inputs i ON i.id = v.input_id
                WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order)
                """
            if let limit = query.limit {
                sql += " LIMIT ?"
                arguments.append(limit)
            }
            let ids = try Int64.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            return try Self.results(db, variationIDs: ids)
        }
    }

    /// Full results for variation ids, in the order given.
    static func results(_ db: Database, variationIDs ids: [Int64]) throws -> [VariationResult] {
        var variations: [Int64: VariationRecord] = [:]
        var inputs: [Int64: InputRecord] = [:]
        var scores: [Int64: [ConceptScoreRecord]] = [:]
        var neighbors: [Int64: [NeighborRecord]] = [:]
        var flags: [Int64: [String]] = [:]
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(start + 500, ids.count)])
            for v in try VariationRecord.filter(keys: chunk).fetchAll(db) { variations[v.id!] = v }
            let inputIDs = Set(chunk.compactMap { variations[$0]?.inputID }).filter { inputs[$0] == nil }
            for i in try InputRecord.filter(keys: Array(inputIDs)).fetchAll(db) { inputs[i.id!] = i }
            let inVariations = chunk.contains(Column("variation_id"))
            for s in try ConceptScoreRecord.filter(inVariations).order(Column("id")).fetchAll(db) {
                scores[s.variationID!, default: []].append(s)
            }
            for n in try NeighborRecord.filter(inVariations).order(Column("rank")).fetchAll(db) {
                neighbors[n.variationID!, default: []].append(n)
            }
            for f in try FlagRecord.filter(inVariations).order(Column("id")).fetchAll(db) {
                flags[f.variationID!, default: []].append(f.flag)
            }
        }
        return ids.compactMap { id in
            guard let v = variations[id], let input = inputs[v.inputID] else { return nil }
            return VariationResult(
                run: v.runID, input: input, variation: v, concepts: scores[id] ?? [], neighbors: neighbors[id] ?? [],
                flags: flags[id] ?? [])
        }
    }

    /// The input's own concept scores, neighbours and flags.
    public func inputDetails(_ inputID: Int64) throws -> (
        concepts: [ConceptScoreRecord], neighbors: [NeighborRecord], flags: [String]
    ) {
        try pool.read { db in
            let mine = Column("input_id") == inputID && Column("variation_id") == nil
            return (
                try ConceptScoreRecord.filter(mine).order(Column("id")).fetchAll(db),
                try NeighborRecord.filter(mine).order(Column("rank")).fetchAll(db),
                try FlagRecord.filter(mine).order(Column("id")).fetchAll(db).map(\.flag)
            )
        }
    }
}
