import ArgumentParser
import Diffusion
import Foundation
import Imaging
import Safety
import Tensors
import VariationAudit

extension VarAudit {
    /// `varaudit generate`: N variations of each input image, seed for seed as diffusers.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate image variations with a diffusers StableDiffusionImageVariationPipeline folder.",
            discussion: """
                Writes OUT/<input stem>-<k>.png for k = 0..N-1 (the parameters in a PNG text chunk) and \
                OUT/manifest.json. Each input gets a fresh torch-compatible generator seeded with --seed, so \
                the outputs equal diffusers' pipeline called once per input with num_images_per_prompt=N, \
                generator=torch.Generator("cpu").manual_seed(SEED) and the model card's preprocessed tensor. \
                When the model folder has a safety_checker (and no --no-safety), every output is checked as \
                diffusers does; flagged outputs are handled by --on-unsafe (black, as diffusers; blur; keep) \
                and every verdict with all its scores goes to the manifest. \
                A run that stopped resumes: inputs already finished (listed in the manifest, files present) \
                are skipped; a different set of parameters in the same folder is refused.
                """
        )

        @OptionGroup var modelOption: ModelOption

        @OptionGroup var input: InputOptions

        @OptionGroup var generation: GenerationOptions

        @OptionGroup var weights: WeightsOption

        @Flag(help: "Do not run the safety checker on the outputs.")
        var noSafety = false

        @Option(help: "What to do with a flagged output: black (as diffusers), blur or keep.")
        var onUnsafe: UnsafeImagePolicy = .black

        @Option(help: "Largest accepted input image, in pixels.")
        var maxPixels = RGBImage.defaultMaxPixels

        @Option(help: "Output folder.")
        var out: String

        func validate() throws {
            if input.isEmpty { throw InputOptions.missing }
        }

        func run() throws {
            let files = try input.urls()
            var c = GenerationRun.Configuration(
                model: modelOption.url, inputs: files, output: URL(fileURLWithPath: out))
            c.pipeline = generation.configuration
            c.safety = !noSafety
            c.onUnsafe = onUnsafe
            c.maxPixels = maxPixels
            c.weights = weights.precision
            try GenerationRun(c).run { event in
                switch event {
                case .loaded(let seconds):
                    progress("loaded \(modelOption.model) in \(String(format: "%.1f", seconds)) s")
                case .skipped(let position, let total, let input):
                    progress("[\(position + 1)/\(total)] \(input.path): already done, skipped")
                case .step(let position, let total, let name, let step, let steps, let perStep):
                    progress(
                        String(
                            format: "[%d/%d] %@ step %d/%d  %.2f s/step  ETA %.0f s", position + 1, total, name, step,
                            steps, perStep, perStep * Double(steps - step)))
                case .flagged(let output, let policy):
                    progress("\(output): flagged by the safety checker (\(policy.rawValue))")
                case .finished(_, let outputs):
                    print(outputs.map(\.path).joined(separator: "\n"))
                }
            }
        }
    }
}

extension UnsafeImagePolicy: ExpressibleByArgument {}
