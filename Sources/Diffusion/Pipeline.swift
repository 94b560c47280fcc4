import Checkpoints
import Foundation
import Imaging
import Networks
import Tensors

/// The image-variations pipeline, matching diffusers' `StableDiffusionImageVariationPipeline.__call__`
/// fed the model card's tensor input: seed preprocessing → CLIP image encoder → embeddings
/// repeated N times → classifier-free guidance with an all-zero unconditional embedding (first half) when
/// guidance > 1 → latents `randn(N, 4, H/f, W/f) · init_noise_sigma` → scheduler loop → VAE decode of
/// `latents / scaling_factor` → `(x/2 + 0.5).clamp(0, 1)` → `round(x·255)` half-to-even → RGB8.
/// See docs/algorithms.md#image-variation-pipeline.
public struct ImageVariationPipeline: Sendable {
    /// One run's settings; every field has the default of `varaudit generate`.
    public struct Configuration: Sendable, Equatable {
        /// Variations per input image (`num_images_per_prompt`). Default 4.
        public var variations = 4
        /// Denoising steps (`num_inference_steps`). Default 50.
        public var steps = 50
        /// Classifier-free guidance scale; guidance is on when > 1. Default 3.0 (the model card's).
        public var guidance: Float = 3.0
        /// Seed of the torch-compatible CPU generator; each input image gets a fresh generator. Default 0.
        public var seed: UInt64 = 0
        /// Scheduler override; `nil` uses the model's `scheduler_config.json` class. Default nil.
        public var scheduler: SchedulerKind? = nil
        /// Output height and width in pixels (multiples of 8); `nil` = `unet.sample_size × vae scale factor`.
        public var height: Int? = nil
        public var width: Int? = nil
        /// DDIM's eta (ignored by the other schedulers, as diffusers does). Default 0.
        public var eta: Float = 0

        public init() {}
    }

    /// What the progress callback sees after each denoising step.
    public struct StepProgress: Sendable {
        /// Steps done (1-based) and the total.
        public let step: Int
        public let total: Int
        /// The scheduler timestep just used.
        public let timestep: Double
        /// The latents after this step `[N, C, h, w]`.
        public let latents: Tensor
    }

    /// The variations of one input image.
    public struct Output: Sendable {
        /// The N generated images, in generator order.
        public let images: [RGBImage]
        /// The encoder's image embedding of the input, `[1, projection_dim]` (not normalized).
        public let imageEmbedding: Tensor
        /// The initial latents (before `init_noise_sigma`) and the final ones.
        public let initialNoise: Tensor
        public let finalLatents: Tensor
    }

    public let directory: URL
    public let encoder: CLIPVisionEncoder
    public let encoderConfig: CLIPVisionConfig
    public let unet: UNet2DConditionModel
    public let unetConfig: UNet2DConditionConfig
    public let vae: VAEDecoder
    public let vaeConfig: AutoencoderKLConfig
    public let schedulerConfig: SchedulerConfig
    /// The `safety_checker` component folder, when the pipeline lists one.
    public let safetyCheckerDirectory: URL?

    /// A pipeline of networks built elsewhere (e.g. with made-up weights for benchmarks).
    public init(
        directory: URL, encoder: CLIPVisionEncoder, encoderConfig: CLIPVisionConfig, unet: UNet2DConditionModel,
        unetConfig: UNet2DConditionConfig, vae: VAEDecoder, vaeConfig: AutoencoderKLConfig,
        schedulerConfig: SchedulerConfig, safetyCheckerDirectory: URL? = nil
    ) {
        self.directory = directory
        self.encoder = encoder
        self.encoderConfig = encoderConfig
        self.unet = unet
        self.unetConfig = unetConfig
        self.vae = vae
        self.vaeConfig = vaeConfig
        self.schedulerConfig = schedulerConfig
        self.safetyCheckerDirectory = safetyCheckerDirectory
    }

    /// `2^(len(vae.block_out_channels) − 1)`.
    public var vaeScaleFactor: Int { 1 << max(vaeConfig.blockOutChannels.count - 1, 0) }
    /// Default output side: `unet.sample_size × vae scale factor`. Like diffusers' pipeline, a `sample_size`
    /// under 64 in a config written before diffusers 0.9.0 counts as 64 (those configs predate the key's meaning).
    public var defaultSize: Int {
        var sample = unetConfig.sampleSize ?? 64
        if sample < 64 && unetConfig.writtenBefore(0, 9) { sample = 64 }
        return sample * vaeScaleFactor
    }

    /// Loads a diffusers pipeline folder (`model_index.json` with `image_encoder`, `unet`, `vae`, `scheduler`);
    /// every component's weights are bound strictly. With `weights` float16, the networks keep their weight
    /// matrices in float16 (memory-mapped from the `fp16` variant files when present, else converted once) and
    /// widen them per layer call.
    public static func load(directory: URL, weights: WeightPrecision = .float32) throws -> ImageVariationPipeline {
        try load(folder: DiffusersPipelineFolder(url: directory), weights: weights)
    }

