import Checkpoints
import Diffusion
import Foundation
import Imaging
import Tensors
import TestSupport
import Testing

/// The whole pipeline against diffusers' StableDiffusionImageVariationPipeline on two tiny random-weight
/// pipelines (`tools/fixtures/make_pipeline.py`: they differ in block count, channels, heads, layers per block,
/// cross-attention size and weight format), every scheduler, the fixture photos, seed 42, 2 variations,
/// 4 steps, guidance 3. Tolerances: initial noise 1e-6 absolute; latents after every step 1e-4 relative
/// (elements under 10% of the largest magnitude measured against that 10%);
/// images within 2/255 per pixel and 0.5/255 on average.
struct PipelineTests {
    static let cases: [(String, SchedulerKind)] = ["tiny-a", "tiny-b"].flatMap { p in
        SchedulerKind.allCases.map { (p, $0) }
    }

    @Test(arguments: cases)
    func matchesDiffusers(_ c: (String, SchedulerKind)) throws {
        let (name, kind) = c
        let pipeline = try ImageVariationPipeline.load(directory: Fixtures.url("pipeline/\(name)"))
        let expectedDir = Fixtures.url("pipeline/\(name)-expected/\(kind.rawValue)")
        let reference = try SafeTensorsFile(url: expectedDir.appendingPathComponent("latents.safetensors"))
        var config = ImageVariationPipeline.Configuration()
        config.variations = 2
        config.steps = 4
        config.guidance = 3
        config.seed = 42
        config.scheduler = kind
        for photo in ["chelsea.png", "coffee.png", "rocket.jpg"] {
            let stem = String(photo.split(separator: ".")[0])
            let image = try RGBImage.load(contentsOf: Fixtures.url("photos/\(photo)"))
            var stepLatents: [Tensor] = []
            let out = try pipeline.generate(image, configuration: config) { step in
                stepLatents.append(step.latents)
                return true
            }
            let noise = try reference.tensor(named: "\(stem).initial")
            #expect(maxAbsDifference(out.initialNoise.scalars, noise.scalars) <= 1e-6, "\(name) \(kind) \(stem) noise")
            // diffusers' callback skips the scheduler's warm-up calls (PNDM's first, repeated timestep).
            let expectedSteps = reference.keys.filter { $0.hasPrefix("\(stem).step") }.count
            let warmup = stepLatents.count - expectedSteps
            #expect(warmup == (kind == .pndm ? 1 : 0))
            for (i, latents) in stepLatents.dropFirst(warmup).enumerated() {
                let ref = try reference.tensor(named: "\(stem).step\(i)")
                // Relative to each element, with elements below 10% of the largest magnitude judged against that
                // 10% (float32 round-off through a UNet, guidance and the scheduler is ~1e-5 absolute on values ~10).
                let floor = 0.1 * (ref.scalars.map { abs($0) }.max() ?? 1)
                #expect(relativeError(latents, ref, floor: floor) <= 1e-4, "\(name) \(kind) \(stem) step \(i)")
            }
            for (k, generated) in out.images.enumerated() {
                let expected = try RGBImage.load(contentsOf: expectedDir.appendingPathComponent("\(stem)-\(k).png"))
                #expect(generated.width == expected.width && generated.height == expected.height)
                let diffs = zip(generated.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
                let worst = diffs.max() ?? 255
                let mean = Double(diffs.reduce(0, +)) / Double(max(diffs.count, 1))
                #expect(worst <= 2, "\(name) \(kind) \(stem)-\(k): max \(worst)/255")
                #expect(mean <= 0.5, "\(name) \(kind) \(stem)-\(k): mean \(mean)/255")
            }
        }
    }

    @Test func cancellingStopsTheRun() throws {
        let pipeline = try ImageVariationPipeline.load(directory: Fixtures.url("pipeline/tiny-a"))
        var config = ImageVariationPipeline.Configuration()
        config.variations = 1
        config.steps = 3
        let image = try RGBImage.load(contentsOf: Fixtures.url("photos/chelsea.png"))
        var calls = 0
        #expect(throws: DiffusionError.self) {
            _ = try pipeline.generate(image, configuration: config) { _ in
                calls += 1
                return false
            }
        }
        #expect(calls == 1)
        config.height = 12
        #expect(throws: DiffusionError.self) { _ = try pipeline.generate(image, configuration: config) }
    }

    @Test func postprocessRoundsHalfToEven() throws {
        // Expected values from torch/numpy: (x/2 + 0.5).clamp(0, 1) · 255, np.round (127.5 → 128, 254.5 → 254).
        let values: [Float] = [-1, 1, 0, -0.5, 0.37, 3, -3, 0.99607843, 1 / 255 - 1, 3 / 255 - 1]
        let expected: [UInt8] = [0, 255, 128, 64, 175, 255, 0, 254, 0, 1]
        let t = try Tensor(shape: [1, 3, 1, values.count], values: values + values + values)
        let image = try ImageVariationPipeline.postprocess(t)[0]
        #expect(stride(from: 0, to: image.pixels.count, by: 3).map { image.pixels[$0] } == expected)
    }

    /// diffusers' pipeline treats `sample_size < 64` from a pre-0.9.0 config as 64.
    @Test func oldSmallSampleSizeMeans64() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        let source = Fixtures.url("pipeline/tiny-a")
        try Fixtures.pipelineCopy(at: dir, replacing: "unet")
        let unet = dir.appendingPathComponent("unet")
        for name in try fm.contentsOfDirectory(atPath: source.appendingPathComponent("unet").path)
        where name != "config.json" {
            try fm.createSymbolicLink(
                at: unet.appendingPathComponent(name), withDestinationURL: source.appendingPathComponent("unet/\(name)")
            )
        }
        let config = try String(contentsOf: source.appendingPathComponent("unet/config.json"), encoding: .utf8)
        let old = config.replacingOccurrences(
            of: #""_diffusers_version": "0.42.1""#, with: #""_diffusers_version": "0.8.0""#)
        #expect(old != config)
        try old.write(to: unet.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let current = try ImageVariationPipeline.load(directory: source)
        let patched = try ImageVariationPipeline.load(directory: dir)
        #expect(current.defaultSize == 8 * current.vaeScaleFactor)
        #expect(patched.defaultSize == 64 * patched.vaeScaleFactor)
    }
}
