import ArgumentParser
import Checkpoints
import Foundation
import Networks
import Tensors
import VariationAudit

/// Texts and the CLIP model that embeds them, as `embed`, `tokenize`, `concepts add` and `index search` take
/// them: `--clip DIR` with `--text TEXT` (repeatable) and `--texts FILE` (one text per line).
struct TextOptions: ParsableArguments {
    @Option(
        help: """
            A CLIP model folder (config.json with text_config, model.safetensors or pytorch_model.bin, tokenizer \
            files), e.g. openai/clip-vit-large-patch14, or a CLIPTextModelWithProjection folder.
            """)
    var clip: String?

    @Option(name: .customLong("text"), help: "A text; repeat for several.")
    var texts: [String] = []

    @Option(name: .customLong("texts"), help: "A UTF-8 file of texts, one per line (after the --text values).")
    var textsFile: String?

    /// Whether no text was given.
    var isEmpty: Bool { texts.isEmpty && textsFile == nil }

    /// Usage checks for a command in text mode: `--clip` is required with texts and useless without.
    func validate(required: Bool) throws {
        if isEmpty {
            if required { throw ValidationError("give --text TEXT (repeatable) or --texts FILE") }
            if clip != nil { throw ValidationError("--clip embeds texts: give --text TEXT or --texts FILE") }
            return
        }
        if clip == nil { throw ValidationError("--text and --texts need --clip DIR (the CLIP model that embeds them)") }
    }

    /// The `--text` values, then every line of `--texts` (a final line break adds no empty text).
    func all() throws -> [String] {
        var out = texts
        if let textsFile {
            let content: String
            do {
                content = try String(contentsOf: URL(fileURLWithPath: textsFile), encoding: .utf8)
            } catch {
                throw RuntimeError("\(textsFile): cannot read as UTF-8 text: \(error.localizedDescription)")
            }
            // "\r\n" is one Character: split on both line ends.
            var lines = content.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
                .map(String.init)
            if lines.last == "" { lines.removeLast() }
            if lines.isEmpty { throw RuntimeError("\(textsFile): no texts in the file") }
            out += lines
        }
        return out
    }

    /// Loads the CLIP text encoder of `--clip` (which `validate` made sure is given).
    func model() throws -> LoadedCLIPTextEncoder {
        guard let clip else { throw ValidationError("give --clip DIR") }
        return try CLIPTextEncoder.load(directory: URL(fileURLWithPath: clip))
    }

    /// The texts' projected embeddings, one row each in order (L2-normalized with `normalize`).
    func embed(normalize: Bool) throws -> TextEmbeddings {
        let texts = try all()
        let loaded = try model()
        var rows = try loaded.embed(texts)
        if normalize { l2NormalizeRows(&rows) }
        return TextEmbeddings(
            texts: texts, rows: rows, clip: clip ?? "", weights: loaded.weightsURL,
            dimension: loaded.config.projectionDim)
    }
}

/// Text embeddings and where they came from.
struct TextEmbeddings {
    let texts: [String]
    /// `[texts, dimension]`.
    let rows: Tensor
    /// The `--clip` folder as given.
    let clip: String
    /// The CLIP weights file.
    let weights: URL
    /// The projection width.
    let dimension: Int

    /// SHA-256 of the weights file: what identifies the CLIP model in a concept set's provenance.
    func weightsSHA256() throws -> String { try Digest.sha256(fileAt: weights) }

    /// Row `i` as an array.
    func row(_ i: Int) -> [Float] {
        rows.withUnsafeBufferPointer { Array($0[(i * dimension)..<((i + 1) * dimension)]) }
    }

    /// Throws unless the embeddings have `expected` dimensions, naming the model and what expects the size.
    func requireDimension(_ expected: Int, for what: String) throws {
        guard dimension == expected else {
            throw RuntimeError(
                "the CLIP model in \(clip) projects texts to \(dimension) dimensions, but \(what) has \(expected): "
                    + "use the CLIP model that made its embeddings")
        }
    }
}

extension VarAudit {
    /// `varaudit tokenize`: CLIP token ids of texts.
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the CLIP token ids of texts (as transformers' CLIPTokenizer gives them).",
            discussion: """
                Each text becomes its start token, its BPE tokens (cut to fit), its end token and padding, \
                max_position_embeddings ids in all (77 for CLIP ViT-L/14), one line of ids per text. --clip may \
                also be a folder of tokenizer files alone (then 77 ids). With --json: [{"text", "ids", \
                "tokens"}], tokens being the BPE pieces of the text without start, end and padding.
                """
        )

        @OptionGroup var text: TextOptions

        @OptionGroup var output: JSONOption

        func validate() throws { try text.validate(required: true) }

        func run() throws {
            let dir = URL(fileURLWithPath: text.clip ?? "")
            let configURL = dir.appendingPathComponent("config.json")
            let maxLength =
                FileManager.default.fileExists(atPath: configURL.path)
                ? try CLIPTextConfig.load(url: configURL).maxPositionEmbeddings : 77
            let tokenizer = try CLIPTokenizer.load(directory: dir, maxLength: maxLength)
            let texts = try text.all()
            if output.json {
                try printJSON(
                    texts.map { t -> [String: Any] in
                        ["text": t, "ids": tokenizer.encode(t), "tokens": tokenizer.tokens(t)]
                    })
                return
            }
            for t in texts { print(tokenizer.encode(t).map(String.init).joined(separator: " ")) }
        }
    }
}
