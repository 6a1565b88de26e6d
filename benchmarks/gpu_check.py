"""GPU host check: DreamBooth step time and peak memory on a real-size SD-1.5-shaped model, and generation it/s.

    .venv/bin/python benchmarks/gpu_check.py                      # on a CUDA machine: SD 1.5 shapes, 512 px
    .venv/bin/python benchmarks/gpu_check.py --size tiny --resolution 64 --steps 2   # anywhere, in seconds

No weights are downloaded: the UNet, VAE and text encoder are built from SD 1.5's configs with random
weights (860M + 84M + 123M parameters) and saved as a diffusers folder, which then goes through the
project's real paths — training.dreambooth.train() for LoRA and full DreamBooth with the memory flags,
generator.engine for generation. Step time and memory do not depend on the weights' values.
Per cell: seconds per optimizer step (after warm-up), and peak memory — torch.cuda.max_memory_allocated
on CUDA, peak RSS on the CPU — beside the figures diffusers publishes for the same setups.
`--size tiny` builds generator.engine.tiny's models instead (tests run it on the CPU).
"""
import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# diffusers' DreamBooth README (SD at 512 px): what these setups are known to fit in
PUBLISHED = {"lora": "LoRA: < 8 GB", "lora_gc": "LoRA: < 8 GB", "full": "full, 8-bit Adam + GC: ~16 GB"}
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                   "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), scaling_factor=0.18215,
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
                 bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)


@dataclass
class Row:
    name: str
    step_s: float
    peak_gb: float
    published: str


def build_model(size: str, out: Path) -> Path:
    """A diffusers SD 1.x folder with random weights: SD 1.5's shapes ('sd15') or the tiny fixture ('tiny')."""
    from generator.engine.tiny import save_tiny_model

    if size == "tiny":
        return save_tiny_model("sd1", out)
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from generator.engine.tiny import _SCHEDULER_BASE, build_clip_tokenizer

    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**SD15_VAE), text_encoder=CLIPTextModel(CLIPTextConfig(**SD15_TEXT)),
        tokenizer=build_clip_tokenizer(), unet=UNet2DConditionModel(**SD15_UNET),
        scheduler=PNDMScheduler.from_config({**_SCHEDULER_BASE, "skip_prk_steps": True}),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def make_pictures(folder: Path, resolution: int, n: int = 4) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = (torch.rand(resolution, resolution, 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a photo", encoding="utf-8")
    return folder


def cells(cuda: bool) -> dict[str, dict]:
    """The setups people ask about; fp16 and 8-bit Adam on CUDA (and 8-bit Adam only with bitsandbytes)."""
    half = {"mixed_precision": "fp16"} if cuda else {}
    eight_bit = {"use_8bit_adam": True} if cuda and importlib.util.find_spec("bitsandbytes") else {}
    return {"lora": {"method": "lora", **half},
            "lora_gc": {"method": "lora", "gradient_checkpointing": True, **half},
            "full": {"method": "full", "gradient_checkpointing": True, **half, **eight_bit}}


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")


def _peak_gb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20


def train_cell(name: str, options: dict, base: Path, pictures: Path, out: Path, resolution: int, warmup: int,
               steps: int) -> Row:
    from training.dreambooth import load_config, train

    cfg = load_config(None, dict(base_model=str(base), dataset=str(pictures), out=str(out / name),
                                 instance_prompt="sks photo", resolution=resolution, batch_size=1,
                                 max_steps=warmup + steps, checkpoint_steps=0, validation_inference_steps=1,
                                 **options))
    marks = {}
    _reset_peak()
    train(cfg, on_progress=lambda step, _total, _logs: marks.setdefault(step, time.perf_counter()))
    label = name + "".join(f", {k}={v}" for k, v in options.items() if k != "method")
    return Row(label, (marks[warmup + steps] - marks[warmup]) / steps, _peak_gb(), PUBLISHED[name])


def generation_row(base: Path, resolution: int, steps: int) -> Row:
    from generator.engine.generate import generate
    from generator.engine.loading import load_pipeline
    from generator.engine.params import GenerationParams

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_pipeline(str(base), device=device)
    params = GenerationParams(prompt="a photo", seed=1, steps=steps, width=resolution, height=resolution)
    generate(model, params)  # warm-up
    _reset_peak()
    start = time.perf_counter()
    generate(model, params)
    seconds = time.perf_counter() - start
    return Row(f"generation, {steps} steps ({steps / seconds:.2f} it/s)", seconds / steps, _peak_gb(), "")


def run_checks(size: str, resolution: int, warmup: int, steps: int, gen_steps: int, out: Path) -> list[Row]:
    base = build_model(size, out / "model")
    pictures = make_pictures(out / "pictures", resolution)
    rows = [train_cell(name, options, base, pictures, out, resolution, warmup, steps)
            for name, options in cells(torch.cuda.is_available()).items()]
    return rows + [generation_row(base, resolution, gen_steps)]


def table(rows: list[Row]) -> str:
    memory = "peak VRAM GB" if torch.cuda.is_available() else "peak RSS GB"
    lines = [f"| cell | s/step | {memory} | published |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.step_s:.3f} | {r.peak_gb:.2f} | {r.published} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("sd15", "tiny"), default="sd15")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--generation-steps", type=int, default=20)
    parser.add_argument("--out", help="keep the model and runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA)"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        rows = run_checks(args.size, args.resolution, args.warmup, args.steps, args.generation_steps, out)
    report = (f"device: {device}; torch {torch.__version__}; model {args.size} at {args.resolution} px, batch 1\n\n"
              f"{table(rows)}\n")
    print(report)
    print(json.dumps([r.__dict__ for r in rows]))
    return report


if __name__ == "__main__":
    main()
