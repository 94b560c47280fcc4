import ArgumentParser
import AuditStore
import Foundation
import Reports

extension VarAudit {
    /// `varaudit report`: the HTML audit report of a run.
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the HTML report of an audit run (DIR/index.html with thumbnails beside it).",
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

        @Option(help: "Output folder.")
        var out: String

        func run() throws {
            let store = try AuditStore(url: URL(fileURLWithPath: db), create: false)
            let index = try AuditReport().write(store: store, run: runID, to: URL(fileURLWithPath: out))
            print(index.path)
        }
    }
}
