import Checkpoints
import Foundation
import Imaging
import Tensors
import TestSupport
import Testing

/// `--weights f32|f16` on `generate` and `audit` with the tiny golden pipeline.
@Suite(.serialized)
struct WeightsCLITests {
    static let model = Fixtures.url("pipeline/tiny-a")

    func generate(_ out: URL, model: URL = model, _ extra: [String] = []) throws -> ToolRun {
        try Fixtures.runTool(
            [
                "generate", "--model", model.path, "--input", Fixtures.url("photos/coffee.png").path,
                "--variations", "2", "--steps", "4", "--seed", "42", "--scheduler", "euler-a", "--out", out.path,
            ] + extra)
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func generateWithFloat16WeightsStaysCloseToFloat32() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = dir.appendingPathComponent("f32")
        let half = dir.appendingPathComponent("f16")
        #expect(try generate(full).status == 0)
        let run = try generate(half, ["--weights", "f16"])
        #expect(run.status == 0, "\(run.stderr)")
        var diffs: [Int] = []
        for k in 0..<2 {
            let a = try RGBImage.load(contentsOf: full.appendingPathComponent("coffee-\(k).png"))
            let b = try RGBImage.load(contentsOf: half.appendingPathComponent("coffee-\(k).png"))
            diffs += zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }
            let halfText = try readPNGText(half.appendingPathComponent("coffee-\(k).png"))
            let fullText = try readPNGText(full.appendingPathComponent("coffee-\(k).png"))
            #expect(json(halfText["parameters"] ?? "")["weights"] as? String == "f16")
            #expect(json(fullText["parameters"] ?? "")["weights"] == nil)
        }
        #expect(Double(diffs.filter { $0 <= 2 }.count) >= 0.99 * Double(diffs.count))
        let manifest = json(try String(contentsOf: half.appendingPathComponent("manifest.json"), encoding: .utf8))
        #expect((manifest["parameters"] as? [String: Any])?["weights"] as? String == "f16")
        // The folder belongs to the float16 run: float32 weights there are refused.
        let other = try generate(half)
        #expect(other.status != 0)
        #expect(other.stderr.contains("manifest.json"))
    }

    @Test func badWeightsValueNamesTheOption() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try generate(dir, ["--weights", "f8"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("--weights") && run.stderr.contains("f8"), "\(run.stderr)")
        for command in ["generate", "audit", "bench"] {
            let help = try Fixtures.runTool([command, "--help"])
            #expect(help.stdout.contains("--weights <f32|f16>"), "\(command)")
        }
    }

    /// A copy of tiny-a whose UNet also has a diffusers `variant="fp16"` file.
    func modelWithFp16UNet(in dir: URL) throws -> URL {
        let fm = FileManager.default
        let model = try Fixtures.pipelineCopy(at: dir.appendingPathComponent("model"), replacing: "unet")
        let unet = model.appendingPathComponent("unet")
        for name in try fm.contentsOfDirectory(atPath: Self.model.appendingPathComponent("unet").path) {
            try fm.copyItem(
                at: Self.model.appendingPathComponent("unet/\(name)"), to: unet.appendingPathComponent(name))
        }
        let tensors = try SafeTensorsFile(url: unet.appendingPathComponent("diffusion_pytorch_model.safetensors"))
            .loadAll()
        try SafeTensorsWriter.write(
            tensors, dtype: .float16, to: unet.appendingPathComponent("diffusion_pytorch_model.fp16.safetensors"))
        return model
    }

    @Test func auditRecordsThePrecisionAndRefusesAnotherOnResume() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try modelWithFp16UNet(in: dir)
        let db = dir.appendingPathComponent("audit.sqlite")
        func audit(_ extra: [String]) throws -> ToolRun {
            try Fixtures.runTool(
                [
                    "audit", "--model", model.path, "--input", Fixtures.url("photos/coffee.png").path,
                    "--variations", "1", "--steps", "2", "--seed", "42", "--db", db.path, "--json",
                ] + extra)
        }
        let full = try audit([])
        #expect(full.status == 0, "\(full.stderr)")
        let refused = try audit(["--weights", "f16"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains(#"weight_precision: "f32" → "f16""#), "\(refused.stderr)")
        #expect(refused.stderr.contains("weights of unet differ"), "\(refused.stderr)")
        let half = try audit(["--weights", "f16", "--new-run"])
        #expect(half.status == 0, "\(half.stderr)")
        // Resuming the float16 run with float16 weights finds it done.
        let again = try audit(["--weights", "f16"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("already audited"))

        let a = json(full.stdout)
        let b = json(half.stdout)
        #expect((a["parameters"] as? [String: Any])?["weight_precision"] as? String == "f32")
        #expect((b["parameters"] as? [String: Any])?["weight_precision"] as? String == "f16")
        // The recorded weight file (and its SHA-256) is the one loaded: the fp16 variant for float16.
        let unetA = try #require((a["weights"] as? [String: [String: Any]])?["unet"])
        let unetB = try #require((b["weights"] as? [String: [String: Any]])?["unet"])
        #expect((unetA["file"] as? String)?.hasSuffix("unet/diffusion_pytorch_model.safetensors") == true)
        #expect((unetB["file"] as? String)?.hasSuffix("unet/diffusion_pytorch_model.fp16.safetensors") == true)
        #expect(unetA["sha256"] as? String != unetB["sha256"] as? String)
        let vaeA = (a["weights"] as? [String: [String: Any]])?["vae"]?["sha256"] as? String
        #expect(vaeA != nil && vaeA == (b["weights"] as? [String: [String: Any]])?["vae"]?["sha256"] as? String)
    }
}
