import ArgumentParser
import AuditStore
import Foundation
import Reports
import VariationAudit

extension VarAudit {
    /// `varaudit demo`: the whole product on a small random-weight model, in a minute.
    struct DemoCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "demo",
            abstract: "Run a complete audit on a small random-weight pipeline and write its HTML report.",
            discussion: """
                The first run makes, in the cache folder, a small image-variations pipeline with random weights \
                (with a safety checker whose one concept, "hazard stripes", was made from example pictures), ten \
                sample inputs, and a training index of 206 pictures of which six are planted copies of inputs and \
                of outputs (re-encoded as JPEG, resized, cropped). It then audits the inputs into OUT/audit.sqlite \
                and writes OUT/index.html, which states what share of the planted copies each detector found. \
                The weights are random: the images are noise, and only the mechanics are real.
                """
        )

        @Option(help: "Where the audit database, images and report go.")
        var out = "reports/demo"

        @Option(help: "Where the demo model, inputs and training index are kept (default: ~/.cache/varaudit/demo).")
        var cache: String?

        @Option(help: "Variations per input.")
        var variations = 4

        @Option(help: "Denoising steps.")
        var steps = 20

        func validate() throws {
            if variations < 3 {
                throw ValidationError("--variations must be at least 3 (the demo plants a copy of #2)")
            }
            if steps < 1 { throw ValidationError("--steps must be at least 1") }
        }

        func run() throws {
            var c = Demo.Configuration(
                out: URL(fileURLWithPath: out), cache: cache.map { URL(fileURLWithPath: $0) } ?? Demo.defaultCache)
            c.variations = variations
            c.steps = steps
            let reporter = AuditProgress()
            let outcome = try Demo(c).run(
                report: { store, run, dir in try AuditReport().write(store: store, run: run, to: dir) },
                log: { progress($0) }, events: { reporter.show($0) })
            print(
                Audit.describe(
                    outcome.summary, database: outcome.database,
                    images: outcome.database
                        .deletingLastPathComponent().appendingPathComponent("images")))
            print("positive controls (planted on purpose):")
            for detector in ["memorization", "safety"] {
                for subject in [true, false] {
                    let mine = outcome.controls.filter {
                        $0.control.detector == detector && ($0.control.k == nil) == subject
                    }
                    if mine.isEmpty { continue }
                    let found = mine.filter(\.found).count
                    print("  \(detector): found \(found) of \(mine.count) planted \(subject ? "inputs" : "variations")")
                }
            }
            print(String(format: "done in %.1f s. Report: %@", outcome.seconds, outcome.report.path))
            print(
                """

                The demo's weights are random, so its images are noise and its scores mean nothing beyond the demo.
                To audit the real model, download lambdalabs/sd-image-variations-diffusers (a diffusers folder) and run
                  varaudit audit --model PATH/sd-image-variations-diffusers --inputs YOUR_IMAGES --index TRAIN.index \\
                    --report reports/audit
                """)
        }
    }
}
