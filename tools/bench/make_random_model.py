"""Writes a full-size SD v1 image-variations model with random weights as a diffusers folder (safetensors),
for timing and memory measurements that load weights from disk (`varaudit bench --model DIR`,
`tools/bench/generate.py`): UNet, VAE, CLIP image encoder, safety checker, PNDM scheduler and the
feature extractor, with the configs of lambdalabs/sd-image-variations-diffusers.

    python tools/bench/make_random_model.py OUT_DIR
"""
import json
import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers import PNDMScheduler
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from transformers import CLIPConfig, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

out = sys.argv[1]
torch.manual_seed(0)
UNet2DConditionModel(
    sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    attention_head_dim=8, cross_attention_dim=768,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).save_pretrained(os.path.join(out, "unet"))
AutoencoderKL(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
    sample_size=256).save_pretrained(os.path.join(out, "vae"))
VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
              patch_size=14, projection_dim=768, hidden_act="quick_gelu")
CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION)).save_pretrained(os.path.join(out, "image_encoder"))
StableDiffusionSafetyChecker(CLIPConfig(
    vision_config=VISION, text_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                           num_attention_heads=12), projection_dim=768)
                             ).save_pretrained(os.path.join(out, "safety_checker"))
PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
              skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1).save_pretrained(os.path.join(out, "scheduler"))
CLIPImageProcessor(crop_size=224, do_center_crop=True, do_normalize=True, do_resize=True, resample=3, size=224,
                   image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711]
                   ).save_pretrained(os.path.join(out, "feature_extractor"))
with open(os.path.join(out, "model_index.json"), "w") as f:
    json.dump({"_class_name": "StableDiffusionImageVariationPipeline",
               "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
               "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
               "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
               "scheduler": ["diffusers", "PNDMScheduler"], "feature_extractor": ["transformers", "CLIPImageProcessor"],
               "requires_safety_checker": True}, f, indent=2)
print("wrote", out)
