"""Writes a full-size SD v1 image-variations model with random weights as a diffusers folder (safetensors),
for timing and memory measurements that load weights from disk (`varaudit bench --model DIR`).

    python tools/bench/make_random_model.py OUT_DIR
"""
import json
import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

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
CLIPVisionModelWithProjection(CLIPVisionConfig(
    hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
    patch_size=14, projection_dim=768, hidden_act="quick_gelu")).save_pretrained(os.path.join(out, "image_encoder"))
with open(os.path.join(out, "model_index.json"), "w") as f:
    json.dump({"_class_name": "StableDiffusionImageVariationPipeline",
               "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
               "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)
print("wrote", out)
