import Foundation
import Imaging
import TestSupport
import Testing

/// `varaudit generate` on the tiny golden pipeline (`tools/fixtures/make_pipeline.py`).
struct GenerateTests {
    func generate(_ out: URL, scheduler: String = "euler-a", seed: String = "42") throws -> ToolRun {
        try Fixtures.runTool([
            "generate", "--model", Fixtures.url("pipeline/tiny-a").path,
            "--input", Fixtures.url("photos/coffee.png").path, "--input", Fixtures.url("photos/rocket.jpg").path,
            "--variations", "2", "--steps", "4", "--guidance", "3", "--seed", seed, "--scheduler", scheduler,
            "--out", out.path,
        ])
    }

    @Test func writesDiffusersImagesManifestAndResumes() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try generate(dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("step 4/4"))
        for stem in ["coffee", "rocket"] {
            for k in 0..<2 {
                let ours = try RGBImage.load(contentsOf: dir.appendingPathComponent("\(stem)-\(k).png"))
                let ref = try RGBImage.load(
                    contentsOf: Fixtures.url("pipeline/tiny-a-expected/euler-a/\(stem)-\(k).png"))
                let worst = zip(ours.pixels, ref.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
                #expect(worst <= 2, "\(stem)-\(k)")
                let text = try readPNGText(dir.appendingPathComponent("\(stem)-\(k).png"))
                let params =
                    try JSONSerialization.jsonObject(with: Data((text["parameters"] ?? "").utf8)) as? [String: Any]
                #expect(params?["seed"] as? Int == 42)
                #expect(params?["variation"] as? Int == k)
            }
        }
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as? [String: Any]
        let inputs = manifest?["inputs"] as? [[String: Any]] ?? []
        #expect(inputs.count == 2)
        #expect((manifest?["parameters"] as? [String: Any])?["scheduler"] as? String == "euler-a")

        // A second run with the same parameters finds everything done and rewrites nothing.
        let png = dir.appendingPathComponent("coffee-0.png")
        let before = try FileManager.default.attributesOfItem(atPath: png.path)[.modificationDate] as? Date
        let again = try generate(dir)
        #expect(again.status == 0)
        #expect(again.stderr.contains("already done"))
        let after = try FileManager.default.attributesOfItem(atPath: png.path)[.modificationDate] as? Date
        #expect(before == after)

        // A lost output is made again; other parameters in the same folder are refused.
        try FileManager.default.removeItem(at: png)
        #expect(try generate(dir).status == 0)
        #expect(FileManager.default.fileExists(atPath: png.path))
        let other = try generate(dir, seed: "7")
        #expect(other.status != 0)
        #expect(other.stderr.contains("manifest.json"))
    }

    @Test func badArgumentsAreRefused() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let height = try Fixtures.runTool([
            "generate", "--model", Fixtures.url("pipeline/tiny-a").path, "--input",
            Fixtures.url("photos/coffee.png").path, "--height", "12", "--out", dir.path,
        ])
        #expect(height.status != 0)
        #expect(height.stderr.contains("--height"))
        let model = try Fixtures.runTool([
            "generate", "--model", dir.path, "--input", Fixtures.url("photos/coffee.png").path, "--out", dir.path,
        ])
        #expect(model.status != 0)
        #expect(model.stderr.contains("model_index.json"))
        let scheduler = try Fixtures.runTool([
            "generate", "--model", Fixtures.url("pipeline/tiny-a").path, "--input",
            Fixtures.url("photos/coffee.png").path, "--scheduler", "heun", "--out", dir.path,
        ])
        #expect(scheduler.status != 0)
        #expect(scheduler.stderr.contains("heun"))
    }
}
