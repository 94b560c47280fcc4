import ArgumentParser
import Checkpoints
import Diffusion
import Foundation
import Imaging
import Networks
import Tensors

extension VarAudit {
    /// `varaudit bench`: times one component at full size with made-up weights.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a component at full SD v1 size with random weights (use a release build).",
            discussion: """
                Prints seconds per call: the minimum over --runs timed calls after one warm-up call, the \
                effective GFLOP/s (the reference operation count of one call — GEMMs, attention and every \
                convolution counted as direct convolution — divided by that time) and the peak RSS. \
                clip: ViT-L/14 image encoder on [batch, 3, 224, 224]. unet: one UNet call on latents \
                [batch, 4, size/8, size/8] (batch 2 = one guided step). step: one guided step with the \
                scheduler (UNet on both halves, guidance, PNDM update). vae: VAE decode to size×size. audit: one \
                variation end to end (encode, --steps steps, decode, and the CLIP pass of the checks). conv: each \
                3×3 convolution shape of the UNet and VAE at --size through each method (kernel selection data). \
                --weights f16 keeps every component's weight matrices in float16 (made up as float32 and rounded, \
                or the model's fp16 variant files), widened per layer call. \
                tools/bench/compare.py runs the same through PyTorch and OpenVINO and prints the ratios and each \
                side's peak RSS; tools/bench/generate.py times a whole generate process against diffusers'.
                """
        )

        enum Component: String, ExpressibleByArgument, CaseIterable {
            case clip, unet, step, vae, audit, index, parquet, conv
        }
        enum Preset: String, ExpressibleByArgument, CaseIterable { case sdV1 = "sd-v1" }

        @Option(help: "Component: \(Component.allCases.map(\.rawValue).joined(separator: ", ")).")
        var component: Component

        @Option(help: "Model sizes: sd-v1 (lambdalabs/sd-image-variations-diffusers).")
        var preset: Preset = .sdV1

        @Option(help: "A diffusers pipeline folder whose weights to time instead of random ones (memory-mapped).")
        var model: String?

        @Option(help: "Batch size (default: 1; the UNet's default is 2, one guided step).")
        var batch: Int?

        @Option(help: "Image side in pixels for unet and vae.")
        var size = 512

        @Option(help: "index: vectors to index (synthetic clustered unit vectors; see Index.swift).")
        var vectors = 1_000_000

        @Option(help: "index: vector dimension.")
        var dim = 768

        @Option(help: "parquet: rows of the generated metadata file.")
        var rows = 1_000_000

        @Option(help: "parquet: a parquet file to read and import instead of a generated one.")
        var file: String?

        @Option(help: "audit: denoising steps of the variation.")
        var steps = 50

        @Option(help: "Timed runs (the minimum is reported).")
        var runs = 3

        @Option(help: "Threads for BLAS and our kernels (default: all cores).")
        var threads: Int?

        @OptionGroup var weights: WeightsOption

        @Flag(
            help:
                "Print JSON: {\"component\", \"seconds\", \"runs\", \"batch\", \"size\", \"threads\", \"peak_rss_mb\"}."
        )
        var json = false

        func validate() throws {
            if runs < 1 { throw ValidationError("--runs must be at least 1") }
            if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
            if size < 8 || size % 8 != 0 {
                throw ValidationError("--size must be a positive multiple of 8, got \(size)")
            }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        }

        func run() throws {
            if component == .index { return try runIndexBenchmark() }
            if component == .parquet { return try runParquetBenchmark() }
            if let threads {
                kernelThreadCount = threads
            }
            if component == .conv { return try runConvolutionBenchmark() }
            let b = batch ?? (component == .unet ? 2 : 1)
            let call = try makeCall(batch: b)
            let (_, flops) = try FLOPCounter.measure { try call() }  // warm-up, counting operations
            var times: [Double] = []
            var busy: [Double] = []  // process CPU seconds per wall second of each call
            for _ in 0..<runs {
                let (start, cpuStart) = (DispatchTime.now().uptimeNanoseconds, processCPUSeconds())
                _ = try call()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                busy.append((processCPUSeconds() - cpuStart) / max(times[times.count - 1], 1e-9))
            }
            let best = times.min() ?? 0
            let cores = busy[times.firstIndex(of: best) ?? 0]
            let rss = peakResidentMegabytes()
            let gflops = flops / 1e9
            if json {
                try printJSON([
                    "component": component.rawValue, "preset": preset.rawValue, "seconds": best, "all_seconds": times,
                    "runs": runs, "batch": b, "size": component == .clip ? 224 : size, "gflop": gflops,
                    "gflop_per_second": best > 0 ? gflops / best : 0,
                    "threads": threads ?? kernelThreadCount, "peak_rss_mb": rss, "weights": model ?? "random",
                    "weight_precision": weights.precision.rawValue,
                    "cores_busy": cores, "rss_anon_mb": procStatusMegabytes("RssAnon"),
                    "rss_file_mb": procStatusMegabytes("RssFile"),
                ])
            } else {
                print(
                    String(
                        format: "%@ (%@, batch %d, %@ weights): %.4f s per call (min of %d, %.2f cores busy); %.1f "
                            + "GFLOP → %.1f GFLOP/s; peak RSS %.0f MB, of which now %.0f MB allocated and %.0f MB mapped from files",
                        component.rawValue, preset.rawValue, b, weights.precision.rawValue, best, runs, cores, gflops,
                        best > 0 ? gflops / best : 0, rss,
                        procStatusMegabytes("RssAnon"), procStatusMegabytes("RssFile")))
            }
        }

        /// The component's config and weights: from `--model`, or the preset with made-up weights.
        private func source<C>(
            _ component: String, preset: () throws -> C, config: (DiffusersPipelineFolder) throws -> C
        ) throws -> (C, WeightBinder) {
            let precision = weights.precision
            guard let model else { return (try preset(), .random(seed: 1, precision: precision)) }
            let folder = try DiffusersPipelineFolder(url: URL(fileURLWithPath: model))
            let archive = try folder.weights(for: component, precision: precision)
            return (try config(folder), WeightBinder(archive, precision: precision))
        }

        /// Builds the network and returns one timed call.
        private func makeCall(batch b: Int) throws -> () throws -> Tensor {
            switch component {
            case .clip:
                let (config, weights) = try source("image_encoder", preset: ModelPresets.clipViTL14) {
                    try $0.imageEncoderConfig()
                }
                let encoder = try CLIPVisionEncoder(config: config, weights: weights)
                let x = randomInput([b, 3, config.imageSize, config.imageSize])
                return { try encoder(x).imageEmbeds }
            case .unet:
                let (config, weights) = try source("unet", preset: ModelPresets.sdV1UNet) { try $0.unetConfig() }
                let unet = try UNet2DConditionModel(config: config, weights: weights)
                let x = randomInput([b, config.inChannels, size / 8, size / 8])
                let context = randomInput([b, 1, config.crossAttentionDim[0]])
                return { try unet(x, timestep: 500, encoderHiddenStates: context) }
            case .vae:
                let (config, weights) = try source("vae", preset: ModelPresets.sdV1VAE) { try $0.vaeConfig() }
                let vae = try VAEDecoder(config: config, weights: weights)
                let scale = 1 << (config.blockOutChannels.count - 1)
                let z = randomInput([b, config.latentChannels, size / scale, size / scale])
                return { try vae.decode(z) }
            case .step:
                let (config, weights) = try source("unet", preset: ModelPresets.sdV1UNet) { try $0.unetConfig() }
                let unet = try UNet2DConditionModel(config: config, weights: weights)
                let schedulerConfig =
                    try model.map {
                        try DiffusersPipelineFolder(url: URL(fileURLWithPath: $0)).schedulerConfig()
                    } ?? ModelPresets.sdV1Scheduler()
                let latents = randomInput([b, config.inChannels, size / 8, size / 8])
                let context = try concat(
                    [
                        Tensor(zeros: [b, 1, config.crossAttentionDim[0]]),
                        randomInput([b, 1, config.crossAttentionDim[0]]),
                    ],
                    axis: 0)
                return {
                    var scheduler = try makeScheduler(kind: nil, config: schedulerConfig, eta: 0)
                    try scheduler.setTimesteps(50)
                    var random = TorchCPURandomSource(seed: 0)
                    let t = scheduler.timesteps[0]
                    let input = try scheduler.scaleModelInput(try concat([latents, latents], axis: 0), timestep: t)
                    let eps = try unet(input, timestep: scheduler.modelTimestep(t), encoderHiddenStates: context)
                    let uncond = try eps.slice(batch: 0..<b)
                    let cond = try eps.slice(batch: b..<(2 * b))
                    let guided = try add(uncond, scale(sub(cond, uncond), 3))
                    return try scheduler.step(modelOutput: guided, timestep: t, sample: latents, random: &random)
                }
            case .audit:
                let pipeline = try benchPipeline()
                var settings = ImageVariationPipeline.Configuration()
                settings.variations = b
                settings.steps = steps
                settings.height = size
                settings.width = size
                let pixels = (0..<(size * size * 3)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 24) }
                let image = try RGBImage(width: size, height: size, pixels: pixels)
                let check = CLIPProcessorSettings.square(pipeline.encoderConfig.imageSize)
                return {
                    let output = try pipeline.generate(image, configuration: settings)
                    // The checks' CLIP pass (the safety checker's tower is the image encoder's).
                    let x = try concat(
                        output.images.map {
                            try Preprocess.clip($0, settings: check).reshaped([1] + [3, 224, 224])
                        }, axis: 0)
                    return try pipeline.encoder(x).imageEmbeds
                }
            case .index, .parquet, .conv:
                throw ValidationError("the \(component.rawValue) benchmark is not a timed call")
            }
        }
    }
}

