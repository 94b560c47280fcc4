import ArgumentParser
import AuditStore
import Foundation
import Reports

extension VarAudit {
    /// `varaudit report`: the HTML audit report of a run.
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write the HTML report of an audit run (DIR/index.html with thumbnails beside it), or of two runs.",
            discussion: """
                The page works offline and requests nothing: thumbnails are written to DIR/thumbs/, the full \
                images are linked where the audit stored them. It shows the run's parameters, weight hashes, \
                counts, detectors, positive controls and histograms, then every input with its own verdict and its \
                variations (flags, concept scores, nearest training image). Images flagged unsafe are blurred until \
                clicked; filters and sorting work in the page.
                """
        )

        @Option(help: "The audit database.")
        var db = "audit.sqlite"

        @Option(name: .customLong("run"), help: "Run id (default: the latest run).")
        var runID: Int64?

        @Option(help: "Set this run (B) beside --run (A): both columns, differences, two rows per input.")
        var compare: Int64?

        @Option(name: .customLong("db-b"), help: "The database holding the --compare run (default: --db).")
        var dbB: String?

        @Flag(help: "Compare runs whose parameters or inputs differ.")
        var allowDifferentParameters = false

        @Option(help: "Output folder.")
        var out: String

        func validate() throws {
            if compare == nil && (dbB != nil || allowDifferentParameters) {
                throw ValidationError("--db-b and --allow-different-parameters go with --compare B")
            }
        }

        func run() throws {
            let store = try AuditStore(url: URL(fileURLWithPath: db), create: false)
            var comparison: (store: AuditStore, comparison: RunComparison)?
            if let compare {
                let other = try dbB.map { try AuditStore(url: URL(fileURLWithPath: $0), create: false) } ?? store
                var options = RunComparison.Options()
                options.allowDifferentParameters = allowDifferentParameters
                comparison = (
                    other, try RunComparison.compare(store, run: runID, with: other, run: compare, options: options)
                )
            }
            let index = try AuditReport().write(
                store: store, run: runID, comparison: comparison, to: URL(fileURLWithPath: out))
            print(index.path)
        }
    }
}
