import Checkpoints
import Foundation

/// Configs of the full-size models, as published with lambdalabs/sd-image-variations-diffusers (v2.0):
/// an SD v1 UNet, the ft-MSE VAE and CLIP ViT-L/14. Used to build networks with made-up weights for
/// benchmarks and layout tests.
public enum ModelPresets {
    /// CLIP ViT-L/14 vision tower with projection (the `image_encoder`).
    public static func clipViTL14() throws -> CLIPVisionConfig {
        try CLIPVisionConfig.decode(Data(clipJSON.utf8), source: "<preset sd-v1 image_encoder>")
    }

    /// The SD v1 UNet (860M parameters).
    public static func sdV1UNet() throws -> UNet2DConditionConfig {
        try UNet2DConditionConfig.decode(Data(unetJSON.utf8), source: "<preset sd-v1 unet>")
    }

    /// The SD v1 `AutoencoderKL` (ft-MSE).
    public static func sdV1VAE() throws -> AutoencoderKLConfig {
        try AutoencoderKLConfig.decode(Data(vaeJSON.utf8), source: "<preset sd-v1 vae>")
    }

    /// The pipeline's `PNDMScheduler` (scaled-linear betas 0.00085…0.012, PRK steps skipped, offset 1).
    public static func sdV1Scheduler() throws -> SchedulerConfig {
        try SchedulerConfig.decode(Data(schedulerJSON.utf8), source: "<preset sd-v1 scheduler>")
    }

    static let schedulerJSON = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.9.0", "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
         "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}
        """

    static let clipJSON = """
        {"hidden_act": "quick_gelu", "hidden_size": 1024, "image_size": 224, "intermediate_size": 4096,
         "layer_norm_eps": 1e-05, "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 24,
         "patch_size": 14, "projection_dim": 768}
        """
    static let unetJSON = """
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.9.0", "act_fn": "silu",
         "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false,
         "cross_attention_dim": 768,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
         "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
         "out_channels": 4, "sample_size": 64,
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
         "use_linear_projection": false}
        """
    static let vaeJSON = """
        {"_class_name": "AutoencoderKL", "_diffusers_version": "0.9.0", "act_fn": "silu",
         "block_out_channels": [128, 256, 512, 512],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
         "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
         "sample_size": 256,
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
        """
}
