"""Times a component through PyTorch and through `varaudit bench` on the same machine; prints the ratio.

    python tools/bench/compare.py --component clip [--batch 1] [--threads 2] [--runs 3]
    python tools/bench/compare.py --component unet --size 256 --batch 2 --threads 2
    python tools/bench/compare.py --component vae --size 256 --threads 2

Needs a Python with torch, diffusers and transformers (outside the repository) and a release build of the
tool (`swift build -c release`; pass --tool to point elsewhere). Both sides use random weights at full SD v1
size, the same input shapes, the same thread count, and report the minimum of --runs calls after a warm-up.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def torch_call(component, batch, size):
    if component == "clip":
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        cfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                               num_attention_heads=16, image_size=224, patch_size=14, projection_dim=768,
                               hidden_act="quick_gelu")
        model = CLIPVisionModelWithProjection(cfg).eval()
        x = torch.rand(batch, 3, 224, 224) * 2 - 1
        return lambda: model(pixel_values=x).image_embeds
    if component == "unet":
        from diffusers import UNet2DConditionModel
        model = UNet2DConditionModel(
            sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2, attention_head_dim=8, cross_attention_dim=768,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()
        x = torch.rand(batch, 4, size // 8, size // 8) * 2 - 1
        ctx = torch.rand(batch, 1, 768) * 2 - 1
        t = torch.tensor(500)
        return lambda: model(x, t, encoder_hidden_states=ctx).sample
    if component == "vae":
        from diffusers import AutoencoderKL
        model = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
            layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=256).eval()
        z = torch.rand(batch, 4, size // 8, size // 8) * 2 - 1
        return lambda: model.decode(z).sample
    raise SystemExit(f"unknown component {component}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--component", required=True, choices=["clip", "unet", "vae"])
    p.add_argument("--batch", type=int)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tool", default=os.path.join(ROOT, ".build", "release", "varaudit"))
    a = p.parse_args()
    batch = a.batch or (2 if a.component == "unet" else 1)

    torch.set_num_threads(a.threads)
    call = torch_call(a.component, batch, a.size)
    with torch.inference_mode():
        call()
        times = []
        for _ in range(a.runs):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    torch_s = min(times)

    cmd = [a.tool, "bench", "--component", a.component, "--batch", str(batch), "--size", str(a.size),
           "--threads", str(a.threads), "--runs", str(a.runs), "--json"]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    ratio = ours["seconds"] / torch_s
    print(json.dumps({"component": a.component, "batch": batch, "size": a.size if a.component != "clip" else 224,
                      "threads": a.threads, "torch_seconds": round(torch_s, 4),
                      "varaudit_seconds": round(ours["seconds"], 4), "ratio": round(ratio, 3),
                      "torch": torch.__version__}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
