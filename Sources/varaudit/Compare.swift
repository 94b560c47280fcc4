import ArgumentParser
import AuditStore
import Checkpoints
import Foundation

extension VarAudit {
    /// `varaudit compare`: two audits of the same inputs (two model versions), side by side.
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two audit runs of the same inputs and seeds (e.g. two checkpoints of the model).",
            discussion: """
                Variations are paired by (input SHA-256, variation index, seed). For each flag (memorized, \
                reproduces-input, unsafe) and score (memorization score, cosine to the input, highest concept \
                margin): the rate or mean in A and in B over the paired variations, the difference B − A with a \
                95% bootstrap interval (inputs resampled with replacement, --resamples times, seeded), and a \
                p-value: McNemar's exact test on the discordant pairs for flags, a sign-flip permutation test \
                over inputs for scores. Runs whose parameters or inputs differ in anything but the model are \
                refused unless --allow-different-parameters.
                """
        )

        @Option(help: "The audit database holding run A (and run B unless --db-b).")
        var db = "audit.sqlite"

        @Option(name: .customLong("db-b"), help: "The audit database holding run B (default: --db).")
        var dbB: String?

        @Option(name: .customLong("run"), help: "Run ids: --run A --run B.")
        var runs: [Int64] = []

        @Flag(help: "Compare runs whose parameters or inputs differ.")
        var allowDifferentParameters = false

        @Option(help: "Bootstrap resamples (and permutations).")
        var resamples = 2000

        @Option(help: "Seed of the resampling.")
        var seed: UInt64 = 0

        @OptionGroup var output: JSONOption

        func validate() throws {
            if runs.count != 2 && !(runs.count == 1 && dbB != nil) {
                throw ValidationError("give two runs: --run A --run B (or one --run with --db-b for the latest there)")
            }
            if resamples < 1 { throw ValidationError("--resamples must be at least 1") }
        }

        func run() throws {
            let storeA = try AuditStore(url: URL(fileURLWithPath: db), create: false)
            let storeB = try dbB.map { try AuditStore(url: URL(fileURLWithPath: $0), create: false) } ?? storeA
            var options = RunComparison.Options()
            options.allowDifferentParameters = allowDifferentParameters
            options.resamples = resamples
            options.seed = seed
            let c = try RunComparison.compare(
                storeA, run: runs.first, with: storeB, run: runs.count > 1 ? runs[1] : nil, options: options)
            if output.json {
                try printJSON(c.json)
                return
            }
            print(Self.describe(c))
        }

        static func describe(_ c: RunComparison) -> String {
            func f(_ d: Double?, _ percent: Bool) -> String {
                guard let d else { return "–" }
                return percent ? String(format: "%.1f%%", d * 100) : String(format: "%.4f", d)
            }
            var lines = [
                "A: run \(c.a.run.id ?? 0) (\(c.a.run.model)) · B: run \(c.b.run.id ?? 0) (\(c.b.run.model))",
                "\(c.pairs.count) paired variations, \(c.unpaired.values.reduce(0, +)) unpaired"
                    + (c.unpaired.isEmpty
                        ? ""
                        : " ("
                            + c.unpaired.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                            .joined(separator: ", ") + ")"),
                "metric               A         B         B − A     95% CI                  p",
            ]
            for m in c.metrics {
                let ci = m.ci95.map { "[\(f($0.0, m.isFlag)), \(f($0.1, m.isFlag))]" } ?? "–"
                let p = m.pValue.map { String(format: "%.4g", $0) } ?? "–"
                let cells = [
                    m.name.padding(toLength: 20, withPad: " ", startingAt: 0),
                    f(m.a, m.isFlag).padding(toLength: 9, withPad: " ", startingAt: 0),
                    f(m.b, m.isFlag).padding(toLength: 9, withPad: " ", startingAt: 0),
                    f(m.difference, m.isFlag).padding(toLength: 9, withPad: " ", startingAt: 0),
                    ci.padding(toLength: 23, withPad: " ", startingAt: 0), p,
                ]
                lines.append(cells.joined(separator: " "))
            }
            return lines.joined(separator: "\n")
        }
    }
}
