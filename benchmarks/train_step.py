"""Benchmark: a DreamBooth LoRA step of the project's train() against a plain reference loop, in one process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_step.py                  # ratios + profile
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_step.py --options        # + each option, measured
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_step.py --models miniworld --steps 20 --rounds 3

(a) reference: the loop shape of diffusers' examples/dreambooth/train_dreambooth_lora.py — diffusers UNet
    + peft LoRA on to_q/to_k/to_v/to_out.0, torch AdamW, accelerate, a DataLoader that loads, resizes and
    normalises the pictures and tokenizes the prompts, the VAE and the text encoder run on every batch, one
    optimizer step per batch, clipping, loss.item() and a TensorBoard log (the example's default) every step.
(b) training.dreambooth.train() with the same base, pictures, seed and settings (LoRA rank 4, alpha 4,
    batch 2, lr 1e-4, constant LR): latents and text embeddings cached, everything else per the defaults.
(c) floor: the same UNet, LoRA, fused AdamW and clipping with latents and embeddings computed before the
    loop and nothing else per step — what no loop can beat with this UNet; (b)/(c) is train()'s overhead.

All run in this process, alternating a, b, c, a, b, c, ... so a busy machine slows them alike. A step's time
is taken between steps `warmup` and `warmup + steps` (b: between its on_progress calls, so logging,
metrics.csv and callbacks count; model loading, latent caching and the final export do not), the median
over rounds, as CPU time of this process (one thread: what other processes on a shared machine do not
change) and as wall time. Peak RSS (VmHWM at the last step: loading and training, not the final export) is
measured apart, one child process per loop, since a process's heap keeps what an earlier run freed.
Models: the shipped mini-world base at 64 px and the tiny SD 1.x (generator.engine.tiny) at 256 px.
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MODELS = {"miniworld": 64, "sd1": 256}  # model -> resolution
SETTINGS = dict(rank=4, batch_size=2, learning_rate=1e-4, seed=0)


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} thread(s) "
            f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), "
            f"CUDA {'yes' if torch.cuda.is_available() else 'no'}, load average {os.getloadavg()[0]:.1f}")


def make_inputs(tmp: Path) -> dict[str, tuple[str, str, int]]:
    """model -> (base folder, picture folder, resolution); 8 random pictures with captions per resolution."""
    import numpy as np
    from PIL import Image

    from generator.engine.tiny import save_tiny_model
    from training.miniworld.shipped import BASE

    sd1 = tmp / "sd1"
    bases = {"miniworld": str(BASE), "sd1": str(sd1 if sd1.exists() else save_tiny_model("sd1", sd1))}
    out = {}
    for name, res in MODELS.items():
        folder = tmp / f"pictures-{res}"
        if not folder.exists():
            folder.mkdir()
            rng = np.random.default_rng(res)
            for i in range(8):
                Image.fromarray((rng.random((res, res, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")
                (folder / f"{i}.txt").write_text(f"red hair, pose {i}", encoding="utf-8")
        out[name] = (bases[name], str(folder), res)
    return out


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


# -- (a) the reference loop ------------------------------------------------------------------------------
class PictureDataset(torch.utils.data.Dataset):
    """As the example's DreamBoothDataset: open, resize, crop, normalise and tokenize at every access."""

    def __init__(self, folder: str, res: int, tokenizer, prompt: str):
        from torchvision import transforms

        self.files = sorted(Path(folder).glob("*.png"))
        self.tokenizer, self.prompt = tokenizer, prompt
        self.transform = transforms.Compose([transforms.Resize(res), transforms.CenterCrop(res), transforms.ToTensor(),
                                             transforms.Normalize([0.5], [0.5])])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        caption = self.files[i].with_suffix(".txt").read_text(encoding="utf-8")
        ids = self.tokenizer(f"{self.prompt}, {caption}", padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length, return_tensors="pt").input_ids
        with Image.open(self.files[i]) as im:
            return {"pixel_values": self.transform(im.convert("RGB")), "input_ids": ids[0]}


