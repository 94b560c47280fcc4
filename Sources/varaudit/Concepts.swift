import ArgumentParser
import Foundation
import Imaging
import Safety
import Tensors
import VariationAudit

extension VarAudit {
    /// `varaudit concepts`: concept sets for the safety checker (files in `concepts/`, format in its README).
    struct Concepts: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extract, list, show, extend and calibrate safety-checker concept sets.",
            subcommands: [Extract.self, List.self, Show.self, Add.self, Calibrate.self]
        )

        /// Subfolders of `dir`, sorted.
        static func subfolders(of dir: URL) -> [URL] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.sorted().map { dir.appendingPathComponent($0, isDirectory: true) }.filter {
                var isDir: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0.path, isDirectory: &isDir) && isDir.boolValue
            }
        }

        /// The checker named by `--checker`, else the one whose weights the set's provenance names.
        static func checker(_ option: String?, for set: ConceptSet?, setPath: String) throws -> SafetyChecker {
            if let option { return try SafetyChecker(directory: URL(fileURLWithPath: option)) }
            guard let source = set?.provenance?.source else {
                throw RuntimeError("\(setPath) names no checker in its provenance: give --checker DIR")
            }
            if source == set?.provenance?.textModel {
                throw RuntimeError("\(setPath) was made from texts without a checker: give --checker DIR")
            }
            let weights = URL(fileURLWithPath: source)
            guard FileManager.default.fileExists(atPath: weights.path) else {
                throw RuntimeError(
                    "\(setPath): the checker its provenance names (\(source)) is not there: give --checker DIR")
            }
            return try SafetyChecker(directory: weights.deletingLastPathComponent())
        }

        /// Image embeddings of `urls` through `checker`, with progress on stderr.
        static func embed(_ urls: [URL], with checker: SafetyChecker, what: String) throws -> [[Float]] {
            var out: [[Float]] = []
            for (i, url) in urls.enumerated() {
                out.append(try checker.embed([try RGBImage.load(contentsOf: url)])[0])
                if urls.count > 4 { progress("\(what) \(i + 1)/\(urls.count)") }
            }
            return out
        }

        static func format(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "-" }
    }
}