    /// Loads the pipeline of an already read `model_index.json`, its weight matrices in `weights` precision.
    public static func load(
        folder: DiffusersPipelineFolder, weights precision: WeightPrecision = .float32
    ) throws -> ImageVariationPipeline {
        let directory = folder.url
        func bind<T>(_ name: String, _ build: (WeightBinder) throws -> T) throws -> T {
            let binder = WeightBinder(try folder.weights(for: name, precision: precision), precision: precision)
            let network = try build(binder)
            try binder.finish()
            return network
        }
        let encoderConfig = try folder.imageEncoderConfig()
        let unetConfig = try folder.unetConfig()
        let vaeConfig = try folder.vaeConfig()
        guard unetConfig.crossAttentionDim.allSatisfy({ $0 == encoderConfig.projectionDim }) else {
            throw CheckpointError(
                file: try folder.component("unet").directory.appendingPathComponent("config.json").path,
                key: "cross_attention_dim",
                "\(unetConfig.crossAttentionDim) does not match the image encoder's projection_dim \(encoderConfig.projectionDim)"
            )
        }
        return ImageVariationPipeline(
            directory: directory,
            encoder: try bind("image_encoder") { try CLIPVisionEncoder(config: encoderConfig, weights: $0) },
            encoderConfig: encoderConfig,
            unet: try bind("unet") { try UNet2DConditionModel(config: unetConfig, weights: $0) },
            unetConfig: unetConfig,
            vae: try bind("vae") { try VAEDecoder(config: vaeConfig, weights: $0) },
            vaeConfig: vaeConfig,
            schedulerConfig: try folder.schedulerConfig(),
            safetyCheckerDirectory: folder.components["safety_checker"]?.directory)
    }

    /// The conditioning embedding of one image: seed preprocessing at the encoder's size, then `image_embeds`.
    public func imageEmbedding(_ image: RGBImage) throws -> Tensor {
        let pixels = try Preprocess.seed(image, size: encoderConfig.imageSize)
        return try encoder(pixels.reshaped([1] + pixels.shape)).imageEmbeds  // [1, D]
    }

    /// Generates `configuration.variations` images from `image`. `progress` is called after every step;
    /// returning `false` cancels (throws `DiffusionError.cancelled`).
    public func generate(
        _ image: RGBImage, configuration c: Configuration,
        progress: (StepProgress) -> Bool = { _ in true }
    ) throws -> Output {
        let height = c.height ?? defaultSize
        let width = c.width ?? defaultSize
        guard height > 0, width > 0, height % 8 == 0, width % 8 == 0 else {
            throw DiffusionError("height and width must be positive multiples of 8, got \(height)×\(width)")
        }
        guard c.variations >= 1, c.steps >= 1 else {
            throw DiffusionError("variations and steps must be at least 1, got \(c.variations) and \(c.steps)")
        }
        let n = c.variations
        let embedding = try imageEmbedding(image)  // [1, D]
        let d = encoderConfig.projectionDim
        let conditional = try concat([Tensor](repeating: embedding.reshaped([1, 1, d]), count: n), axis: 0)  // [n,1,D]
        let guided = c.guidance > 1
        let context = guided ? try concat([Tensor(zeros: [n, 1, d]), conditional], axis: 0) : conditional

        var scheduler = try makeScheduler(kind: c.scheduler, config: schedulerConfig, eta: c.eta)
        try scheduler.setTimesteps(c.steps)
        var random = TorchCPURandomSource(seed: c.seed)
        let shape = [n, unetConfig.inChannels, height / vaeScaleFactor, width / vaeScaleFactor]
        let noise = random.normal(shape: shape)
        var latents = scale(noise, scheduler.initNoiseSigma)
        let total = scheduler.timesteps.count
        for (i, t) in scheduler.timesteps.enumerated() {
            let input = guided ? try concat([latents, latents], axis: 0) : latents
            let scaled = try scheduler.scaleModelInput(input, timestep: t)
            var eps = try unet(scaled, timestep: scheduler.modelTimestep(t), encoderHiddenStates: context)
            if guided {
                let uncond = try eps.slice(batch: 0..<n)
                let cond = try eps.slice(batch: n..<(2 * n))
                eps = try add(uncond, scale(sub(cond, uncond), c.guidance))
            }
            latents = try scheduler.step(modelOutput: eps, timestep: t, sample: latents, random: &random)
            if !progress(StepProgress(step: i + 1, total: total, timestep: t, latents: latents)) {
                throw DiffusionError.cancelled
            }
        }
        let scaling = Float(vaeConfig.scalingFactor)
        let decoded = try vae.decode(map(latents) { $0 / scaling })  // [n, 3, H, W]
        return Output(
            images: try Self.postprocess(decoded), imageEmbedding: embedding, initialNoise: noise,
            finalLatents: latents)
    }

    /// diffusers' `postprocess(output_type="pil")`: `(x/2 + 0.5).clamp(0, 1)`, `·255`, round half to even.
    public static func postprocess(_ images: Tensor) throws -> [RGBImage] {
        guard images.rank == 4, images.shape[1] == 3 else {
            throw TensorError("postprocess", "expected [N, 3, H, W], got \(images.shape)")
        }
        let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        let values = images.scalars
        let plane = h * w
        return try (0..<n).map { b in
            var pixels = [UInt8](repeating: 0, count: plane * 3)
            for c in 0..<3 {
                let base = (b * 3 + c) * plane
                for i in 0..<plane {
                    let v = min(max(values[base + i] / 2 + 0.5, 0), 1)
                    pixels[i * 3 + c] = UInt8((v * 255).rounded(.toNearestOrEven))
                }
            }
            return try RGBImage(width: w, height: h, pixels: pixels)
        }
    }
}

extension DiffusionError {
    /// Thrown when a progress callback asks to stop.
    public static let cancelled = DiffusionError("generation cancelled")
}
