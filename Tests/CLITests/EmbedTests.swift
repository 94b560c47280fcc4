import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// `varaudit embed` against transformers' embeddings of the fixture photos (`make_clip.py`), 1e-4 relative.
struct EmbedTests {
    let photos = ["chelsea.png", "coffee.png", "rocket.jpg"]  // the order of the fixture's rows

    func expected(_ model: String, _ key: String) throws -> Tensor {
        try Fixtures.tensors("clip/\(model)/expected.safetensors").tensor(named: key)
    }

    @Test func embedsImagesThenFolderInOrder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("e.npy").path
        let run = try Fixtures.runTool([
            "embed", "--encoder", Fixtures.url("clip/tiny-a").path, "--image", Fixtures.url("photos/rocket.jpg").path,
            "--images", Fixtures.url("photos").path, "--batch", "2", "--out", out,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let got = try NPY.read(url: URL(fileURLWithPath: out))
        let ref = try expected("tiny-a", "embeds_seed")
        #expect(got.shape == [4, 48])
        let d = 48
        let rows = got.scalars
        let refRows = ref.scalars
        // Row 0 is rocket (--image), rows 1... the folder sorted by name.
        #expect(maxRelativeError(Array(rows[0..<d]), reference: Array(refRows[(2 * d)..<(3 * d)])) <= 1e-4)
        #expect(maxRelativeError(Array(rows[d...]), reference: refRows) <= 1e-4)
    }

    @Test func clipPreprocessingNormalizedFromBinWeightsInAPipelineFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("pipe")
        try FileManager.default.createDirectory(at: pipeline, withIntermediateDirectories: true)
        try Data(
            #"{"_class_name": "StableDiffusionImageVariationPipeline", "image_encoder": ["transformers", "CLIPVisionModelWithProjection"]}"#
                .utf8
        )
        .write(to: pipeline.appendingPathComponent("model_index.json"))
        try FileManager.default.createSymbolicLink(
            at: pipeline.appendingPathComponent("image_encoder"), withDestinationURL: Fixtures.url("clip/tiny-b"))
        let out = dir.appendingPathComponent("e.npy").path
        let run = try Fixtures.runTool([
            "embed", "--encoder", pipeline.path, "--images", Fixtures.url("photos").path,
            "--preprocess", "clip", "--normalize", "--out", out,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let got = try NPY.read(url: URL(fileURLWithPath: out))
        let ref = try expected("tiny-b", "embeds_clip").scalars
        #expect(got.shape == [3, 32])
        var normalized = ref
        for r in 0..<3 {
            let row = ref[(r * 32)..<((r + 1) * 32)]
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<32 { normalized[r * 32 + i] = ref[r * 32 + i] / norm }
        }
        #expect(maxRelativeError(got.scalars, reference: normalized) <= 1e-4)
    }

    @Test func unreadableImageIsNamedAndNothingIsWritten() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("e.npy").path
        let bad = Fixtures.url("images/hostile/truncated.png").path
        let run = try Fixtures.runTool([
            "embed", "--encoder", Fixtures.url("clip/tiny-a").path, "--image", Fixtures.url("photos/chelsea.png").path,
            "--image", bad, "--out", out,
        ])
        #expect(run.status != 0)
        #expect(run.stderr.contains(bad))
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let noEncoder = try Fixtures.runTool(["embed", "--encoder", dir.path, "--image", bad, "--out", out])
        #expect(noEncoder.status != 0)
        #expect(noEncoder.stderr.contains(dir.path))
    }
}
