import Checkpoints
import Foundation
import Imaging
import Tensors
import TestSupport
import Testing

/// `generate` with a safety checker in the model folder: the tiny pipeline's networks plus the fixture checker
/// (`Tests/Fixtures/safety/checker`) with its concept thresholds moved so that every output is flagged, or none.
struct GenerateSafetyTests {
    /// A pipeline folder: tiny-a's components, and a safety checker whose concept thresholds are all `threshold`.
    func pipeline(in dir: URL, threshold: Float) throws -> URL {
        let root = dir.appendingPathComponent("model")
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        for name in ["image_encoder", "unet", "vae", "scheduler"] {
            try fm.createSymbolicLink(
                at: root.appendingPathComponent(name), withDestinationURL: Fixtures.url("pipeline/tiny-a/\(name)"))
        }
        try fm.createSymbolicLink(
            at: root.appendingPathComponent("feature_extractor"),
            withDestinationURL: Fixtures.url("safety/checker/feature_extractor"))
        let checker = root.appendingPathComponent("safety_checker")
        try fm.createDirectory(at: checker, withIntermediateDirectories: true)
        try fm.copyItem(
            at: Fixtures.url("safety/checker/safety_checker/config.json"),
            to: checker.appendingPathComponent("config.json"))
        var tensors = try SafeTensorsFile(url: Fixtures.url("safety/checker/safety_checker/model.safetensors"))
            .loadAll()
        for key in ["concept_embeds_weights", "special_care_embeds_weights"] {
            let n = tensors[key]?.count ?? 0
            tensors[key] = Tensor(repeating: key.hasPrefix("special") ? 2 : threshold, shape: [n])
        }
        try SafeTensorsWriter.write(tensors, to: checker.appendingPathComponent("model.safetensors"))
        let index = """
            {"_class_name": "StableDiffusionImageVariationPipeline",
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
             "scheduler": ["diffusers", "PNDMScheduler"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
            """
        try Data(index.utf8).write(to: root.appendingPathComponent("model_index.json"))
        return root
    }

    func run(_ model: URL, out: URL, extra: [String] = []) throws -> ToolRun {
        try Fixtures.runTool(
            [
                "generate", "--model", model.path, "--input", Fixtures.url("photos/coffee.png").path,
                "--variations", "2", "--steps", "4", "--seed", "42", "--out", out.path,
            ] + extra)
    }

    func manifestSafety(_ out: URL) throws -> [[String: Any]] {
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any]
        let inputs = manifest?["inputs"] as? [[String: Any]] ?? []
        return inputs.first?["safety"] as? [[String: Any]] ?? []
    }

    @Test func flaggedOutputsAreBlackedOrKeptAndRecorded() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let flagAll = try pipeline(in: dir.appendingPathComponent("all"), threshold: -2)
        let black = dir.appendingPathComponent("black")
        let r1 = try run(flagAll, out: black)
        #expect(r1.status == 0, "\(r1.stderr)")
        #expect(r1.stderr.contains("flagged"))
        let verdicts = try manifestSafety(black)
        #expect(verdicts.count == 2)
        #expect(verdicts.allSatisfy { $0["flagged"] as? Bool == true })
        #expect((verdicts.first?["concepts"] as? [[String: Any]])?.isEmpty == false)
        let blackImage = try RGBImage.load(contentsOf: black.appendingPathComponent("coffee-0.png"))
        #expect(blackImage.pixels.allSatisfy { $0 == 0 })

        // --on-unsafe keep writes diffusers' image unchanged; --no-safety records no verdicts.
        let keep = dir.appendingPathComponent("keep")
        #expect(try run(flagAll, out: keep, extra: ["--on-unsafe", "keep"]).status == 0)
        let kept = try RGBImage.load(contentsOf: keep.appendingPathComponent("coffee-0.png"))
        let reference = try RGBImage.load(contentsOf: Fixtures.url("pipeline/tiny-a-expected/pndm/coffee-0.png"))
        #expect(zip(kept.pixels, reference.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 2 })
        let off = dir.appendingPathComponent("off")
        #expect(try run(flagAll, out: off, extra: ["--no-safety"]).status == 0)
        #expect(try manifestSafety(off).isEmpty)
    }

    @Test func unflaggedOutputsAreUnchanged() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try pipeline(in: dir, threshold: 2)
        let out = dir.appendingPathComponent("out")
        let r = try run(model, out: out)
        #expect(r.status == 0, "\(r.stderr)")
        let verdicts = try manifestSafety(out)
        #expect(verdicts.count == 2 && verdicts.allSatisfy { $0["flagged"] as? Bool == false })
        let image = try RGBImage.load(contentsOf: out.appendingPathComponent("coffee-1.png"))
        let reference = try RGBImage.load(contentsOf: Fixtures.url("pipeline/tiny-a-expected/pndm/coffee-1.png"))
        #expect(zip(image.pixels, reference.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 2 })
    }
}