def load_lora_models(base: str):
    """(tokenizer, noise scheduler, text encoder, VAE, UNet with a LoRA adapter, its trainable params), fp32."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(SETTINGS["seed"])
    tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer")
    noise_scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder", dtype=torch.float32)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae", dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", dtype=torch.float32)
    for model in (vae, text_encoder, unet):
        model.requires_grad_(False)
    rank = SETTINGS["rank"]
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    return tokenizer, noise_scheduler, text_encoder, vae, unet.train(), params


def reference_loop(base: str, pictures: str, res: int, total: int, on_step, out: Path) -> None:
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from diffusers.optimization import get_scheduler

    AcceleratorState._reset_state()  # accelerate's settings are process-wide; train() resets them too
    acc = Accelerator(cpu=not torch.cuda.is_available(), log_with="tensorboard", project_dir=str(out / "logs"))
    tokenizer, noise_scheduler, text_encoder, vae, unet, params = load_lora_models(base)
    optimizer = torch.optim.AdamW(params, lr=SETTINGS["learning_rate"], betas=(0.9, 0.999), weight_decay=1e-2,
                                  eps=1e-8)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer)
    loader = torch.utils.data.DataLoader(PictureDataset(pictures, res, tokenizer, "sks girl"),
                                         batch_size=SETTINGS["batch_size"], shuffle=True)
    unet, optimizer, loader, lr_scheduler = acc.prepare(unet, optimizer, loader, lr_scheduler)
    acc.init_trackers("dreambooth-lora")

    def one_step(batch) -> torch.Tensor:
        with acc.accumulate(unet):
            latents = vae.encode(batch["pixel_values"]).latent_dist.sample() * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],)).long()
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            encoder_hidden_states = text_encoder(batch["input_ids"])[0]
            pred = unet(noisy, timesteps, encoder_hidden_states, return_dict=False)[0]
            target = noise if noise_scheduler.config.prediction_type == "epsilon" else \
                noise_scheduler.get_velocity(latents, noise, timesteps)
            loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
            acc.backward(loss)
            if acc.sync_gradients:
                acc.clip_grad_norm_(params, 1.0)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
        return loss

    step = 0
    while step < total:
        for batch in loader:
            loss = one_step(batch)
            step += 1
            logs = {"loss": loss.detach().item(), "lr": lr_scheduler.get_last_lr()[0]}
            acc.log(logs, step=step)
            on_step(step, logs)
            if step >= total:
                break
    acc.end_training()


def floor_loop(base: str, pictures: str, res: int, total: int, on_step) -> None:
    """(c) the least a step can cost with this UNet: latents and embeddings computed once before the loop,
    no data loading, no logging, no callbacks — the same LoRA, fused AdamW and clipping."""
    import torch.nn.functional as F

    tokenizer, noise_scheduler, text_encoder, vae, unet, params = load_lora_models(base)
    items = [PictureDataset(pictures, res, tokenizer, "sks girl")[i] for i in range(8)]
    with torch.no_grad():
        posterior = vae.encode(torch.stack([it["pixel_values"] for it in items])).latent_dist
        embeddings = text_encoder(torch.stack([it["input_ids"] for it in items]))[0]
    mean, std, scale = posterior.mean, posterior.std, vae.config.scaling_factor
    optimizer = torch.optim.AdamW(params, lr=SETTINGS["learning_rate"], weight_decay=1e-2, fused=True)
    gen = torch.Generator().manual_seed(SETTINGS["seed"])
    for step in range(1, total + 1):
        idx = torch.randint(0, len(items), (SETTINGS["batch_size"],), generator=gen)
        latents = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * scale
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=gen)
        pred = unet(noise_scheduler.add_noise(latents, noise, timesteps), timesteps, embeddings[idx]).sample
        F.mse_loss(pred, noise).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        on_step(step, {})


# -- (b) the project ---------------------------------------------------------------------------------------
def project_train(base: str, pictures: str, res: int, total: int, on_step, out: Path, **options) -> None:
    from training.dreambooth import load_config, train

    settings = dict(base_model=base, dataset=pictures, out=str(out), instance_prompt="sks girl", resolution=res,
                    method="lora", max_steps=total, checkpoint_steps=0, validation_inference_steps=1, **SETTINGS)
    cfg = load_config(None, {**settings, **options})
    train(cfg, on_progress=lambda step, _total, logs: on_step(step, logs))


def timed(run, warmup: int, steps: int) -> dict:
    """CPU and wall seconds per step between steps `warmup` and `warmup + steps`."""
    marks = {}
    run(warmup + steps, lambda step, logs: marks.setdefault(step, (time.process_time(), time.perf_counter())))
    (cpu0, wall0), (cpu1, wall1) = marks[warmup], marks[warmup + steps]
    return {"cpu_s": (cpu1 - cpu0) / steps, "wall_s": (wall1 - wall0) / steps}


def child_rss_mb(model: str, cell: str, tmp: Path, steps: int) -> float:
    """Peak RSS of one run of `cell` ('a' or 'b') on `model`, in a fresh process."""
    cmd = [sys.executable, __file__, "--child", cell, "--models", model, "--tmp", str(tmp), "--steps", str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if proc.returncode:
        raise RuntimeError(f"peak RSS child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["rss_mb"]


def measure(cells: dict, rounds: int, warmup: int, steps: int, tmp: Path) -> dict[str, list[dict]]:
    """cells: name -> callable(total, on_step, out); each run `rounds` times, alternating between cells."""
    results = {name: [] for name in cells}
    for r in range(rounds):
        for name, cell in cells.items():
            out = Path(tempfile.mkdtemp(prefix=f"{name}-{r}-", dir=tmp))
            results[name].append(timed(lambda total, on_step: cell(total, on_step, out), warmup, steps))
            print(f"  round {r + 1} {name}: {results[name][-1]['cpu_s']:.4f} CPU s/step, "
                  f"{results[name][-1]['wall_s']:.4f} wall s/step", flush=True)
    return results


def summary(results: list[dict]) -> tuple[float, float]:
    """(median CPU s/step, median wall s/step)."""
    return statistics.median(r["cpu_s"] for r in results), statistics.median(r["wall_s"] for r in results)


def loop_cells(inputs, name: str) -> dict:
    base, pictures, res = inputs[name]
    return {"a": lambda total, on_step, out: reference_loop(base, pictures, res, total, on_step, out),
            "b": lambda total, on_step, out: project_train(base, pictures, res, total, on_step, out),
            "c": lambda total, on_step, out: floor_loop(base, pictures, res, total, on_step)}


def profile_table(run, warmup: int, steps: int, rows: int) -> str:
    """torch.profiler over steps warmup+1..warmup+steps: the ops with the most self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU])

    def on_step(step, logs):
        if step == warmup:
            prof.start()
        elif step == warmup + steps:
            prof.stop()

    run(warmup + steps, on_step)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48)


