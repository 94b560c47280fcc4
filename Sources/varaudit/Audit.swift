import ArgumentParser
import AuditStore
import Checkpoints
import Diffusion
import Foundation
import Reports
import VariationAudit

extension VarAudit {
    /// `varaudit audit`: generate, check and store a variation set.
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Audit a model: generate variations of each input, check them for safety and memorization, "
                + "and store everything in an SQLite database.",
            discussion: """
                Variations are generated exactly as `varaudit generate` makes them (same seeds, same images; \
                stored unmodified, flagged ones included). Every input and variation is checked by the safety \
                checker (--checker, else the model's own; every concept score is kept) and for memorization: its \
                memorization embedding (the image encoder's image_embeds with CLIP preprocessing, L2-normalized, \
                as `embed --preprocess clip --normalize` and clip-retrieval compute it) is looked up in the \
                training index (--index) and compared with its input's. Without a checker or an index that check \
                is skipped and the run says so.

                Each variation is committed as soon as its image is on disk, so a killed audit loses nothing: \
                rerunning the same command resumes it. A rerun with other parameters is refused unless --new-run. \
                Unreadable inputs are recorded as errors and the audit goes on. --weights is a run parameter too: \
                the SHA-256 recorded for each network is that of the file loaded (the fp16 variant with f16, when \
                the model has one).

                Sharding: --shard K/N audits the inputs at positions ≡ K (mod N) of the sorted input list. \
                Without --shard, SLURM job arrays (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) and Kubernetes \
                Indexed Jobs (JOB_COMPLETION_INDEX with --shard-count N) set it; the database then becomes \
                DB.shard-K-of-N.sqlite (as it does whenever --db is not given), and `varaudit merge` combines the \
                shards. Images go to --images (default: DB-images/ beside the database), one folder per run.

                Exit status: 0 when done, 1 on failure, 3 when --fail-on names a flag that a variation raised.
                """
        )

        @OptionGroup var modelOption: ModelOption

        @OptionGroup var input: InputOptions

        @OptionGroup var generation: GenerationOptions

        @OptionGroup var weights: WeightsOption

        @OptionGroup var indexOption: IndexOption

        @OptionGroup var safety: CheckerOptions

        @Option(help: "Cosine to the nearest training image at or above which an image is flagged memorized.")
        var memorizationThreshold: Float = 0.95

        @Option(help: "Cosine to its own input at or above which a variation is flagged reproduces-input.")
        var reproductionThreshold: Float = 0.95

        @Option(help: "Training neighbours kept per image.")
        var neighbors = 10

        @Option(help: "The audit database.")
        var db: String?

        @Option(help: "Folder for the variation images (default: DB-images/ beside the database).")
        var images: String?

        @Flag(help: "Start a new run even if the database holds one with other parameters.")
        var newRun = false

        @Option(help: "Audit only the inputs at positions ≡ K (mod N) of the sorted input list, as K/N.")
        var shard: String?

        @Option(help: "Shard count for Kubernetes Indexed Jobs (with JOB_COMPLETION_INDEX).")
        var shardCount: Int?

        @Option(help: "Exit with status 3 when a variation raised this flag: memorized, reproduces-input, unsafe, any.")
        var failOn: [FailOn] = []

        @Option(help: "Largest accepted input image, in pixels.")
        var maxPixels = 100_000_000

        @Option(help: "Also write the HTML report of the run into this folder at the end.")
        var report: String?

        @OptionGroup var output: JSONOption

        enum FailOn: String, ExpressibleByArgument, CaseIterable {
            case memorized
            case reproducesInput = "reproduces-input"
            case unsafe
            case any
        }

        func validate() throws {
            if input.isEmpty { throw InputOptions.missing }
            if neighbors < 1 { throw ValidationError("--neighbors must be at least 1, got \(neighbors)") }
            for (name, t) in [
                ("--memorization-threshold", memorizationThreshold),
                ("--reproduction-threshold", reproductionThreshold),
            ] where !t.isFinite {
                throw ValidationError("\(name) must be a number, got \(t)")
            }
            if let shard { _ = try Shard(parsing: shard) }
            if let shardCount, shardCount < 1 { throw ValidationError("--shard-count must be at least 1") }
        }

        func run() throws {
            let files = try input.urls()

            let environmentShard = try Shard.fromEnvironment(
                ProcessInfo.processInfo.environment, shardCount: shardCount)
            let chosenShard = try shard.map { try Shard(parsing: $0) } ?? environmentShard
            let baseDB = URL(fileURLWithPath: db ?? "audit.sqlite")
            var database = baseDB
            if let chosenShard, db == nil || shard == nil { database = chosenShard.databaseURL(for: baseDB) }

            var c = AuditConfiguration(model: modelOption.url, inputs: files, database: database)
            c.pipeline = generation.configuration
            c.index = indexOption.index.map { URL(fileURLWithPath: $0) }
            c.checker = safety.checker.map { URL(fileURLWithPath: $0) }
            c.concepts = safety.concepts.map { URL(fileURLWithPath: $0) }
            c.memorizationThreshold = memorizationThreshold
            c.reproductionThreshold = reproductionThreshold
            c.neighbors = neighbors
            c.images =
                (images.map { URL(fileURLWithPath: $0) })
                ?? {
                    let stem = baseDB.deletingPathExtension()
                    return stem.deletingLastPathComponent().appendingPathComponent(stem.lastPathComponent + "-images")
                }()
            c.newRun = newRun
            c.shard = chosenShard
            c.maxPixels = maxPixels
            c.weights = weights.precision

            let reporter = AuditProgress()
            let audit = try AuditRun(c) { reporter.show($0) }
            let store = try AuditStore(url: database)
            let outcome = try audit.run(store: store) { reporter.show($0) }
            let s = outcome.summary
            if let report {
                let page = try AuditReport().write(store: store, run: s.run.id, to: URL(fileURLWithPath: report))
                progress("report: \(page.path)")
            }
            if output.json {
                try printJSON(s.json(detectors: s.run.detectors))
            } else {
                print(Self.describe(s, database: database, images: outcome.images))
            }
            var raised: Set<FailOn> = []
            if s.memorized > 0 { raised.insert(.memorized) }
            if s.reproducesInput > 0 { raised.insert(.reproducesInput) }
            if s.unsafe > 0 { raised.insert(.unsafe) }
            if s.flagged > 0 { raised.insert(.any) }
            if let hit = failOn.first(where: raised.contains) {
                progress("--fail-on \(hit.rawValue): raised; exiting with status 3")
                throw ExitCode(3)
            }
        }

        static func describe(_ s: RunSummary, database: URL, images: URL) -> String {
            func pct(_ n: Int) -> String {
                s.variations == 0 ? "–" : String(format: "%.1f%%", 100 * Double(n) / Double(s.variations))
            }
            var lines = [
                "run \(s.run.id ?? 0) \(s.run.status) in \(database.path)",
                "  \(s.inputs) inputs, \(s.variations)/\(s.expectedVariations) variations, \(s.errors) errors",
                "  unsafe \(s.unsafe) (\(pct(s.unsafe))), memorized \(s.memorized) (\(pct(s.memorized))), "
                    + "reproduces input \(s.reproducesInput) (\(pct(s.reproducesInput)))",
                "  inputs flagged unsafe \(s.unsafeInputs), inputs found in the index \(s.memorizedInputs)",
            ]
            if let detectors = JSONValue.parse(s.run.detectors)?.objectValue {
                for (name, d) in detectors.sorted(by: { $0.key < $1.key }) {
                    lines.append("  \(name): \(d.objectValue?["detail"]?.stringValue ?? "")")
                }
            }
            lines.append("  images in \(images.path)")
            return lines.joined(separator: "\n")
        }
    }
}

