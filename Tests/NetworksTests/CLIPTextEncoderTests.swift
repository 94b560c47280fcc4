import Checkpoints
import Foundation
import Networks
import Tensors
import TestSupport
import Testing

/// CLIPTokenizer against transformers 5's `CLIPTokenizer` on the corpus of `tokenizer-cases.json`
/// (`tools/fixtures/make_clip_text.py`): ids must be identical.
struct CLIPTokenizerTests {
    struct Case: Decodable {
        let text: String
        let a: [Int]
        let b: [Int]
    }

    struct Cases: Decodable {
        let maxLength: Int
        let pad: [String: Int]
        let cases: [Case]
        enum CodingKeys: String, CodingKey {
            case maxLength = "max_length"
            case pad, cases
        }
    }

    static func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Fixtures.url("clip-text/tokenizer-cases.json")))
    }

    /// tiny-a reads tokenizer.json; tiny-b vocab.json + merges.txt + special_tokens_map.json with pad "!".
    @Test(arguments: ["a", "b"])
    func idsMatchTransformers(_ which: String) throws {
        let all = try Self.cases()
        #expect(all.cases.count >= 200)
        let tokenizer = try CLIPTokenizer.load(
            directory: Fixtures.url("clip-text/tiny-\(which)"), maxLength: all.maxLength)
        let pad = try #require(all.pad[which])
        #expect(tokenizer.padTokenId == pad)
        var mismatches = 0
        for c in all.cases {
            var expected = which == "a" ? c.a : c.b
            expected += [Int](repeating: pad, count: max(all.maxLength - expected.count, 0))
            let got = tokenizer.encode(c.text)
            if got != expected {
                mismatches += 1
                Issue.record("tiny-\(which) \(c.text.debugDescription): got \(got), expected \(expected)")
            }
        }
        #expect(mismatches == 0)
    }

    @Test func specialTokensAndPadding() throws {
        let a = try CLIPTokenizer.load(directory: Fixtures.url("clip-text/tiny-a"))
        #expect(a.bosToken == "<|startoftext|>" && a.eosToken == "<|endoftext|>" && a.padToken == "<|endoftext|>")
        #expect(a.padTokenId == a.eosTokenId && a.bosTokenId == a.eosTokenId - 1)
        let b = try CLIPTokenizer.load(directory: Fixtures.url("clip-text/tiny-b"), maxLength: 64)
        #expect(b.padToken == "!" && b.padTokenId == 0)
        let ids = b.encode("a photo of a cat")
        #expect(ids.count == 64 && ids.first == b.bosTokenId && ids.last == 0)
        #expect(a.tokens("a photo of a cat").joined(separator: " ").contains("</w>"))
        // Truncation keeps the end token.
        let long = a.encode(String(repeating: "word ", count: 200))
        #expect(long.count == 77 && long.last == a.eosTokenId && long.dropLast().last != a.eosTokenId)
    }

    @Test func badFilesAreErrorsNamingTheFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: CheckpointError.self) { try CLIPTokenizer.load(directory: dir) }
        for f in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(
                at: Fixtures.url("clip-text/tiny-b/\(f)"), to: dir.appendingPathComponent(f))
        }
        try Data(#"{"pad_token": "no-such-token"}"#.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        do {
            _ = try CLIPTokenizer.load(directory: dir)
            Issue.record("an unknown pad token loaded")
        } catch let error as CheckpointError {
            #expect(error.file.hasSuffix("tokenizer_config.json") && error.key == "pad_token", "\(error)")
        }
        try Data("#version: 0.2\nzz qq\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("tokenizer_config.json"))
        #expect(throws: CheckpointError.self) { try CLIPTokenizer.load(directory: dir) }
    }
}

/// CLIPTextEncoder against transformers' CLIPTextModelWithProjection, end to end from strings, on two random
/// configs (`make_clip_text.py`): tiny-a (hidden 32, 2 layers, 4 heads, projection 24, quick_gelu, a CLIPModel
/// folder, eos_token_id 2) and tiny-b (hidden 24, 3 layers, 3 heads, projection 16, gelu, 64 positions, a
/// text-encoder folder). Tolerance: 1e-4 relative (floor: 1% of the largest reference magnitude).
struct CLIPTextEncoderTests {
    static let models = ["tiny-a", "tiny-b"]
    let tolerance: Float = 1e-4

    struct Expected: Decodable {
        let texts: [String]
    }