@dataclass
class Comparison:
    row: str  # the markdown table row
    reference_cpu_s: float
    profiles: list[str]


def compare(name: str, inputs, args, tmp: Path) -> Comparison:
    res = inputs[name][2]
    cells = loop_cells(inputs, name)
    steps = args.steps or (30 if res <= 64 else 4)
    print(f"{name} at {res} px, {args.rounds} rounds x {steps} steps after {args.warmup} warm-up steps", flush=True)
    results = measure(cells, args.rounds, args.warmup, steps, tmp)
    (a, wall_a), (b, wall_b), (c, _) = (summary(results[cell]) for cell in "abc")
    rss_a, rss_b = (child_rss_mb(name, cell, tmp, min(steps, 3)) for cell in "ab")
    row = (f"| {name} {res} px | {a:.4f} | {b:.4f} | **{a / b:.2f}x** | {wall_a / wall_b:.2f}x | "
           f"{c:.4f} | {b / c:.2f} | {rss_a:.0f} | {rss_b:.0f} |")
    profiles = []
    if args.profile:
        for cell in ("a", "b"):
            out = Path(tempfile.mkdtemp(prefix=f"profile-{cell}-", dir=tmp))
            table = profile_table(lambda total, on_step: cells[cell](total, on_step, out), args.warmup,
                                  min(steps, 3), args.profile_rows)
            profiles.append(f"### {name} {res} px, ({cell}) {'reference loop' if cell == 'a' else 'train()'}\n\n"
                            f"```\n{table}```\n")
    return Comparison(row, a, profiles)