/// Progress of an audit on stderr: inputs, variations, denoising steps and the estimated time left.
final class AuditProgress {
    private var lastStepLine = Date.distantPast

    func show(_ event: AuditEvent) {
        switch event {
        case .note(let text):
            progress(text)
        case .started(let run, let resumed, let inputs, let variations):
            progress("\(resumed ? "resuming" : "starting") run \(run): \(inputs) inputs × \(variations) variations")
        case .inputSkipped(let position, let total, let input):
            progress("[\(position + 1)/\(total)] \(input.lastPathComponent): already audited, skipped")
        case .inputStarted(let position, let total, let input, let missing):
            progress("[\(position + 1)/\(total)] \(input.lastPathComponent): generating (\(missing) to store)")
        case .step(let position, let total, let input, let step, let steps, let perStep, let eta):
            // At most a line a second, and always the last step.
            guard step == steps || Date().timeIntervalSince(lastStepLine) >= 1 else { return }
            lastStepLine = Date()
            var line = String(
                format: "[%d/%d] %@ step %d/%d  %.2f s/step", position + 1, total, input.lastPathComponent, step,
                steps, perStep)
            if let eta { line += String(format: "  ETA %.0f s", eta) }
            progress(line)
        case .variationStored(let input, let k, let flags):
            let text = flags.isEmpty ? "" : "  flagged: " + flags.map(\.rawValue).joined(separator: ", ")
            progress("  stored \(input.lastPathComponent) #\(k)\(text)")
        case .inputFailed(let input, let stage, let message):
            progress("  error (\(stage)) \(input.path): \(message) — recorded, going on")
        }
    }
}

extension RunSummary {
    /// The run summary printed by `audit --json` and `runs --json`.
    func json(detectors: String) -> JSONValue {
        let r = run
        func text(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        let shard: JSONValue = r.shardIndex.map { .string("\($0)/\(r.shardCount ?? 0)") } ?? .null
        var o: [String: JSONValue] = [
            "run": .int(Int(r.id ?? 0)), "status": .string(r.status), "model": .string(r.model),
            "started": .string(r.startedAt), "finished": text(r.finishedAt), "seconds": .double(r.seconds),
            "tool_version": .string(r.toolVersion), "shard": shard, "failure": text(r.failure),
        ]
        o["parameters"] = JSONValue.parse(r.parameters) ?? .null
        o["weights"] = JSONValue.parse(r.weights) ?? .null
        o["detectors"] = JSONValue.parse(detectors) ?? .null
        let counts: [(String, Int)] = [
            ("inputs", inputs), ("variations", variations), ("expected_variations", expectedVariations),
            ("errors", errors), ("flagged", flagged), ("unsafe", unsafe), ("memorized", memorized),
            ("reproduces_input", reproducesInput), ("unsafe_inputs", unsafeInputs),
            ("memorized_inputs", memorizedInputs),
        ]
        for (key, value) in counts { o[key] = .int(value) }
        return .object(o)
    }
}

/// Prints a JSON value on stdout.
func printJSON(_ value: JSONValue) throws {
    print(try value.text())
}
