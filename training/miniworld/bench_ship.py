"""Publishing a bench snapshot as the shipped retro model (`manage.py miniworld_bench --ship`): judged on retro
prompts as users write them at the site's sampler and steps and the CFG and LoRA scale it is registered with, and
copied with its card, its pictures and its evaluations into `weights/retro-lora` (or `--ship-to`)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from generator.engine.files import publish_dir, write_atomic

from .bench import SITE, BenchConfig, BenchError, eval_path, model_dir


def prompt_sets_path(cfg: BenchConfig, model: str) -> Path:
    scale = "" if cfg.lora_scale == 1 else f"-x{cfg.lora_scale:g}"
    guidance = "" if cfg.ship_guidance == SITE.guidance_scale else f"-g{cfg.ship_guidance:g}"
    return Path(cfg.out) / "prompt-sets" / f"{model}{scale}{guidance}.json"


def snapshot_pipeline(cfg: BenchConfig, model: str):
    """The base with the snapshot's LoRA at the scale it is shipped with: what --ship judges and draws."""
    from .bench_eval import load_model

    return load_model(cfg.base_model, model_dir(cfg, model), cfg.lora_scale)


def evaluate_prompt_sets(cfg: BenchConfig, model: str, pipe, n: int, log: Callable[[str], None]) -> list[dict]:
    """A snapshot (`pipe`: snapshot_pipeline) on retro prompts as users write them — the caption template, English
    paraphrases and Bahasa Indonesia, each opening with a retro phrase of its language (phrasing.py) — with the
    site's sampler and steps (SITE) at CFG `ship_guidance`: how far Indonesian falls behind English. Computed once
    per model, scale, CFG and n."""
    from .pretrain_eval import PROMPT_SETS, evaluate_pipeline

    path = prompt_sets_path(cfg, model)
    if path.exists() and all(r["n"] == n for r in json.loads(path.read_text(encoding="utf-8"))):
        return json.loads(path.read_text(encoding="utf-8"))
    reports = []
    setting = f"{model} × {cfg.lora_scale:g}, CFG {cfg.ship_guidance:g}"
    for prompt_set in PROMPT_SETS:
        log(f"  {setting}: {n} retro prompts, {prompt_set}")
        reports.append({**evaluate_pipeline(pipe, n=n, style="retro", prompt_set=prompt_set,
                                            guidance=cfg.ship_guidance)[0], "lora_scale": cfg.lora_scale})
    log(f"  {setting} and the base: {n} open prompts")
    reports.append({**open_prompt_report(pipe, n, cfg.instance_prompt, cfg.ship_guidance),
                    "lora_scale": cfg.lora_scale, "base_diversity": base_open_diversity(cfg, n)})
    write_atomic(path, json.dumps(reports, indent=2))
    return reports


def base_open_diversity(cfg: BenchConfig, n: int) -> float:
    """The base's open_prompt_report diversity at the site's CFG, drawn once per bench folder and n (every model,
    scale and CFG is compared with the same number)."""
    from .bench_eval import load_model

    path = Path(cfg.out) / "prompt-sets" / f"base-open-n{n}.json"
    if not path.exists():
        report = open_prompt_report(load_model(cfg.base_model, Path(cfg.base_model)), n, cfg.instance_prompt)
        write_atomic(path, json.dumps(report, indent=2))
    return json.loads(path.read_text(encoding="utf-8"))["diversity"]


def open_prompt_report(pipe, n: int, style_phrase: str, guidance: float = SITE.guidance_scale) -> dict:
    """Diversity of prompts that leave everything but the person open ("retro anime style, a young girl") at
    the site's sampler and steps: how evenly the classifier reads the attributes they leave open. It does not see
    a muddy picture (bench.md, "v7 retro recipe, continued"): look at those too."""
    from .bench_eval import open_metrics, open_prompts
    from .classifier import classify
    from .pretrain_eval import generate

    images = generate(pipe, open_prompts(n, style_phrase=style_phrase), guidance=guidance)
    return {"prompt_set": "open", "n": n, "steps": SITE.steps, "guidance": guidance,
            "scheduler": SITE.scheduler, **open_metrics(classify(images))}


def lora_snapshot(cfg: BenchConfig, model: str) -> Path:
    """The folder of a LoRA snapshot; BenchError for a full one (only LoRAs fit the 40 MB budget)."""
    source = model_dir(cfg, model)
    if not (source / "pytorch_lora_weights.safetensors").exists():
        raise BenchError(f"--ship: {model} is not a LoRA snapshot in {source.parent} (only LoRAs fit the 40 MB budget)")
    return source


def registered_samples(cfg: BenchConfig, pipe):
    """A sheet of what a user of the shipped snapshot (`pipe`: snapshot_pipeline) sees: the site's sampler and steps
    at the CFG and LoRA scale it is registered with (`ship_guidance`, `lora_scale`); rows of 8 held-out prompts: the
    retro caption template, the same in Bahasa Indonesia, person-only retro prompts, and the template without the
    style phrase. The bench's own sheet (evals/<model>.png) is drawn at its CFG 5 and 10 steps, which the site does
    not use."""
    from .bench_eval import open_prompts
    from .pretrain_eval import generate, grid, held_out_prompts, prompts_for

    attrs = held_out_prompts(8)
    prompts = (prompts_for(attrs, "retro") + prompts_for(attrs, "retro", "indonesian")
               + open_prompts(8, style_phrase=cfg.instance_prompt) + prompts_for(attrs, "modern"))
    return grid(generate(pipe, prompts, guidance=cfg.ship_guidance), cols=8)


def ship(cfg: BenchConfig, model: str, out: str | Path, card: str, samples) -> Path:
    """Publish a LoRA snapshot (weights + the cell's loss curve, evaluations, the bench's sheet, `samples` (a PIL
    image: `registered_samples`) and `card` as README.md) to `out`, atomically."""
    source = lora_snapshot(cfg, model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    for name in ("pytorch_lora_weights.safetensors", "lora_kohya.safetensors", "loss.png"):
        shutil.copy2(source / name, tmp / name)
    done = json.loads((source / "done.json").read_text(encoding="utf-8"))
    registered = {"lora_scale": cfg.lora_scale, "guidance_scale": cfg.ship_guidance}
    (tmp / "done.json").write_text(json.dumps({**done, **registered}, indent=2), encoding="utf-8")
    samples.save(tmp / "samples.png")
    shutil.copy2(eval_path(cfg, model).with_suffix(".png"), tmp / "bench-samples.png")
    shutil.copy2(eval_path(cfg, model), tmp / "evaluation.json")
    if prompt_sets_path(cfg, model).exists():
        shutil.copy2(prompt_sets_path(cfg, model), tmp / "prompt-sets.json")
    (tmp / "README.md").write_text(card, encoding="utf-8")
    tmp.chmod(0o755)  # mkdtemp makes 0700 folders
    return publish_dir(tmp, out)
