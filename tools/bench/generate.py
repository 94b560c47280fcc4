"""Times a whole `generate` process at full SD v1 size through diffusers and through varaudit: load the model
folder, encode the input, the denoising steps, decode and the safety check, each side in its own process; prints
both wall times, both peak RSS (from wait4) and the ratios.

    python tools/bench/make_random_model.py /tmp/sd-random      # once: random weights, ~6 GB
    python tools/bench/generate.py --model /tmp/sd-random --steps 4 --threads 2

Needs a Python with torch, diffusers and transformers (outside the repository) and a release build of the tool.
varaudit uses every core (its kernels and BLAS); run on a machine with --threads cores, or pin both with taskset.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def measured(cmd, env=None):
    """(stdout, wall seconds, peak RSS in MB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed with status {status}")
    return out, seconds, usage.ru_maxrss / 1024


def diffusers_worker(a):
    import torch
    from diffusers import StableDiffusionImageVariationPipeline
    from PIL import Image
    torch.set_num_threads(a.threads)
    pipe = StableDiffusionImageVariationPipeline.from_pretrained(a.model)
    image = Image.open(a.input).convert("RGB")
    with torch.inference_mode():
        out = pipe(image, num_inference_steps=a.steps, guidance_scale=a.guidance, num_images_per_prompt=a.variations,
                   generator=torch.Generator("cpu").manual_seed(0))
    for k, im in enumerate(out.images):
        im.save(os.path.join(a.out, f"diffusers-{k}.png"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--input", default=os.path.join(ROOT, "Tests", "Fixtures", "photos", "rocket.jpg"))
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--variations", type=int, default=1)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--weights", default="f32", choices=["f32", "f16"])
    p.add_argument("--tool", default=os.path.join(ROOT, ".build", "release", "varaudit"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return diffusers_worker(a)

    out = tempfile.mkdtemp(prefix="varaudit-generate-bench-")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    common = ["--steps", str(a.steps), "--variations", str(a.variations), "--guidance", str(a.guidance)]
    worker = [sys.executable, __file__, "--worker", "--model", a.model, "--input", a.input, "--threads",
              str(a.threads), "--out", out] + common
    _, torch_s, torch_mb = measured(worker, env)
    ours_cmd = [a.tool, "generate", "--model", a.model, "--input", a.input, "--out", os.path.join(out, "varaudit"),
                "--weights", a.weights] + common
    _, ours_s, ours_mb = measured(ours_cmd, env)
    print(json.dumps({
        "steps": a.steps, "variations": a.variations, "threads": a.threads, "weights": a.weights,
        "diffusers_seconds": round(torch_s, 2), "varaudit_seconds": round(ours_s, 2),
        "ratio": round(ours_s / torch_s, 3), "diffusers_peak_rss_mb": round(torch_mb),
        "varaudit_peak_rss_mb": round(ours_mb), "rss_ratio": round(ours_mb / torch_mb, 3), "outputs": out}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
