"""Benchmark: DreamBooth steps/s and peak RSS with VAE-latent + text-embedding caching on vs off.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_caching.py [--resolution 256] [--steps 12]

Trains the tiny SD 1.x model (generator.engine.tiny; real SD architecture, few weights) LoRA on 8
generated pictures, each setting in its own subprocess so peak RSS is that run's alone. Steps/s is
the median step time over steps 2..N from metrics.csv (model loading, latent warm-up and export
excluded; step 1 fills the text cache), on/off runs interleaved so a busy machine hits both alike.
With caching, a step skips the VAE encoder and the text encoder. The tiny VAE downsamples by 2 (SD's
by 8), so its UNet sees 16x more latent pixels than SD's and the VAE's share of a step, and hence the
gain, is smaller here than with real SD weights.
"""
import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one_run(args) -> dict:
    import torch

    torch.set_num_threads(1)
    from training.dreambooth import load_config, train

    cfg = load_config(None, dict(
        base_model=args.base, dataset=args.dataset, out=args.out, instance_prompt="sks girl", method="lora",
        resolution=args.resolution, bucket_step=64, max_steps=args.steps, checkpoint_steps=0, batch_size=1,
        validation_inference_steps=1, cache_latents=args.cache, cache_text_embeddings=args.cache))
    train(cfg)
    seconds = [float(r["seconds"]) for r in csv.DictReader(open(Path(args.out) / "metrics.csv"))][1:]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"seconds": seconds, "peak_rss_mb": rss_mb}


def make_inputs(root: Path, resolution: int) -> tuple[str, str]:
    import numpy as np
    from PIL import Image

    from generator.engine.tiny import save_tiny_model

    base = save_tiny_model("sd1", root / "sd1")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        pixels = (rng.random((resolution, resolution, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text(f"red hair, pose {i}")
    return str(base), str(data)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread (OMP_NUM_THREADS=1), "
            f"CUDA {'yes' if torch.cuda.is_available() else 'no'}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="on/off runs interleaved, against machine noise")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=lambda s: s == "1", default=True, help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args)))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        base, data = make_inputs(Path(tmp), args.resolution)
        results = {True: {"seconds": [], "peak_rss_mb": 0.0}, False: {"seconds": [], "peak_rss_mb": 0.0}}
        for run in range(args.rounds * 2):
            cache = run % 2 == 0
            out = Path(tmp) / f"out-{run}"
            cmd = [sys.executable, __file__, "--child", "--cache", str(int(cache)), "--base", base, "--dataset",
                   data, "--out", str(out), "--resolution", str(args.resolution), "--steps", str(args.steps)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            one = json.loads(proc.stdout.strip().splitlines()[-1])
            results[cache]["seconds"] += one["seconds"]
            results[cache]["peak_rss_mb"] = max(results[cache]["peak_rss_mb"], one["peak_rss_mb"])
    speed = {cache: 1 / statistics.median(r["seconds"]) for cache, r in results.items()}
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"tiny SD 1.x LoRA, {args.resolution} px, batch 1, {args.rounds} x {args.steps} steps per setting, "
          "median step time of steps 2..N")
    for cache, name in ((True, "caching on "), (False, "caching off")):
        print(f"{name}: {speed[cache]:.3f} steps/s, peak RSS {results[cache]['peak_rss_mb']:.0f} MB")
    print(f"speed-up: {speed[True] / speed[False]:.2f}x")


if __name__ == "__main__":
    main()
