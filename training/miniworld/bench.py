"""The mini-world fine-tuning benchmark: the replaced system's grid, run through the project's own training path.

Grid (Ruiz et al.'s DreamBooth with prior preservation, from the shipped base mini model):
dataset size {10, 20, 30, 50} retro pictures x optimizer steps {200, 1000, 5000} x regularization
{none, L2 toward zero, L2-SP toward the base weights (Li et al., ICML 2018)}, then LoRA vs full at the best cell.

One cell = one (method, size, regularization) run. Its step counts are stops of ONE run: train to 200 steps,
snapshot the weights, resume to 1,000, snapshot, resume to 5,000 (constant learning rate, so the state at
step 1,000 of a 5,000-step run is the state of a 1,000-step run; resume is exact, see tests/training). Every
phase skips what is already on disk, so an interrupted bench continues where it stopped.

Folder layout under ``out``::

    datasets/n10/ …             retro exports (miniworld_dataset) with labels.jsonl
    class-images/               prior-preservation pictures by the base model, each with its own caption
    runs/<cell>/                the training run (config.toml, metrics.csv, loss.png, checkpoint)
    models/<cell>-s<steps>/     weights at that stop (diffusers folder, or a LoRA file) + done.json
    evals/<model>.json          bench_eval.evaluate_model() results
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from generator.engine.files import write_atomic
from generator.engine.params import SITE_DEFAULTS

from . import shipped
from .attributes import Style
from .captions import STYLE_PHRASE
from .dataset import BACKGROUND_MIXES, caption_in, export_dataset, languages
from .pretrain_data import sample_training_attrs

SITE = SITE_DEFAULTS  # the website's, API's and CLI's defaults (sampler, steps, CFG)
REGULARIZATIONS = ("none", "l2", "l2sp")
METHODS = ("full", "lora")
PIPELINE_PARTS = ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler")


class BenchError(ValueError):
    """A bench setting is out of range; the message names it."""


@dataclass
class BenchConfig:
    out: str
    base_model: str = str(shipped.BASE)
    sizes: list[int] = field(default_factory=lambda: [10, 20, 30, 50])
    steps: list[int] = field(default_factory=lambda: [200, 1000, 5000])
    regularizations: list[str] = field(default_factory=lambda: list(REGULARIZATIONS))
    method: str = "full"  # the grid's method; the other one is compared at the best cell
    train_text_encoder: bool = False
    text_encoder_learning_rate: float = 3e-3  # with train_text_encoder: the tiny text encoder must learn new words
    compare_methods: bool = True
    reg_weight: float = 0.01  # λ of both L2 (λ·Σ‖θ‖²) and L2-SP (λ·Σ‖θ−θ₀‖²): same strength, different anchor
    full_learning_rate: float = 5e-5
    lora_learning_rate: float = 1e-3
    lora_rank: int = 8
    num_class_images: int = 100
    prior_loss_weight: float = 1.0
    dataset_seed: int = 0
    seed: int = 0
    resolution: int = 64
    eval_n: int = 200  # pictures per evaluation split
    eval_steps: int = 10  # DPM-Solver++ 2M steps per picture
    guidance: float = 5.0
    instance_prompt: str = STYLE_PHRASE  # the style phrase, or a DreamBooth identifier such as "sks style"
    indonesian: float = 0.0  # share of retro and class captions in Bahasa Indonesia (dataset.export_dataset)
    caption_tag_dropout: float = 0.0  # TrainConfig.caption_tag_dropout: short prompts keep their variety
    caption_dropout: float = 0.0  # TrainConfig.caption_dropout: the LoRA also learns the unconditional prediction
    backgrounds: str = "scraped"  # the retro set's scenes: dataset.BACKGROUND_MIXES (scraped skew, or balanced)
    lora_scale: float = 1.0  # --ship: the scale the shipped LoRA is judged and registered at
    ship_guidance: float = SITE.guidance_scale  # --ship: the CFG it is judged at and registered with as its default

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise BenchError("; ".join(problems))
        self.sizes, self.steps = sorted(set(self.sizes)), sorted(set(self.steps))
        self.instance_prompt = self.instance_prompt.strip()

    def problems(self) -> list[str]:
        """Every bad setting, each with the flag it came from and a valid example (all said at once)."""
        out = []
        if self.method not in METHODS:
            out.append(f"--method: {self.method!r} is not one of {', '.join(METHODS)}")
        out += [f"--regs: {r!r} is not one of {', '.join(REGULARIZATIONS)}"
                for r in self.regularizations if r not in REGULARIZATIONS]
        for name in ("sizes", "steps"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                out.append(f"--{name}: expected positive integers, got {values}")
        out += [f"--{flag} {value}: expected at least 1" for flag, value in
                (("eval-n", self.eval_n), ("num-class-images", self.num_class_images), ("rank", self.lora_rank))
                if value < 1]
        if self.prior_loss_weight < 0:
            out.append(f"--prior-loss-weight {self.prior_loss_weight}: expected 0 or more")
        if not 0.0 <= self.indonesian <= 1.0:
            out.append(f"--indonesian {self.indonesian}: expected a share between 0 and 1, e.g. 0.3")
        for flag, value in (("--caption-tag-dropout", self.caption_tag_dropout),
                            ("--caption-dropout", self.caption_dropout)):
            if not 0.0 <= value < 1.0:
                out.append(f"{flag} {value}: expected a share in [0, 1), e.g. 0.1")
        if self.backgrounds not in BACKGROUND_MIXES:
            out.append(f"--backgrounds {self.backgrounds!r}: expected one of {', '.join(BACKGROUND_MIXES)}")
        if not self.lora_scale > 0:
            out.append(f"--lora-scale {self.lora_scale}: expected a positive scale, e.g. 0.8")
        if not 1.0 < self.ship_guidance <= 30.0:
            out.append(f"--ship-guidance {self.ship_guidance}: expected a CFG scale above 1 and at most 30, e.g. 4")
        if not self.instance_prompt.strip():
            out.append("--instance-prompt: empty; give the style phrase, e.g. 'retro anime style' or 'sks style'")
        if not (Path(self.base_model) / "model_index.json").exists():
            out.append(f"--base-model: {self.base_model} is not a diffusers pipeline folder")
        return out


@dataclass(frozen=True)
class Cell:
    method: str
    size: int
    reg: str

    @property
    def name(self) -> str:
        return f"{self.method}-n{self.size}-{self.reg}"

    def model(self, steps: int) -> str:
        return f"{self.name}-s{steps}"


def grid_cells(cfg: BenchConfig) -> list[Cell]:
    return [Cell(cfg.method, size, reg) for size in cfg.sizes for reg in cfg.regularizations]


def dataset_dir(cfg: BenchConfig, size: int) -> Path:
    """The retro export with `size` pictures, captions starting with the instance prompt (made on first use;
    backgrounds skewed as a scraped set, or balanced)."""
    mix = "" if cfg.backgrounds == "scraped" else f"-{cfg.backgrounds}"
    folder = Path(cfg.out) / "datasets" / f"n{size}{language_suffix(cfg)}{mix}"
    if not (folder / "labels.jsonl").exists():
        shutil.rmtree(folder, ignore_errors=True)
        export_dataset(folder, n=size, seed=cfg.dataset_seed, style=Style.RETRO, size=cfg.resolution,
                       style_phrase=cfg.instance_prompt, indonesian=cfg.indonesian,
                       backgrounds=BACKGROUND_MIXES[cfg.backgrounds])
    records = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    first = next((r["caption"] for r in records if r.get("lang", "en") == "en"), f"{cfg.instance_prompt}, ")
    if not first.startswith(f"{cfg.instance_prompt}, "):
        raise BenchError(f"--instance-prompt {cfg.instance_prompt!r}: {folder} was captioned for another instance "
                         f"prompt ({first!r}); use another --out")
    return folder


def language_suffix(cfg: BenchConfig) -> str:
    """"" for English captions only, "-id30" for 30% Indonesian: folders made for another mix are not reused."""
    return f"-id{round(cfg.indonesian * 100)}" if cfg.indonesian else ""


def class_prompts(cfg: BenchConfig) -> list[str]:
    """The class pictures' modern captions (training attribute combinations), cfg.indonesian of them Indonesian."""
    rng = np.random.default_rng(cfg.seed + 7)
    langs, rnd = languages(cfg.num_class_images, cfg.indonesian, cfg.seed), random.Random(f"{cfg.seed}-class")
    return [caption_in(sample_training_attrs(rng, 10), Style.MODERN, cfg.instance_prompt, lang, rnd)
            for lang in langs]


