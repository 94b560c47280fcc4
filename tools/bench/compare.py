"""Times a component through PyTorch, OpenVINO and `varaudit bench` on the same machine; prints the ratios.

    python tools/bench/compare.py --component clip [--batch 1] [--threads 2] [--runs 3]
    python tools/bench/compare.py --component unet --size 256 --batch 2 --threads 2
    python tools/bench/compare.py --component vae --size 256 --threads 2
    python tools/bench/compare.py --component step --size 512 --threads 2 --runs 1

step is one guided denoising step: the UNet on the unconditional and conditional halves (batch 2), guidance and
the PNDM update (OpenVINO runs the converted UNet and the same PyTorch scheduler). Each side runs in its own
process, so each peak RSS (from wait4) is that side's alone. With --rounds N every side runs N times, the sides
taking turns (ours first), and each side's best time counts: on a shared 2-core machine a side that runs right
after another has loaded it can lose 20%.

Needs a Python with torch, diffusers and transformers (outside the repository; `pip install openvino` adds the
OpenVINO column: the same PyTorch module converted with `openvino.convert_model`, f32, the same threads) and a
release build of the tool (`swift build -c release`; pass --tool to point elsewhere). All sides use random
weights at full SD v1 size, the same input shapes, the same thread count, and report the minimum of --runs
calls after a warm-up.
"""
import argparse
import json
import os
import sys
import time

import torch

from generate import measured  # one child-process runner (wall time, peak RSS from wait4) for both scripts

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Forward(torch.nn.Module):
    """A module whose forward is `f(model, *inputs)` returning one tensor (what OpenVINO converts)."""

    def __init__(self, model, f):
        super().__init__()
        self.model = model
        self.f = f

    def forward(self, *inputs):
        return self.f(self.model, *inputs)