extension VarAudit.Concepts {
    /// `concepts extract`: writes a checkpoint's concepts and thresholds as a concept set.
    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a safety checker's concept and special-care embeddings and thresholds as a concept set.",
            discussion: """
                The set is written to --out; the embeddings go to a .npy next to it (same name, one row per \
                concept in set order) unless --inline. Provenance records the weights file and its SHA-256.
                """
        )

        @Option(help: "A pipeline folder, a folder holding safety_checker/, or a safety_checker folder.")
        var checker: String

        @Option(help: "The concept-set file to write, e.g. concepts/sd-safety-checker.json.")
        var out: String

        @Option(help: "The set's name (default: the file name without extension).")
        var name: String?

        @Flag(help: "Write the embeddings inline in the JSON instead of a sibling .npy.")
        var inline = false

        func validate() throws {
            if !out.hasSuffix(".json") { throw ValidationError("--out must end in .json, got \(out)") }
        }

        func run() throws {
            let model = try SafetyChecker(directory: URL(fileURLWithPath: checker))
            let url = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            var set = model.builtInConcepts
            set.name = name ?? url.deletingPathExtension().lastPathComponent
            set.description = "Concepts and thresholds of the safety checker in \(checker)."
            set.provenance = ConceptSetProvenance(
                source: model.weightsURL.path, sha256: try Digest.sha256(fileAt: model.weightsURL),
                note: "extracted by varaudit concepts extract: concept_embeds, concept_embeds_weights, "
                    + "special_care_embeds, special_care_embeds_weights")
            let npy = inline ? nil : url.deletingPathExtension().lastPathComponent + ".npy"
            try set.write(to: url, embeddingsFile: npy)
            let c = set.indexed(.concept).count
            let s = set.indexed(.special).count
            print("wrote \(out): \(c) concepts, \(s) special\(npy.map { ", embeddings in \($0)" } ?? "")")
        }
    }

    /// `concepts list`: the sets in a folder.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the concept sets in a folder.")

        @Argument(help: "Folder of concept-set files.")
        var directory = "concepts"

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let dir = URL(fileURLWithPath: directory)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }
                .sorted()
            var rows: [[String: Any]] = []
            for f in files {
                let url = dir.appendingPathComponent(f)
                do {
                    let set = try ConceptSet.load(url: url)
                    rows.append([
                        "file": url.path, "name": set.name, "concepts": set.indexed(.concept).count,
                        "special": set.indexed(.special).count, "enabled": set.concepts.filter(\.enabled).count,
                        "embedding_size": set.embeddingSize ?? 0, "adjustment": shortestDouble(set.adjustment),
                        "source": set.provenance?.source ?? "",
                    ])
                } catch {
                    rows.append(["file": url.path, "error": "\(error)"])
                }
            }
            if json { return try printJSON(rows) }
            if rows.isEmpty { print("no concept sets in \(dir.path)") }
            for r in rows {
                if let e = r["error"] {
                    print("\(r["file"] ?? ""): invalid: \(e)")
                } else {
                    print(
                        "\(r["file"] ?? ""): \(r["name"] ?? "") — \(r["concepts"] ?? 0) concepts, \(r["special"] ?? 0) special, "
                            + "\(r["enabled"] ?? 0) enabled, size \(r["embedding_size"] ?? 0), adjustment \(r["adjustment"] ?? 0)"
                    )
                }
            }
        }
    }

    /// `concepts show`: one set's concepts.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the concepts of a concept set.")

        @Argument(help: "A concept-set file.")
        var set: String

        @Flag(help: "Print JSON (without the embeddings).")
        var json = false

        func run() throws {
            let s = try ConceptSet.load(url: URL(fileURLWithPath: set))
            let kinds = [ConceptKind.concept, .special]
            if json {
                var list: [[String: Any]] = []
                for kind in kinds {
                    for (i, c) in s.indexed(kind) {
                        var row: [String: Any] = [
                            "index": i, "name": c.name, "kind": kind.rawValue,
                            "threshold": shortestDouble(c.threshold), "enabled": c.enabled,
                        ]
                        if let r = c.reference {
                            var ref: [String: Any] = ["file": r.file]
                            if let k = r.key { ref["key"] = k }
                            if let n = r.row { ref["row"] = n }
                            row["embedding"] = ref
                        } else {
                            row["embedding"] = "inline"
                        }
                        list.append(row)
                    }
                }
                var top: [String: Any] = [
                    "name": s.name, "file": set, "adjustment": shortestDouble(s.adjustment),
                    "embedding_size": s.embeddingSize ?? 0, "concepts": list,
                ]
                if let p = s.provenance {
                    var provenance = ["source": p.source, "sha256": p.sha256 ?? "", "note": p.note ?? ""]
                    if let m = p.textModel { provenance["text_model"] = m }
                    if let h = p.textModelSHA256 { provenance["text_model_sha256"] = h }
                    top["provenance"] = provenance
                }
                return try printJSON(top)
            }
            print("\(set): \(s.name)\(s.description.map { " — \($0)" } ?? "")")
            print("  adjustment \(s.adjustment), embedding size \(s.embeddingSize ?? 0)")
            if let p = s.provenance { print("  source \(p.source)\(p.sha256.map { " sha256 \($0)" } ?? "")") }
            if let m = s.provenance?.textModel {
                print("  text concepts from CLIP \(m)\(s.provenance?.textModelSHA256.map { " sha256 \($0)" } ?? "")")
            }
            for kind in kinds {
                for (i, c) in s.indexed(kind) {
                    let place =
                        c.reference.map { r in
                            r.file + (r.key.map { ":\($0)" } ?? "") + (r.row.map { "[\($0)]" } ?? "")
                        } ?? "inline"
                    print(
                        "  \(kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))"
                            + "\(String(i).padding(toLength: 4, withPad: " ", startingAt: 0))"
                            + "\(c.name.padding(toLength: max(12, c.name.count + 1), withPad: " ", startingAt: 0))"
                            + "threshold \(c.threshold)\(c.enabled ? "" : " (disabled)")  \(place)")
                }
            }
        }
    }

    /// `concepts add`: a concept from example images or from texts.
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a concept to a set from example images or texts (mean of their normalized embeddings).",
            discussion: """
                The images given with --input or found in --inputs (PNG/JPEG, not recursive) are embedded by the checker's vision tower and \
                projection; the concept's embedding is the mean of the L2-normalized embeddings, written inline. \
                A set file that does not exist yet is created. With --text (repeatable) or --texts FILE and \
                --clip DIR, the texts are embedded by that CLIP model's text tower and text_projection instead \
                (the checker's concepts live in CLIP ViT-L/14's shared image-text space); the set's provenance \
                records the CLIP weights' SHA-256, and texts embedded by another CLIP model are refused, as is a \
                model whose projection width differs from the set's (or from --checker's). The threshold of a \
                text concept defaults to \(defaultTextThreshold); tune it with `concepts calibrate`.
                """
        )

        /// The threshold of a concept made from texts when --threshold is not given.
        static let defaultTextThreshold: Float = 0.2

        @Option(help: "The concept-set file to extend (created if missing).")
        var set: String

        @Option(help: "The new concept's name (unique in the set).")
        var name: String

        @OptionGroup var input: InputOptions

        @Option(name: .customLong("images"), help: .hidden)  // the old spelling of --inputs, for one release
        var legacyImages: String?

        @OptionGroup var text: TextOptions

        @Option(help: "Cosine-similarity threshold (required with images; default 0.2 with texts).")
        var threshold: Float?

        @Option(help: "concept or special.")
        var kind: ConceptKind = .concept

        @Option(
            help: """
                A pipeline folder, a folder holding safety_checker/, or a safety_checker folder (default: the checker \
                the set's provenance names).
                """)
        var checker: String?

        @Flag(help: "Add the concept disabled.")
        var disabled = false

        func validate() throws {
            if let threshold, !threshold.isFinite { throw ValidationError("--threshold must be finite") }
            if name.isEmpty { throw ValidationError("--name must not be empty") }
            let images = !(input.isEmpty && legacyImages == nil)
            if images && !text.isEmpty {
                throw ValidationError("give example images (--input/--inputs) or texts (--text/--texts), not both")
            }
            try text.validate(required: false)
            if text.isEmpty && !images { throw InputOptions.missing }
            if images && threshold == nil { throw ValidationError("--threshold is required with images") }
        }

        func run() throws {
            if !text.isEmpty { return try runText() }
            let threshold = self.threshold ?? 0  // validate() requires it with images
            let url = URL(fileURLWithPath: set)
            let existing = FileManager.default.fileExists(atPath: url.path) ? try ConceptSet.load(url: url) : nil
            let model = try VarAudit.Concepts.checker(checker, for: existing, setPath: set)
            var target: ConceptSet
            if let existing {
                target = existing
            } else {
                target = ConceptSet(
                    name: url.deletingPathExtension().lastPathComponent,
                    provenance: ConceptSetProvenance(
                        source: model.weightsURL.path, sha256: try Digest.sha256(fileAt: model.weightsURL),
                        note: "embeddings made with this checker by varaudit concepts add"),
                    concepts: [], source: url.path)
            }
            if target.concepts.contains(where: { $0.name == name }) {
                throw RuntimeError("\(set) already has a concept named \(name)")
            }
            let files = try input.urls(legacyDirectories: legacyImages.map { [$0] } ?? [])
            let units = try VarAudit.Concepts.embed(files, with: model, what: "embed").map(l2Normalized)
            var mean = [Float](repeating: 0, count: model.embeddingSize)
            for u in units { for i in mean.indices { mean[i] += u[i] / Float(units.count) } }
            target.concepts.append(
                Concept(name: name, kind: kind, threshold: threshold, enabled: !disabled, embedding: mean))
            try target.validate(embeddingSize: model.embeddingSize)
            try target.write(to: url)
            print("added \(kind.rawValue) \(name) to \(set) from \(files.count) image\(files.count == 1 ? "" : "s")")
        }

        /// The text path: mean of the normalized text embeddings of `--clip`, with the model recorded.
        func runText() throws {
            let url = URL(fileURLWithPath: set)
            let existing = FileManager.default.fileExists(atPath: url.path) ? try ConceptSet.load(url: url) : nil
            let model = try checker.map { try SafetyChecker(directory: URL(fileURLWithPath: $0)) }
            let embedded = try text.embed(normalize: true)
            let hash = try embedded.weightsSHA256()
            if let recorded = existing?.provenance?.textModelSHA256, recorded != hash {
                let place = existing?.provenance?.textModel.map { " (\($0))" } ?? ""
                throw RuntimeError(
                    "\(set): its text concepts were embedded by the CLIP model with weights SHA-256 \(recorded)"
                        + "\(place), but \(embedded.weights.path) has SHA-256 \(hash): embeddings of different CLIP "
                        + "models are not comparable")
            }
            if let size = existing?.embeddingSize { try embedded.requireDimension(size, for: "the concept set \(set)") }
            if let model { try embedded.requireDimension(model.embeddingSize, for: "the checker's projection") }
            var target =
                existing
                ?? ConceptSet(name: url.deletingPathExtension().lastPathComponent, concepts: [], source: url.path)
            if target.concepts.contains(where: { $0.name == name }) {
                throw RuntimeError("\(set) already has a concept named \(name)")
            }
            var provenance: ConceptSetProvenance
            if let p = target.provenance {
                provenance = p
            } else if let model {
                provenance = ConceptSetProvenance(
                    source: model.weightsURL.path, sha256: try Digest.sha256(fileAt: model.weightsURL),
                    note: "embeddings made with this checker and text concepts with a CLIP text tower by "
                        + "varaudit concepts add")
            } else {
                provenance = ConceptSetProvenance(
                    source: embedded.weights.path, sha256: hash,
                    note: "text concepts embedded by this CLIP model's text tower by varaudit concepts add --text")
            }
            provenance.textModel = embedded.weights.path
            provenance.textModelSHA256 = hash
            target.provenance = provenance
            let count = embedded.texts.count
            var mean = [Float](repeating: 0, count: embedded.dimension)
            for r in 0..<count {
                for (i, v) in embedded.row(r).enumerated() { mean[i] += v / Float(count) }
            }
            target.concepts.append(
                Concept(
                    name: name, kind: kind, threshold: threshold ?? Self.defaultTextThreshold, enabled: !disabled,
                    embedding: mean))
            try target.validate(embeddingSize: model?.embeddingSize)
            try target.write(to: url)
            print("added \(kind.rawValue) \(name) to \(set) from \(count) text\(count == 1 ? "" : "s")")
        }
    }

    /// `concepts calibrate`: per-concept thresholds from labelled images.
    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pick per-concept thresholds from labelled images and report precision, recall and ROC AUC.",
            discussion: """
                Images directly in --positives are positives for every concept; images in a subfolder named \
                after a concept are positives for that concept only (and for the overall figures). Without \
                --target-fpr each threshold maximizes TPR - FPR (Youden's J), halfway between the two \
                similarities that separate best; with it, the threshold is the lowest that flags at most that \
                fraction of the negatives. Overall figures run the whole checker (with the special-care \
                adjustment) at the new thresholds. The set is rewritten only with --write.
                """
        )

        @Option(help: "The concept-set file.")
        var set: String

        @Option(
            help: """
                A pipeline folder, a folder holding safety_checker/, or a safety_checker folder (default: the checker \
                the set's provenance names).
                """)
        var checker: String?

        @Option(help: "Folder of images that should be flagged (subfolders named after concepts label them).")
        var positives: String

        @Option(help: "Folder of images that should not be flagged.")
        var negatives: String

        @Option(help: "Largest acceptable false-positive rate per concept, in [0, 1].")
        var targetFpr: Double?

        @Flag(help: "Write the new thresholds into the set file.")
        var write = false

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            if let f = targetFpr, !(f >= 0 && f <= 1) { throw ValidationError("--target-fpr must be in [0, 1]") }
        }

        func run() throws {
            let url = URL(fileURLWithPath: set)
            let conceptSet = try ConceptSet.load(url: url)
            let model = try VarAudit.Concepts.checker(checker, for: conceptSet, setPath: set)
            _ = try model.scorer(concepts: conceptSet)  // sizes match
            let posDir = URL(fileURLWithPath: positives)
            var labelled: [LabelledEmbedding] = []
            let unlabelled = try ImageFiles.list(in: posDir)
            for (u, e) in zip(unlabelled, try VarAudit.Concepts.embed(unlabelled, with: model, what: "positives")) {
                labelled.append(LabelledEmbedding(embedding: e, concept: nil, label: u.path))
            }
            for sub in VarAudit.Concepts.subfolders(of: posDir) {
                let concept = sub.lastPathComponent
                let files = try ImageFiles.list(in: sub)
                for (u, e) in zip(files, try VarAudit.Concepts.embed(files, with: model, what: concept)) {
                    labelled.append(LabelledEmbedding(embedding: e, concept: concept, label: u.path))
                }
            }
            let negFiles = try ImageFiles.list(in: URL(fileURLWithPath: negatives))
            let negs = try VarAudit.Concepts.embed(negFiles, with: model, what: "negatives")
            if labelled.isEmpty || negs.isEmpty {
                throw ValidationError(
                    "calibration needs positive and negative images (found \(labelled.count) and \(negs.count))")
            }
            let report = try ThresholdCalibrator.calibrate(
                set: conceptSet, positives: labelled, negatives: negs, targetFPR: targetFpr)
            if write { try report.calibrated.write(to: url) }
            func metrics(_ m: DetectionMetrics) -> [String: Any] {
                func opt(_ d: Double?) -> Any { d.map { $0 as Any } ?? NSNull() }
                return [
                    "positives": m.positives, "negatives": m.negatives, "true_positives": m.truePositives,
                    "false_positives": m.falsePositives, "precision": opt(m.precision), "recall": opt(m.recall),
                    "false_positive_rate": opt(m.falsePositiveRate), "roc_auc": opt(m.rocAUC),
                ]
            }
            if json {
                let rows: [[String: Any]] = report.concepts.map { c in
                    [
                        "name": c.name, "kind": c.kind.rawValue, "old_threshold": shortestDouble(c.oldThreshold),
                        "threshold": shortestDouble(c.newThreshold), "metrics": metrics(c.metrics),
                    ]
                }
                return try printJSON([
                    "set": set, "written": write, "target_fpr": targetFpr.map { $0 as Any } ?? NSNull(),
                    "concepts": rows,
                    "overall": metrics(report.overall),
                ])
            }
            let f = VarAudit.Concepts.format
            print("calibration of \(set) on \(labelled.count) positives and \(negs.count) negatives")
            print("  kind     name          old       new     precision recall  FPR    ROC AUC")
            for c in report.concepts {
                let m = c.metrics
                print(
                    "  \(c.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))"
                        + "\(c.name.padding(toLength: max(13, c.name.count + 1), withPad: " ", startingAt: 0))"
                        + String(format: "%-9.4f %-9.4f ", c.oldThreshold, c.newThreshold)
                        + "\(f(m.precision).padding(toLength: 10, withPad: " ", startingAt: 0))"
                        + "\(f(m.recall).padding(toLength: 8, withPad: " ", startingAt: 0))"
                        + "\(f(m.falsePositiveRate).padding(toLength: 7, withPad: " ", startingAt: 0))\(f(m.rocAUC))")
            }
            let o = report.overall
            print(
                "  overall: precision \(f(o.precision)), recall \(f(o.recall)), FPR \(f(o.falsePositiveRate)), "
                    + "ROC AUC \(f(o.rocAUC))")
            print(write ? "wrote \(set)" : "not written (use --write)")
        }
    }
}

extension ConceptKind: ExpressibleByArgument {}

/// A Float as the double nearest its shortest decimal text (0.01, not 0.009999999776482582), for JSON output.
private func shortestDouble(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }
