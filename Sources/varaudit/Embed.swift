import ArgumentParser
import Checkpoints
import Foundation
import Imaging
import Networks
import Tensors

extension VarAudit {
    /// `varaudit embed`: CLIP image embeddings of images, as a `.npy` matrix.
    struct Embed: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Embed images with a CLIP image encoder; writes float32 [N, projection_dim] to a .npy file.",
            discussion: """
                Rows are in input order: every --image in the order given, then the images of --images DIR \
                sorted by file name (.png, .jpg, .jpeg). The values are the encoder's raw image_embeds (as \
                the image-variations pipeline conditions on them) unless --normalize asks for unit L2 rows. \
                Nothing is written unless every image was embedded.
                """
        )

        @Option(help: "Encoder folder (config.json + weights) or a diffusers pipeline folder (its image_encoder/).")
        var encoder: String

        @Option(name: .customLong("image"), help: "An image file; repeat for several.")
        var images: [String] = []

        @Option(name: .customLong("images"), help: "A folder of images (sorted by name).")
        var imagesDirectory: String?

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
            if images.isEmpty && imagesDirectory == nil { throw ValidationError("give --image FILE or --images DIR") }
            if batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        }

        func run() throws {
            let inputs = try images + imageFiles(in: imagesDirectory)
            guard !inputs.isEmpty else { throw ValidationError("no images in \(imagesDirectory ?? "")") }
            let loaded = try CLIPVisionEncoder.load(directory: URL(fileURLWithPath: encoder))
            let size = loaded.config.imageSize
            let settings = loaded.preprocessor.map(CLIPProcessorSettings.init) ?? .square(size)
            var rows: [Tensor] = []
            let started = Date()
            for start in stride(from: 0, to: inputs.count, by: batch) {
                let chunk = inputs[start..<min(start + batch, inputs.count)]
                let pixels = try concat(
                    chunk.map { path in
                        let image = try RGBImage.load(contentsOf: URL(fileURLWithPath: path), maxPixels: maxPixels)
                        let x = preprocess == .seed
                            ? try Preprocess.seed(image, size: size)
                            : try Preprocess.clip(image, settings: settings)
                        guard x.shape == [3, size, size] else {
                            throw ValidationError(
                                "\(path): clip preprocessing gives \(x.shape), but the encoder takes \(size)×\(size)")
                        }
                        return try x.reshaped([1, 3, size, size])
                    }, axis: 0)
                var embeds = try loaded.encoder(pixels).imageEmbeds
                if normalize { embeds = try l2Normalized(embeds) }
                rows.append(embeds)
                if inputs.count > batch {
                    let done = start + chunk.count
                    let rate = Double(done) / max(Date().timeIntervalSince(started), 1e-9)
                    progress("embed \(done)/\(inputs.count) (\(String(format: "%.1f", rate)) images/s)")
                }
            }
            let matrix = try concat(rows, axis: 0)
            try writeAtomically(to: out) { try NPY.write(matrix, to: $0) }
            FileHandle.standardError.write(Data("wrote \(out) \(matrix.shape)\n".utf8))
        }
    }
}

/// The image files (.png, .jpg, .jpeg) directly in `directory`, sorted by name; none when `directory` is nil.
func imageFiles(in directory: String?) throws -> [String] {
    guard let directory else { return [] }
    let names: [String]
    do {
        names = try FileManager.default.contentsOfDirectory(atPath: directory)
    } catch {
        throw ValidationError("\(directory): cannot list folder: \(error.localizedDescription)")
    }
    let extensions: Set<String> = ["png", "jpg", "jpeg"]
    return names.filter { !$0.hasPrefix(".") && extensions.contains(($0 as NSString).pathExtension.lowercased()) }
        .sorted()
        .map { (directory as NSString).appendingPathComponent($0) }
}

/// Rows of `[N, D]` scaled to unit L2 norm (`x / max(‖x‖, 1e-12)`, as `F.normalize`).
func l2Normalized(_ x: Tensor) throws -> Tensor {
    guard x.rank == 2 else { throw TensorError("l2Normalized", "expected [N, D], got \(x.shape)") }
    let d = x.shape[1]
    var out = x
    out.withUnsafeMutableBufferPointer { p in
        for r in 0..<x.shape[0] {
            var sum: Float = 0
            for i in 0..<d { sum += p[r * d + i] * p[r * d + i] }
            let inv = 1 / max(sum.squareRoot(), 1e-12)
            for i in 0..<d { p[r * d + i] *= inv }
        }
    }
    return out
}

/// Writes through a temporary file in the same folder, renamed over `path` only when `write` succeeds.
func writeAtomically(to path: String, _ write: (URL) throws -> Void) throws {
    let target = URL(fileURLWithPath: path)
    let temp = target.deletingLastPathComponent()
        .appendingPathComponent(".\(target.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
    do {
        try write(temp)
        if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
        try FileManager.default.moveItem(at: temp, to: target)
    } catch {
        try? FileManager.default.removeItem(at: temp)
        throw error
    }
}