def class_images_dir(cfg: BenchConfig, load_pipe: Callable, progress: Callable[[int, int], None] | None = None
                     ) -> Path:
    """Prior-preservation pictures from the base model, each captioned with its own modern caption.

    A single generic class prompt would teach nothing about the attribute words; captioned class pictures
    (kohya's reg-folder convention, read by training.dreambooth.class_images.class_caption) keep every
    attribute word tied to the modern look while the retro pictures train.
    """
    from .bench_eval import generate

    folder = Path(cfg.out) / f"class-images{language_suffix(cfg)}"
    done = folder / "done.json"
    if done.exists():
        return folder
    prompts = class_prompts(cfg)
    images = generate(load_pipe(), prompts, seed=cfg.seed + 11, steps=cfg.eval_steps, guidance=cfg.guidance,
                      size=cfg.resolution, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, prompt) in enumerate(zip(images, prompts)):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        write_atomic(folder / f"class-{i:05d}.png", buffer.getvalue())
        write_atomic(folder / f"class-{i:05d}.txt", prompt)
    write_atomic(done, json.dumps({"base_model": cfg.base_model, "n": len(prompts)}))
    return folder


def train_config(cfg: BenchConfig, cell: Cell, steps: int, class_dir: Path):
    """The TrainConfig of one cell up to `steps` (resume=True: later stops continue the same run)."""
    from training.dreambooth.config import TrainConfig

    lora = cell.method == "lora"
    return TrainConfig(
        base_model=cfg.base_model, dataset=str(dataset_dir(cfg, cell.size)), out=str(run_dir(cfg, cell)),
        instance_prompt=cfg.instance_prompt, method=cell.method, rank=cfg.lora_rank,
        resolution=cfg.resolution, bucket_step=8, max_steps=steps, checkpoint_steps=0, checkpoints_total_limit=1,
        learning_rate=cfg.lora_learning_rate if lora else cfg.full_learning_rate, adam_weight_decay=0.0,
        seed=cfg.seed, train_text_encoder=cfg.train_text_encoder,
        text_encoder_lr=cfg.text_encoder_learning_rate if cfg.train_text_encoder else None,
        with_prior_preservation=True, class_prompt="a portrait of a person", prior_loss_weight=cfg.prior_loss_weight,
        class_data_dir=str(class_dir), num_class_images=cfg.num_class_images,
        l2_weight=cfg.reg_weight if cell.reg == "l2" else 0.0,
        l2sp_weight=cfg.reg_weight if cell.reg == "l2sp" else 0.0,
        caption_tag_dropout=cfg.caption_tag_dropout, caption_dropout=cfg.caption_dropout,
        validation_prompts=[f"{cfg.instance_prompt}, an old man with glasses in a market",
                            "a young girl with pink long hair, red shirt, in a classroom"],
        validation_inference_steps=20, resume=True, output_name=cell.name,
        training_comment=f"miniworld_bench cell {cell.name}",
    )