    @Test(arguments: models)
    func embeddingsFromStringsMatchTransformers(_ name: String) throws {
        let dir = Fixtures.url("clip-text/\(name)")
        let loaded = try CLIPTextEncoder.load(directory: dir)
        let ref = try Fixtures.tensors("clip-text/\(name)/expected.safetensors")
        let texts = try JSONDecoder().decode(
            Expected.self, from: Data(contentsOf: dir.appendingPathComponent("expected.json"))
        )
        .texts
        let ids = texts.map(loaded.tokenizer.encode)
        #expect(ids.joined().map(Float.init) == (try ref.tensor(named: "input_ids")).scalars)
        let (embeds, out) = try loaded.encoder(ids)
        let e = relativeError(embeds, try ref.tensor(named: "text_embeds"))
        let p = relativeError(out.pooled, try ref.tensor(named: "pooled"))
        let hiddenRef = try ref.tensor(named: "last_hidden_state")
        let rows = hiddenRef.shape[0]
        let hidden = try out.lastHiddenState.slice(batch: 0..<rows)
        let h = relativeError(hidden, hiddenRef)
        print("\(name): text_embeds \(e), pooled \(p), last_hidden_state \(h) (max relative error)")
        #expect(e <= tolerance && p <= tolerance && h <= tolerance, "\(name): \(e) \(p) \(h)")
        // The convenience path gives the same rows.
        let again = try loaded.embed(texts, batch: 3)
        #expect(maxAbsDifference(again.scalars, embeds.scalars) <= 1e-6)
    }

    @Test func pooledPositionFollowsTheConfig() throws {
        let a = try CLIPTextEncoder.load(directory: Fixtures.url("clip-text/tiny-a")).encoder.tower
        #expect(a.config.eosTokenId == 2)
        #expect(a.pooledPosition([5, 9, 3, 9, 1]) == 1)  // the first highest id
        let b = try CLIPTextEncoder.load(directory: Fixtures.url("clip-text/tiny-b")).encoder.tower
        let eos = b.config.eosTokenId
        #expect(b.pooledPosition([5, 700, eos, 771, eos]) == 2)  // the first end token, not the highest id
    }

    @Test func weightBindingIsStrict() throws {
        let dir = Fixtures.url("clip-text/tiny-b")
        let config = try CLIPTextConfig.load(url: dir.appendingPathComponent("config.json"))
        var tensors = try loadTensorArchive(url: dir.appendingPathComponent("model.safetensors")).loadAll()
        tensors["extra.weight"] = Tensor(zeros: [2])
        let extra = WeightBinder(tensors: tensors, name: "tiny-b")
        _ = try CLIPTextEncoder(config: config, weights: extra)
        #expect(throws: CheckpointError.self) { try extra.finish() }
        tensors["extra.weight"] = nil
        tensors["text_projection.weight"] = nil
        #expect(throws: CheckpointError.self) {
            try CLIPTextEncoder(config: config, weights: WeightBinder(tensors: tensors, name: "tiny-b"))
        }
        var bad = config
        bad.hiddenSize = 32
        #expect(throws: CheckpointError.self) {
            try CLIPTextEncoder(config: bad, weights: WeightBinder(tensors: tensors, name: "tiny-b"))
        }
    }

    @Test func configReadsCompositeAndTextConfigs() throws {
        let a = try CLIPTextConfig.load(url: Fixtures.url("clip-text/tiny-a/config.json"))
        #expect(a.isComposite && a.hiddenSize == 32 && a.numHiddenLayers == 2 && a.numAttentionHeads == 4)
        #expect(a.projectionDim == 24 && a.hiddenAct == "quick_gelu" && a.maxPositionEmbeddings == 77)
        let b = try CLIPTextConfig.load(url: Fixtures.url("clip-text/tiny-b/config.json"))
        #expect(!b.isComposite && b.hiddenSize == 24 && b.projectionDim == 16 && b.hiddenAct == "gelu")
        #expect(b.layerNormEps == 1e-6 && b.maxPositionEmbeddings == 64)
        let defaults = try CLIPTextConfig.decode(Data("{}".utf8))
        #expect(defaults.vocabSize == 49408 && defaults.hiddenSize == 512 && defaults.eosTokenId == 49407)
        do {
            _ = try CLIPTextConfig.decode(Data(#"{"text_config": {"hidden_act": "relu"}}"#.utf8), source: "c.json")
            Issue.record("relu accepted")
        } catch let error as CheckpointError {
            #expect(error.file == "c.json" && error.key == "text_config.hidden_act", "\(error)")
        }
        #expect(throws: CheckpointError.self) {
            try CLIPTextConfig.decode(Data(#"{"hidden_size": 30, "num_attention_heads": 4}"#.utf8))
        }
    }

    @Test func textModelWithoutProjectionIsRefused() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Fixtures.url("clip-text/tiny-b")
        for f in ["config.json", "vocab.json", "merges.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        var tensors = try loadTensorArchive(url: src.appendingPathComponent("model.safetensors")).loadAll()
        tensors["text_projection.weight"] = nil
        try SafeTensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        do {
            _ = try CLIPTextEncoder.load(directory: dir)
            Issue.record("a text model without projection loaded")
        } catch let error as CheckpointError {
            #expect(error.key == "text_projection.weight", "\(error)")
        }
    }
}
