import ArgumentParser
import Checkpoints
import Foundation
import Imaging
import Tensors

extension VarAudit {
    /// `varaudit preprocess`: turns images into the CLIP image encoder's input tensor.
    struct PreprocessImages: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "preprocess",
            abstract: "Preprocess images into a CLIP encoder input tensor [N, 3, S, S] saved as .npy.",
            discussion: """
                seed: the model card's recipe (our default): squash to S×S with bicubic without \
                antialiasing, then CLIP mean/std — matches torchvision. clip: transformers' CLIPImageProcessor \
                (shortest-edge antialiased bicubic, centre crop), optionally configured by a \
                preprocessor_config.json.
                """
        )

        @Option(name: .customLong("image"), help: "An input image (PNG or JPEG); repeat for several.")
        var images: [String] = []

        @Option(help: "Preprocessing: seed or clip.")
        var mode: PreprocessMode = .seed

        @Option(help: "Output side S for seed mode (the encoder's image_size).")
        var size = 224

        @Option(help: "A transformers preprocessor_config.json for clip mode (default: the lambdalabs settings).")
        var preprocessorConfig: String?

        @Option(help: "Largest accepted image, in pixels.")
        var maxPixels = RGBImage.defaultMaxPixels

        @Option(help: "Output .npy file (float32).")
        var out: String

        func validate() throws {
            if images.isEmpty { throw ValidationError("give at least one --image") }
            if size < 1 { throw ValidationError("--size must be positive, got \(size)") }
        }

        func run() throws {
            let settings =
                try preprocessorConfig.map {
                    CLIPProcessorSettings(try CLIPPreprocessorConfig.load(url: URL(fileURLWithPath: $0)))
                } ?? CLIPProcessorSettings()
            var batch: [Tensor] = []
            for (i, path) in images.enumerated() {
                let image = try RGBImage.load(contentsOf: URL(fileURLWithPath: path), maxPixels: maxPixels)
                let x: Tensor
                switch mode {
                case .seed: x = try Preprocess.seed(image, size: size)
                case .clip: x = try Preprocess.clip(image, settings: settings)
                }
                batch.append(try x.reshaped([1] + x.shape))
                if images.count > 4 { progress("preprocess \(i + 1)/\(images.count)") }
            }
            guard batch.allSatisfy({ $0.shape == batch[0].shape }) else {
                throw ValidationError("images preprocess to different sizes \(batch.map(\.shape)); use a crop")
            }
            let stacked = try concat(batch, axis: 0)
            try AtomicFile.write(to: URL(fileURLWithPath: out)) { try NPY.write(stacked, to: $0) }
            print("wrote \(out) \(stacked.shape)")
        }
    }
}

extension PreprocessMode: ExpressibleByArgument {}

/// Writes a progress line to stderr.
func progress(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
