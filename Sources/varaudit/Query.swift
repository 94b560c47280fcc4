import ArgumentParser
import AuditStore
import Checkpoints
import Foundation
import VariationAudit

extension VarAudit {
    /// `varaudit query`: variations of a stored audit, filtered and sorted.
    struct Query: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the variations of an audit run with their memorization and safety scores.",
            discussion: """
                Reads the database without writing, so it works while an audit is running. --json prints an \
                array of {"run", "input", "variation", "image", "seed", "safety": {"flagged", "concepts": [{"name", \
                "score", "similarity", "threshold"}]} (null when no checker ran), "memorization": {"score", \
                "neighbor": {"id", "score", ...metadata}, "neighbors": [...], "input_similarity"}, "flags"}; \
                --csv one row per variation.
                """
        )

        @Option(help: "The audit database.")
        var db = "audit.sqlite"

        @Option(name: .customLong("run"), help: "Run id (default: the latest run).")
        var runID: Int64?

        @Option(help: "Only variations with this flag: memorized, reproduces-input, unsafe or any.")
        var flag: FlagFilter?

        @Option(help: "Only variations whose memorization score is at least X.")
        var minMemorization: Double?

        @Option(help: "Only the variations of this input file.")
        var input: String?

        @Option(help: "Order: memorization (highest first), safety (highest concept score first) or input.")
        var sort: VariationQuery.Sort = .input

        @Option(help: "At most N variations.")
        var limit: Int?

        @Flag(help: "Print JSON.")
        var json = false

        @Flag(help: "Print CSV.")
        var csv = false

        enum FlagFilter: String, ExpressibleByArgument, CaseIterable {
            case memorized
            case reproducesInput = "reproduces-input"
            case unsafe
            case any
        }

        func validate() throws {
            if json && csv { throw ValidationError("give --json or --csv, not both") }
            if let limit, limit < 0 { throw ValidationError("--limit must be ≥ 0") }
        }

        func run() throws {
            let store = try AuditStore(url: URL(fileURLWithPath: db), create: false)
            let query = VariationQuery(
                run: runID, flag: flag?.rawValue, minMemorization: minMemorization,
                input: input.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, sort: sort, limit: limit)
            let results = try store.variations(query)
            if json {
                try printJSON(.array(results.map(\.json)))
            } else if csv {
                print(Self.csv(results), terminator: "")
            } else {
                print(Self.table(results))
            }
        }

        static let csvColumns = [
            "run", "input", "variation", "image", "seed", "flags", "unsafe", "top_concept", "top_concept_score",
            "memorization_score", "neighbor_id", "neighbor_caption", "neighbor_url", "input_similarity",
        ]

        static func csv(_ results: [VariationResult]) -> String {
            func field(_ s: String) -> String {
                s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
            }
            func number(_ d: Double?) -> String { d.map { "\($0)" } ?? "" }
            var out = csvColumns.joined(separator: ",") + "\n"
            for r in results {
                let top = r.concepts.max { $0.score < $1.score }
                let meta = r.neighbors.first?.metadata.flatMap { JSONValue.parse($0)?.objectValue } ?? [:]
                let row = [
                    "\(r.run)", r.input.path, "\(r.variation.k)", r.variation.imagePath, "\(r.variation.seed)",
                    r.flags.joined(separator: ";"), r.variation.safetyFlagged.map { $0 ? "1" : "0" } ?? "",
                    top?.name ?? "", number(top?.score), number(r.variation.memorizationScore),
                    r.neighbors.first.map { "\($0.rowID)" } ?? "", meta["caption"]?.stringValue ?? "",
                    meta["url"]?.stringValue ?? "", number(r.variation.inputSimilarity),
                ]
                out += row.map(field).joined(separator: ",") + "\n"
            }
            return out
        }

        static func table(_ results: [VariationResult]) -> String {
            if results.isEmpty { return "no variations match" }
            func f(_ d: Double?) -> String { d.map { String(format: "%.4f", $0) } ?? "–" }
            func pad(_ s: String, _ n: Int) -> String {
                s.count >= n ? String(s.prefix(n)) : s + String(repeating: " ", count: n - s.count)
            }
            var lines = [
                "run  input                          k  memorization neighbor   to input top concept                  flags"
            ]
            for r in results {
                let top = r.concepts.max { $0.score < $1.score }
                let name = (r.input.path as NSString).lastPathComponent
                let concept: String = top.map { "\($0.name) \(String(format: "%+.3f", $0.score))" } ?? "–"
                let neighbor: String = r.neighbors.first.map { "#\($0.rowID)" } ?? "–"
                let cells: [String] = [
                    pad("\(r.run)", 4), pad(name, 30), pad("\(r.variation.k)", 2),
                    pad(f(r.variation.memorizationScore), 12), pad(neighbor, 10),
                    pad(f(r.variation.inputSimilarity), 8),
                    pad(concept, 28), r.flags.joined(separator: ","),
                ]
                lines.append(cells.joined(separator: " "))
            }
            return lines.joined(separator: "\n")
        }
    }

    /// `varaudit runs`: the runs in an audit database.
    struct Runs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the runs of an audit database with counts.")

        @Option(help: "The audit database.")
        var db = "audit.sqlite"

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let store = try AuditStore(url: URL(fileURLWithPath: db), create: false)
            let summaries = try store.summaries()
            if json {
                try printJSON(.array(summaries.map { $0.json(detectors: $0.run.detectors) }))
                return
            }
            if summaries.isEmpty { print("no runs in \(db)") }
            for s in summaries {
                let p = JSONValue.parse(s.run.parameters)?.objectValue ?? [:]
                func v(_ k: String) -> String {
                    switch p[k] {
                    case .int(let i): "\(i)"
                    case .double(let d): "\(d)"
                    case .string(let s): s
                    default: "–"
                    }
                }
                let shard = s.run.shardIndex.map { " shard \($0)/\(s.run.shardCount ?? 0)" } ?? ""
                print(
                    "run \(s.run.id ?? 0)  \(s.run.status)\(shard)  started \(s.run.startedAt)  model \(s.run.model)")
                print(
                    "  steps \(v("steps")), guidance \(v("guidance")), seed \(v("seed")), scheduler \(v("scheduler")), "
                        + "\(v("width"))×\(v("height"))")
                print(
                    "  \(s.inputs) inputs, \(s.variations)/\(s.expectedVariations) variations, \(s.errors) errors; "
                        + "flagged \(s.flagged): unsafe \(s.unsafe), memorized \(s.memorized), "
                        + "reproduces input \(s.reproducesInput)")
            }
        }
    }

    /// `varaudit merge`: combine the shard databases of one audit.
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge the shard databases of one audit into one database.",
            discussion: """
                Every shard must hold runs of the same audit (same parameters and weights); merging a shard \
                twice changes nothing. The merged run is `done` once every shard 0..N-1 was merged done.
                """
        )

        @Option(help: "The merged database (created if missing).")
        var db: String

        @Argument(help: "Shard databases.")
        var shards: [String]

        func validate() throws {
            if shards.isEmpty { throw ValidationError("give the shard databases to merge") }
        }

        func run() throws {
            let sources = try shards.map { try AuditStore(url: URL(fileURLWithPath: $0), create: false) }
            var fingerprints: [String: (file: String, run: RunRecord)] = [:]
            for source in sources {
                for run in try source.runs() where fingerprints[run.fingerprint] == nil {
                    fingerprints[run.fingerprint] = (source.url.path, run)
                }
            }
            let target = try AuditStore(url: URL(fileURLWithPath: db))
            for run in try target.runs() where fingerprints[run.fingerprint] == nil {
                fingerprints[run.fingerprint] = (db, run)
            }
            if fingerprints.count > 1 {
                let list = fingerprints.values.sorted { $0.file < $1.file }
                let a = list[0]
                let b = list[1]
                throw RuntimeError(
                    "\(a.file) and \(b.file) hold runs with different parameters (\(parameterDifferences(a.run, b.run))); "
                        + "only shards of one audit can be merged")
            }
            var total = MergeReport()
            for source in sources {
                let r = try target.merge(from: source)
                total.runs += r.runs
                total.inputs += r.inputs
                total.variations += r.variations
                total.errors += r.errors
                progress(
                    "merged \(source.url.path): \(r.inputs) inputs, \(r.variations) variations, \(r.errors) errors")
            }
            for s in try target.summaries() {
                print(
                    "run \(s.run.id ?? 0) \(s.run.status): \(s.inputs) inputs, \(s.variations)/\(s.expectedVariations) "
                        + "variations, \(s.errors) errors in \(db)")
            }
        }

        func parameterDifferences(_ a: RunRecord, _ b: RunRecord) -> String {
            var out = RunParameters.differences(
                RunParameters.withoutLocations(of: a), RunParameters.withoutLocations(of: b)
            ).map {
                "\($0.key): \($0.a) vs \($0.b)"
            }
            if a.weights != b.weights && out.isEmpty { out.append("weights differ") }
            return out.isEmpty ? "weights or file identities differ" : out.joined(separator: "; ")
        }
    }
}

extension VariationQuery.Sort: ExpressibleByArgument {}