def options(inputs, args, tmp: Path, reference_s: float | None) -> list[str]:
    """Each option of train() alone against the defaults (mini-world base, 64 px)."""
    import importlib.util

    base, pictures, res = inputs["miniworld"]
    variants = {"defaults": {}, "l2sp_weight=1e-2": {"l2sp_weight": 1e-2},
                "method=full": {"method": "full"},
                "method=full l2sp_weight=1e-2": {"method": "full", "l2sp_weight": 1e-2},
                "channels_last": {"channels_last": True}, "mixed_precision=bf16": {"mixed_precision": "bf16"},
                "gradient_checkpointing": {"gradient_checkpointing": True}, "compile": {"compile": True}}
    if importlib.util.find_spec("bitsandbytes") is not None:
        variants["use_8bit_adam"] = {"use_8bit_adam": True}
    cells = {name: (lambda total, on_step, out, o=o: project_train(base, pictures, res, total, on_step, out, **o))
             for name, o in variants.items()}
    steps = args.steps or 30
    warmup = max(args.warmup, 5)  # compile: the first steps compile
    print(f"options, miniworld at {res} px, {args.rounds} rounds x {steps} steps after {warmup} warm-up steps")
    results = measure(cells, args.rounds, warmup, steps, tmp)
    base_s = summary(results["defaults"])[0]
    plain_full = summary(results["method=full"])[0]
    lines = []
    for name in variants:
        s, wall = summary(results[name])
        against = plain_full if name == "method=full l2sp_weight=1e-2" else base_s
        versus = f"{reference_s / s:.2f}x" if reference_s else "-"
        lines.append(f"| {name} | {s:.4f} | {wall:.4f} | {s / against:.2f} | {versus} |")
    return lines




def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="miniworld,sd1", help="comma-separated: miniworld, sd1")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per run (default 30 at 64 px, 4 at 256)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--options", action="store_true", help="also measure each train() option (mini-world)")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--profile-rows", type=int, default=12)
    parser.add_argument("--child", choices=("a", "b"), help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.child:
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            tmp = Path(args.tmp)
            cell = loop_cells(make_inputs(tmp), args.models)[args.child]
            total, peak = args.warmup + args.steps, {}
            cell(total, lambda step, logs: peak.setdefault(step, peak_rss_mb()), Path(tempfile.mkdtemp(dir=tmp)))
        print(json.dumps({"rss_mb": peak[total], "run_rss_mb": peak_rss_mb()}))
        return
    print(f"machine: {machine()}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(open(os.devnull, "w")):
        tmp = Path(tmp)
        inputs = make_inputs(tmp)
        done = {}
        for name in args.models.split(","):
            done[name] = compare(name, inputs, args, tmp)
            print(done[name].row, *done[name].profiles, sep="\n", flush=True)  # kept if a later cell fails
        reference = done["miniworld"].reference_cpu_s if "miniworld" in done else None
        option_rows = options(inputs, args, tmp, reference) if args.options else []
    print(f"\nmachine: {machine()}\n")
    print("| model | (a) reference CPU s/step | (b) train() CPU s/step | (a)/(b) CPU | (a)/(b) wall | "
          "(c) floor CPU s/step | (b)/(c) | peak RSS (a) MB | peak RSS (b) MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(c.row for c in done.values()))
    if option_rows:
        print("\n| train() option (mini-world 64 px, LoRA unless said) | CPU s/step | wall s/step | x defaults | "
              "(a) reference / this |")
        print("|---|---|---|---|---|")
        print("\n".join(option_rows))
        print("\n(method=full l2sp_weight is against method=full)")
    profiles = [p for c in done.values() for p in c.profiles]
    if profiles:
        print("\n## Profiles (self CPU time)\n")
        print("\n".join(profiles))


if __name__ == "__main__":
    main()