def torch_call(component, batch, size):
    """(module, inputs): the component as a module returning one tensor, and its example inputs."""
    if component == "clip":
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        cfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                               num_attention_heads=16, image_size=224, patch_size=14, projection_dim=768,
                               hidden_act="quick_gelu")
        model = CLIPVisionModelWithProjection(cfg).eval()
        x = torch.rand(batch, 3, 224, 224) * 2 - 1
        return Forward(model, lambda m, x: m(pixel_values=x).image_embeds).eval(), (x,)
    if component == "unet":
        from diffusers import UNet2DConditionModel
        model = UNet2DConditionModel(
            sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2, attention_head_dim=8, cross_attention_dim=768,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()
        x = torch.rand(batch, 4, size // 8, size // 8) * 2 - 1
        ctx = torch.rand(batch, 1, 768) * 2 - 1
        t = torch.tensor(500.0)
        return Forward(model, lambda m, x, t, c: m(x, t, encoder_hidden_states=c).sample).eval(), (x, t, ctx)
    if component == "vae":
        from diffusers import AutoencoderKL
        model = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
            layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=256).eval()
        z = torch.rand(batch, 4, size // 8, size // 8) * 2 - 1
        return Forward(model, lambda m, z: m.decode(z).sample).eval(), (z,)
    raise SystemExit(f"unknown component {component}")


def pndm_step(guidance=3.0):
    """A PNDM scheduler (SD v1 settings, 50 steps) and a function applying one guided update to batch-2 noise."""
    from diffusers import PNDMScheduler
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          num_train_timesteps=1000, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    sched.set_timesteps(50)
    t = sched.timesteps[10]

    def update(noise, latents):
        uncond, cond = noise.chunk(2)
        return sched.step(uncond + guidance * (cond - uncond), t, latents).prev_sample
    return t, update


def best_of(call, runs):
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def openvino_seconds(module, inputs, threads, runs, then=None):
    """The module converted by OpenVINO (f32 inference, `threads` threads), or None without openvino; `then`
    (if given) is applied to the output as part of each timed call."""
    try:
        import openvino as ov
    except ImportError:
        return None
    with torch.inference_mode():
        converted = ov.convert_model(module, example_input=inputs)
    compiled = ov.Core().compile_model(
        converted, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    arrays = [x.numpy() for x in inputs]
    if then is None:
        return best_of(lambda: request.infer(arrays), runs)
    return best_of(lambda: then(request.infer(arrays)[0]), runs)


def worker(a, batch):
    """Times one side in this process and prints {"seconds"} (the parent reads the peak RSS)."""
    torch.set_num_threads(a.threads)
    component = "unet" if a.component == "step" else a.component
    module, inputs = torch_call(component, batch, a.size)
    if a.component == "step":
        t, update = pndm_step()
        latents = inputs[0][:1]
        inputs = (torch.cat([latents, latents]), torch.tensor(float(t)), inputs[2])
    if a.worker == "torch":
        with torch.inference_mode():
            if a.component == "step":
                seconds = best_of(lambda: update(module(*inputs), latents), a.runs)
            else:
                seconds = best_of(lambda: module(*inputs), a.runs)
    else:
        seconds = openvino_seconds(module, inputs, a.threads, a.runs,
                                   then=(lambda noise: update(torch.from_numpy(noise), latents))
                                   if a.component == "step" else None)
    print(json.dumps({"seconds": seconds}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--component", required=True, choices=["clip", "unet", "vae", "step"])
    p.add_argument("--worker", choices=["torch", "openvino"], help=argparse.SUPPRESS)
    p.add_argument("--weights", default="f32", choices=["f32", "f16"], help="varaudit's --weights")
    p.add_argument("--batch", type=int)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1, help="times each side runs, in turn (its best time counts)")
    p.add_argument("--tool", default=os.path.join(ROOT, ".build", "release", "varaudit"))
    a = p.parse_args()
    batch = a.batch or (2 if a.component == "unet" else 1)
    if a.worker:
        return worker(a, 2 if a.component == "step" else batch)

    # Each round runs every side once, in turn; a side's time is its best round and its memory its largest peak,
    # so that a side is not penalised for running right after another loaded the machine.
    names = ["varaudit", "torch"]
    try:
        import openvino  # noqa: F401
        names.append("openvino")
    except ImportError:
        pass
    sides = {}
    ours = None
    for _ in range(a.rounds):
        for side in names:
            if side == "varaudit":
                cmd = [a.tool, "bench", "--component", a.component, "--batch", str(batch), "--size", str(a.size),
                       "--threads", str(a.threads), "--runs", str(a.runs), "--weights", a.weights, "--json"]
                text, _, mb = measured(cmd)
                result = json.loads(text)
                if ours is None or result["seconds"] < ours["seconds"]:
                    ours = result
                seconds = result["seconds"]
            else:
                cmd = [sys.executable, __file__, "--worker", side, "--component", a.component, "--size",
                       str(a.size), "--threads", str(a.threads), "--runs", str(a.runs), "--batch", str(batch)]
                text, _, mb = measured(cmd)
                seconds = json.loads(text)["seconds"]
            best, peak = sides.get(side, (float("inf"), 0))
            sides[side] = (min(best, seconds), max(peak, mb))
    ours_mb = sides["varaudit"][1]
    torch_s, torch_mb = sides["torch"]
    out = {"component": a.component, "batch": batch, "size": a.size if a.component != "clip" else 224,
           "threads": a.threads, "weights": a.weights, "torch_seconds": round(torch_s, 4),
           "varaudit_seconds": round(ours["seconds"], 4), "ratio": round(ours["seconds"] / torch_s, 3),
           "varaudit_gflop_per_second": round(ours.get("gflop_per_second", 0), 1),
           "torch_peak_rss_mb": round(torch_mb), "varaudit_peak_rss_mb": round(ours_mb),
           "rss_ratio": round(ours_mb / torch_mb, 3), "torch": torch.__version__}
    if "openvino" in sides:
        ov_s, ov_mb = sides["openvino"]
        out["openvino_seconds"] = round(ov_s, 4)
        out["ratio_to_openvino"] = round(ours["seconds"] / ov_s, 3)
        out["openvino_peak_rss_mb"] = round(ov_mb)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
