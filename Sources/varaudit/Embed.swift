import ArgumentParser
import Checkpoints
import Foundation
import Imaging
import Networks
import Tensors

extension VarAudit {
    /// `varaudit embed`: CLIP image embeddings of images, or CLIP text embeddings of texts, as a `.npy` matrix.
    struct Embed: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Embed images (or texts) with CLIP; writes float32 [N, projection_dim] to a .npy file.",
            discussion: """
                Rows are in input order: every --input in the order given, then the images of each --inputs DIR \
                sorted by file name (.png, .jpg, .jpeg). The values are the encoder's raw image_embeds (as \
                the image-variations pipeline conditions on them) unless --normalize asks for unit L2 rows. \
                Nothing is written unless every image was embedded. Texts instead of images: --clip DIR with \
                --text TEXT (repeatable) and/or --texts FILE (one per line); rows are the --text values, then the \
                file's lines, embedded by CLIP's text tower and text_projection (text_embeds).
                """
        )

        @Option(help: "Encoder folder (config.json + weights) or a diffusers pipeline folder (its image_encoder/).")
        var encoder: String?

        @OptionGroup var text: TextOptions

        @OptionGroup var input: InputOptions

        @Option(name: .customLong("image"), help: .hidden)  // the old spelling of --input, for one release
        var legacyImages: [String] = []

        @Option(name: .customLong("images"), help: .hidden)  // the old spelling of --inputs, for one release
        var legacyDirectories: [String] = []

        @Option(help: "Preprocessing: seed (the model card's recipe, default) or clip (CLIPImageProcessor).")
        var preprocess: PreprocessMode = .seed

        @Flag(help: "L2-normalize each embedding.")
        var normalize = false

        @Option(help: "Images per forward pass.")
        var batch = 8

        @Option(help: "Largest accepted image, in pixels.")
        var maxPixels = RGBImage.defaultMaxPixels

        @Option(help: "Output .npy file.")
        var out: String

        func validate() throws {
            let images = !(input.isEmpty && legacyImages.isEmpty && legacyDirectories.isEmpty)
            if images && !text.isEmpty {
                throw ValidationError("give images (--input/--inputs) or texts (--text/--texts), not both")
            }
            try text.validate(required: false)
            if !text.isEmpty && encoder != nil {
                throw ValidationError("texts are embedded by --clip DIR; --encoder is the image encoder")
            }
            if text.isEmpty && encoder == nil {
                throw ValidationError("give --encoder DIR with images, or --clip DIR with --text/--texts")
            }
            if text.isEmpty && !images { throw InputOptions.missing }
            if batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        }

        func run() throws {
            if !text.isEmpty {
                let embedded = try text.embed(normalize: normalize)
                try AtomicFile.write(to: URL(fileURLWithPath: out)) { try NPY.write(embedded.rows, to: $0) }
                FileHandle.standardError.write(Data("wrote \(out) \(embedded.rows.shape)\n".utf8))
                return
            }
            let inputs = try input.urls(legacyFiles: legacyImages, legacyDirectories: legacyDirectories).map(\.path)
            let loaded = try CLIPVisionEncoder.load(directory: URL(fileURLWithPath: encoder ?? ""))
            let size = loaded.config.imageSize
            let settings = loaded.preprocessor.map(CLIPProcessorSettings.init) ?? .square(size)
            var rows: [Tensor] = []
            let started = Date()
            for start in stride(from: 0, to: inputs.count, by: batch) {
                let chunk = inputs[start..<min(start + batch, inputs.count)]
                let pixels = try concat(
                    chunk.map { path in
                        let image = try RGBImage.load(contentsOf: URL(fileURLWithPath: path), maxPixels: maxPixels)
                        let x =
                            preprocess == .seed
                            ? try Preprocess.seed(image, size: size)
                            : try Preprocess.clip(image, settings: settings)
                        guard x.shape == [3, size, size] else {
                            throw RuntimeError(
                                "\(path): clip preprocessing gives \(x.shape), but the encoder takes \(size)×\(size)")
                        }
                        return try x.reshaped([1, 3, size, size])
                    }, axis: 0)
                var embeds = try loaded.encoder(pixels).imageEmbeds
                if normalize { l2NormalizeRows(&embeds) }
                rows.append(embeds)
                if inputs.count > batch {
                    let done = start + chunk.count
                    let rate = Double(done) / max(Date().timeIntervalSince(started), 1e-9)
                    progress("embed \(done)/\(inputs.count) (\(String(format: "%.1f", rate)) images/s)")
                }
            }
            let matrix = try concat(rows, axis: 0)
            try AtomicFile.write(to: URL(fileURLWithPath: out)) { try NPY.write(matrix, to: $0) }
            FileHandle.standardError.write(Data("wrote \(out) \(matrix.shape)\n".utf8))
        }
    }
}