extension VarAudit.Bench {
    /// The whole pipeline at the preset's sizes (or `--model`'s), with made-up weights unless `--model`.
    func benchPipeline() throws -> ImageVariationPipeline {
        let precision = weights.precision
        if let model {
            return try ImageVariationPipeline.load(directory: URL(fileURLWithPath: model), weights: precision)
        }
        let encoderConfig = try ModelPresets.clipViTL14()
        let unetConfig = try ModelPresets.sdV1UNet()
        let vaeConfig = try ModelPresets.sdV1VAE()
        return ImageVariationPipeline(
            directory: URL(fileURLWithPath: "<random sd-v1>"),
            encoder: try CLIPVisionEncoder(config: encoderConfig, weights: .random(seed: 1, precision: precision)),
            encoderConfig: encoderConfig,
            unet: try UNet2DConditionModel(config: unetConfig, weights: .random(seed: 2, precision: precision)),
            unetConfig: unetConfig,
            vae: try VAEDecoder(config: vaeConfig, weights: .random(seed: 3, precision: precision)),
            vaeConfig: vaeConfig,
            schedulerConfig: try ModelPresets.sdV1Scheduler())
    }
}

/// A deterministic input in [-1, 1).
func randomInput(_ shape: [Int]) -> Tensor {
    var state: UInt32 = 12345
    var t = Tensor(zeros: shape)
    t.withUnsafeMutableBufferPointer { p in
        for i in p.indices {
            state = state &* 1_664_525 &+ 1_013_904_223
            p[i] = Float(state >> 8) / Float(1 << 23) - 1
        }
    }
    return t
}

/// Peak resident set size of this process (`VmHWM`), in megabytes.
func peakResidentMegabytes() -> Double { procStatusMegabytes("VmHWM") }

/// A size field of `/proc/self/status` (e.g. `RssAnon`: allocated memory; `RssFile`: resident pages of mapped
/// files such as memory-mapped weights), in megabytes; 0 where unavailable.
func procStatusMegabytes(_ field: String) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}

/// CPU time used so far by all of this process's threads, in seconds.
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
