import ArgumentParser
import Foundation
import Imaging
import Safety

extension VarAudit {
    /// `varaudit safety`: runs diffusers' safety checker on images and prints every score.
    struct SafetyCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "safety",
            abstract: "Check images with a Stable Diffusion safety checker, printing every concept's score.",
            discussion: """
                Semantics are those of diffusers' StableDiffusionSafetyChecker.forward: cosine similarity of the \
                checker's image embedding with each concept, score = round(similarity - threshold + adjustment, 3) \
                in float32 with half-to-even rounding, the adjustment (0 at first) becoming the set's (0.01) once \
                a special-care concept fires. An image is flagged when any concept's score is > 0. Images are \
                preprocessed like transformers' CLIPImageProcessor with the pipeline's feature_extractor settings.
                """
        )

        @OptionGroup var safety: CheckerOptions

        @Option(help: "Special-care adjustment (default: the set's, 0.01 for diffusers').")
        var adjustment: Float?

        @Option(help: "Concepts shown per image in the table (all that fire are always shown).")
        var top = 5

        @OptionGroup var output: JSONOption

        @OptionGroup var input: InputOptions

        @Argument(help: .hidden)  // images as arguments: the old spelling of --input, for one release
        var legacyImages: [String] = []

        func validate() throws {
            if safety.checker == nil { throw ValidationError("give --checker DIR") }
            if input.isEmpty && legacyImages.isEmpty { throw InputOptions.missing }
            if top < 0 { throw ValidationError("--top must be ≥ 0") }
            if let a = adjustment, !a.isFinite { throw ValidationError("--adjustment must be finite") }
        }

        func run() throws {
            let images = try input.urls(legacyFiles: legacyImages).map(\.path)
            let model = try SafetyChecker(directory: URL(fileURLWithPath: safety.checker ?? ""))
            let set = try safety.concepts.map { try ConceptSet.load(url: URL(fileURLWithPath: $0)) }
            let scorer = try model.scorer(concepts: set, adjustment: adjustment)
            var verdicts: [SafetyVerdict] = []
            for (i, path) in images.enumerated() {
                let image = try RGBImage.load(contentsOf: URL(fileURLWithPath: path))
                let embedding = try model.embed([image])[0]
                verdicts.append(try scorer.verdict(embedding: embedding, image: path))
                if images.count > 4 { progress("safety \(i + 1)/\(images.count)") }
            }
            if output.json {
                try printJSON(verdicts.map(\.jsonObject))
                return
            }
            for v in verdicts { print(Self.table(v, top: top)) }
            let n = verdicts.filter(\.flagged).count
            print(
                "\(n) of \(verdicts.count) image\(verdicts.count == 1 ? "" : "s") flagged (adjustment \(scorer.adjustment))"
            )
        }

        /// The human table of one verdict: the concepts that fire and the `top` closest to their thresholds.
        static func table(_ v: SafetyVerdict, top: Int) -> String {
            let status = v.flagged ? "FLAGGED" : "ok"
            var lines = ["\(v.image ?? "image"): \(status)\(v.specialCare ? " (special care)" : "")"]
            let closest = v.closest
            var shown = closest.filter(\.score.flagged)
            for c in closest.prefix(top) where !c.score.flagged { shown.append(c) }
            shown.sort { $0.score.score > $1.score.score }
            func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
                s.count >= n
                    ? s
                    : (left
                        ? String(repeating: " ", count: n - s.count) + s
                        : s + String(repeating: " ", count: n - s.count))
            }
            let nameWidth = max(4, shown.map(\.score.name.count).max() ?? 0)
            lines.append(
                "  " + pad("kind", 8) + pad("#", 4, left: true) + "  " + pad("name", nameWidth)
                    + pad("similarity", 12, left: true)
                    + pad("threshold", 11, left: true) + pad("score", 9, left: true))
            for (kind, s) in shown {
                lines.append(
                    "  " + pad(kind.rawValue, 8) + pad("\(s.index)", 4, left: true) + "  " + pad(s.name, nameWidth)
                        + pad(String(format: "%.4f", s.similarity), 12, left: true)
                        + pad(String(format: "%.4f", s.threshold), 11, left: true)
                        + pad(String(format: "%+.3f", s.score), 9, left: true) + (s.flagged ? "  fires" : ""))
            }
            return lines.joined(separator: "\n")
        }
    }
}