def run_dir(cfg: BenchConfig, cell: Cell) -> Path:
    return Path(cfg.out) / "runs" / cell.name


def model_dir(cfg: BenchConfig, model: str) -> Path:
    return Path(cfg.out) / "models" / model


def snapshot(run: Path, target: Path, method: str, info: dict) -> Path:
    """Copy the weights a stop wrote (pipeline folder or LoRA file) to `target`, atomically, with done.json."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    parts = ["pytorch_lora_weights.safetensors", "lora_kohya.safetensors"] if method == "lora" else PIPELINE_PARTS
    for part in parts:
        source = run / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, tmp / part)
    shutil.copy2(run / "loss.png", tmp / "loss.png")
    (tmp / "done.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def train_cell(cfg: BenchConfig, cell: Cell, class_dir: Path, steps: list[int],
               on_progress: Callable[[int, int, dict], None] | None = None) -> list[Path]:
    """Train one cell through every stop in `steps` that has no snapshot yet; returns the snapshots."""
    from training.dreambooth.loop import train

    done = []
    for stop in sorted(steps):
        target = model_dir(cfg, cell.model(stop))
        if (target / "done.json").exists():
            done.append(target)
            continue
        started = time.perf_counter()
        result = train(train_config(cfg, cell, stop, class_dir), on_progress=on_progress)
        info = {"cell": asdict(cell), "steps": result.step, "seconds": round(time.perf_counter() - started, 1),
                "train_seconds": _train_seconds(run_dir(cfg, cell)), "loss": result.logs}
        done.append(snapshot(run_dir(cfg, cell), target, cell.method, info))
    return done


def _train_seconds(run: Path) -> float:
    import csv

    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        return round(sum(float(row["seconds"]) for row in csv.DictReader(f)), 1)


def run_training(cfg: BenchConfig, cells: list[Cell], log: Callable[[str], None],
                 on_progress: Callable[[int, int, dict], None] | None = None) -> None:
    """Class pictures once, then every cell through every stop (skipping finished stops)."""
    from .bench_eval import load_model

    class_dir = class_images_dir(cfg, lambda: load_model(cfg.base_model, Path(cfg.base_model)))
    for cell in cells:
        log(f"training {cell.name} to {', '.join(map(str, cfg.steps))} steps")
        for snap in train_cell(cfg, cell, class_dir, cfg.steps, on_progress):
            info = json.loads((snap / "done.json").read_text(encoding="utf-8"))
            log(f"  {snap.name}: {info['train_seconds']} s of optimizer steps in the run so far")


def grid_models(cfg: BenchConfig) -> list[str]:
    return ["base"] + [cell.model(s) for cell in grid_cells(cfg) for s in cfg.steps]


def eval_path(cfg: BenchConfig, model: str) -> Path:
    return Path(cfg.out) / "evals" / f"{model}.json"


def _parse_model(model: str) -> tuple[Cell, int]:
    method, size, rest = model.split("-", 2)
    reg, steps = rest.rsplit("-s", 1)
    return Cell(method, int(size[1:]), reg), int(steps)


def _training_images(cfg: BenchConfig, size: int) -> list:
    from PIL import Image

    folder = dataset_dir(cfg, size)
    return [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.png"))]


def evaluate_one(cfg: BenchConfig, model: str, clip, thresholds: dict, log: Callable[[str], None]) -> dict:
    """Evaluate the base ("base") or a snapshot, write evals/<model>.json and a sample sheet beside it."""
    from .bench_eval import copy_threshold, evaluate_model, load_model, pixels
    from .pretrain_eval import grid

    if model == "base":
        size, info, folder = max(cfg.sizes), {"steps": 0, "train_seconds": 0.0}, Path(cfg.base_model)
    else:
        cell, _ = _parse_model(model)
        size, folder = cell.size, model_dir(cfg, model)
        info = json.loads((folder / "done.json").read_text(encoding="utf-8"))
    train = _training_images(cfg, size)
    if size not in thresholds:
        thresholds[size] = copy_threshold(pixels(train), cfg.resolution)
    started = time.perf_counter()
    metrics, images = evaluate_model(load_model(cfg.base_model, folder), train, n=cfg.eval_n, steps=cfg.eval_steps,
                                     guidance=cfg.guidance, size=cfg.resolution, clip=clip,
                                     threshold=thresholds[size], style_phrase=cfg.instance_prompt)
    metrics.update(model=model, dataset_size=None if model == "base" else size, steps=info["steps"],
                   train_seconds=info["train_seconds"], eval_seconds=round(time.perf_counter() - started, 1))
    sheet = grid(images["retro"][:16] + images["plain"][:8] + images["open"][:8], cols=8)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_atomic(eval_path(cfg, model).with_suffix(".png"), buffer.getvalue())
    write_atomic(eval_path(cfg, model), json.dumps(metrics, indent=2))
    log(f"  {model}: style {metrics['style_adoption']:.2f}, prior {metrics['prior_modern']:.2f}, "
        f"absent backgrounds {metrics['background_absent']:.2f} ({metrics['eval_seconds']} s)")
    return metrics


def load_miniclip():
    from generator.engine.clipscore import load_clip

    from .miniclip import SHIPPED_MINICLIP

    if not (SHIPPED_MINICLIP / "open_clip_config.json").exists():
        return None
    return load_clip(f"local-dir:{SHIPPED_MINICLIP}", device="cpu")


def reference_path(cfg: BenchConfig) -> Path:
    return Path(cfg.out) / "reference-vae.json"


def run_reference(cfg: BenchConfig) -> dict:
    """The VAE ceiling (bench_eval.vae_ceiling) of the base model, computed once."""
    from diffusers import AutoencoderKL
    import torch

    from .bench_eval import vae_ceiling

    path = reference_path(cfg)
    if not path.exists():
        vae = AutoencoderKL.from_pretrained(cfg.base_model, subfolder="vae", dtype=torch.float32)
        write_atomic(path, json.dumps(vae_ceiling(vae, cfg.eval_n, cfg.resolution), indent=2))
    return json.loads(path.read_text(encoding="utf-8"))


def run_evaluations(cfg: BenchConfig, models: list[str], log: Callable[[str], None]) -> dict[str, dict]:
    """Evaluate every model that has weights but no evals/<model>.json yet; returns all results on disk."""
    run_reference(cfg)
    clip, thresholds = load_miniclip(), {}
    for model in models:
        ready = model == "base" or (model_dir(cfg, model) / "done.json").exists()
        if ready and not eval_path(cfg, model).exists():
            log(f"evaluating {model}")
            evaluate_one(cfg, model, clip, thresholds, log)
    return load_results(cfg)


def load_results(cfg: BenchConfig) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((Path(cfg.out) / "evals").glob("*.json"))}


def score(metrics: dict) -> float:
    """One number to pick the best cell: mean of style adoption, mean prompt fidelity, prior preservation and
    accuracy on the backgrounds the fine-tune set lacks (a model that only draws its training scenes is not best)."""
    fidelity = float(np.mean(list(metrics["fidelity"].values())))
    return float(np.mean([metrics["style_adoption"], fidelity, metrics["prior_modern"], metrics["background_absent"]]))


def best_model(results: dict[str, dict], method: str) -> str | None:
    candidates = {m: r for m, r in results.items() if m.startswith(f"{method}-")}
    return max(candidates, key=lambda m: score(candidates[m])) if candidates else None


def run_comparison(cfg: BenchConfig, log: Callable[[str], None]) -> str | None:
    """Train and evaluate the other method at the grid's best (size, regularization), all step stops."""
    if not cfg.compare_methods:
        return None
    best = best_model(load_results(cfg), cfg.method)
    if best is None:
        log("no evaluated grid model yet: run --phase eval first")
        return None
    cell, _ = _parse_model(best)
    other = Cell(next(m for m in METHODS if m != cfg.method), cell.size, cell.reg)
    log(f"best {cfg.method} model {best}; training {other.name} for the LoRA/full comparison")
    run_training(cfg, [other], log)
    run_evaluations(cfg, [other.model(s) for s in cfg.steps], log)
    return best
