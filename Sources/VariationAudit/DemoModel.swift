import Checkpoints
import Foundation
import Networks
import Safety
import Tensors

/// The demo's pipeline folder: the SD v1 image-variations layout at a small size (64 px outputs, a 2-layer
/// CLIP ViT with 64-dimensional embeddings) with random weights, written as diffusers would save it. The safety
/// checker reuses the image encoder's tower (one CLIP pass serves both, as with the real checkpoint).
enum DemoModel {
    static let encoderConfig = """
        {"architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model",
         "hidden_act": "quick_gelu", "hidden_size": 128, "image_size": 64, "intermediate_size": 128,
         "layer_norm_eps": 1e-05, "num_attention_heads": 4, "num_channels": 3, "num_hidden_layers": 1,
         "patch_size": 64, "projection_dim": 64}
        """

    static let unetConfig = """
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.42.1", "act_fn": "silu",
         "attention_head_dim": 4, "block_out_channels": [32, 64], "center_input_sample": false,
         "cross_attention_dim": 64, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
         "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 1,
         "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 8, "out_channels": 4, "sample_size": 16,
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "use_linear_projection": false}
        """

    static let vaeConfig = """
        {"_class_name": "AutoencoderKL", "_diffusers_version": "0.42.1", "act_fn": "silu",
         "block_out_channels": [16, 32, 32],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"], "in_channels": 3,
         "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 8, "out_channels": 3, "sample_size": 64,
         "scaling_factor": 0.18215,
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
        """

    static let schedulerConfig = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.42.1", "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
         "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}
        """

    static let preprocessorConfig = """
        {"crop_size": {"height": 64, "width": 64}, "do_center_crop": true, "do_convert_rgb": true,
         "do_normalize": true, "do_rescale": true, "do_resize": true,
         "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
         "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
         "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 64}}
        """

    static let modelIndex = """
        {"_class_name": "StableDiffusionImageVariationPipeline", "_diffusers_version": "0.42.1",
         "feature_extractor": ["transformers", "CLIPImageProcessor"],
         "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
         "requires_safety_checker": true,
         "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
         "scheduler": ["diffusers", "PNDMScheduler"], "unet": ["diffusers", "UNet2DConditionModel"],
         "vae": ["diffusers", "AutoencoderKL"]}
        """

    static func checkerConfig() -> String {
        """
        {"model_type": "clip", "projection_dim": 64, "vision_config": \(encoderConfig)}
        """
    }

    /// Writes the pipeline folder (the checker's concepts come later, from `writeChecker`).
    static func write(to root: URL) throws {
        let fm = FileManager.default
        func file(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try file("model_index.json", modelIndex)
        try file("image_encoder/config.json", encoderConfig)
        try file("unet/config.json", unetConfig)
        try file("vae/config.json", vaeConfig)
        try file("scheduler/scheduler_config.json", schedulerConfig)
        try file("feature_extractor/preprocessor_config.json", preprocessorConfig)

        let encoder = WeightBinder.random(seed: 11)
        _ = try CLIPVisionEncoder(
            config: try CLIPVisionConfig.load(url: root.appendingPathComponent("image_encoder/config.json")),
            weights: encoder)
        // A random CLIP tower maps all pictures into a narrow cone. This one is made to act as a random
        // projection of the whole picture instead (one 64×64 patch; the class token attends evenly, through zero
        // query and key weights, to itself and the patch; no position embedding, no MLP output), so that
        // different pictures get different embeddings and near-copies nearly the same.
        var tensors = encoder.madeUpTensors
        // Patch weights constant over 8×8 blocks: the projection sees the picture at 8×8 resolution, so JPEG
        // noise, resizing and small crops barely move the embedding.
        for (key, t) in tensors where key.hasSuffix("patch_embedding.weight") {
            let (o, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
            var v = t.scalars
            for oi in 0..<o {
                for ci in 0..<c {
                    for y in 0..<h {
                        for x in 0..<w {
                            let base = (oi * c + ci) * h * w
                            v[base + y * w + x] = v[base + (y / 8 * 8) * w + (x / 8 * 8)]
                        }
                    }
                }
            }
            // Zero mean over the picture per output and colour channel: the embedding follows the layout of the
            // picture, not its overall brightness (which all pictures share after CLIP's normalization).
            for base in stride(from: 0, to: v.count, by: h * w) {
                let mean = v[base..<(base + h * w)].reduce(0, +) / Float(h * w)
                for i in base..<(base + h * w) { v[i] -= mean }
            }
            tensors[key] = try Tensor(shape: t.shape, values: v)
        }
        for (key, t) in tensors
        where key.hasSuffix("position_embedding.weight") || key.hasSuffix("q_proj.weight")
            || key.hasSuffix("k_proj.weight") || key.hasSuffix("mlp.fc2.weight")
        {
            tensors[key] = Tensor(zeros: t.shape)
        }
        try SafeTensorsWriter.write(tensors, to: root.appendingPathComponent("image_encoder/model.safetensors"))
        let unet = WeightBinder.random(seed: 12)
        _ = try UNet2DConditionModel(
            config: try UNet2DConditionConfig.load(url: root.appendingPathComponent("unet/config.json")), weights: unet)
        // Random cross-attention barely moves the output, so every input's variation k would be the same picture
        // (they start from the same noise). Strengthened 150×, the image embedding steers the outputs.
        var unetTensors = unet.madeUpTensors
        for (key, t) in unetTensors where key.contains("attn2.to_out.0.weight") {
            unetTensors[key] = map(t) { $0 * 150 }
        }
        try SafeTensorsWriter.write(
            unetTensors, to: root.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        let vae = WeightBinder.random(seed: 13)
        _ = try VAEDecoder(
            config: try AutoencoderKLConfig.load(url: root.appendingPathComponent("vae/config.json")), weights: vae)
        try SafeTensorsWriter.write(
            vae.madeUpTensors, to: root.appendingPathComponent("vae/diffusion_pytorch_model.safetensors"))
    }

    /// Writes `safety_checker/`: the image encoder's tower and projection under the checker's (transformers 4)
    /// key layout, and `concepts` as its concept and special-care tensors.
    static func writeChecker(at root: URL, concepts: ConceptSet) throws {
        let dir = root.appendingPathComponent("safety_checker", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(checkerConfig().utf8).write(to: dir.appendingPathComponent("config.json"))
        let encoder = try SafeTensorsFile(url: root.appendingPathComponent("image_encoder/model.safetensors"))
        var tensors: [String: Tensor] = [:]
        for key in encoder.keys {
            tensors[key.hasPrefix("vision_model.") ? "vision_model." + key : key] = try encoder.tensor(named: key)
        }
        for kind in [ConceptKind.concept, .special] {
            let list = concepts.indexed(kind).map(\.concept)
            let d = list.first?.embedding.count ?? 64
            let embeds = try Tensor(shape: [list.count, d], values: list.flatMap(\.embedding))
            let weights = try Tensor(shape: [list.count], values: list.map(\.threshold))
            let name = kind == .concept ? "concept_embeds" : "special_care_embeds"
            tensors[name] = embeds
            tensors[name + "_weights"] = weights
        }
        try SafeTensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
    }
}
