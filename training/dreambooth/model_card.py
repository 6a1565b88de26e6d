"""README.md model card: what was trained on what, with which settings, and how it ended."""
import os
from pathlib import Path

from generator.engine.files import write_atomic

from .config import TrainConfig, config_dict


def render_card(cfg: TrainConfig, summary: dict, final_logs: dict, grid: Path | None, files: list[str]) -> str:
    kind = "LoRA" if cfg.method == "lora" else "full fine-tune"
    lines = [
        "---",
        f"base_model: {cfg.base_model}",
        "tags: [stable-diffusion, dreambooth, retroportal" + (", lora]" if cfg.method == "lora" else "]"),
        f"instance_prompt: {cfg.instance_prompt!r}",
        "---",
        f"# {cfg.output_name}: DreamBooth {kind}",
        "",
        f"DreamBooth (Ruiz et al., CVPR 2023) {kind} of `{cfg.base_model}` on {summary['num_images']} pictures "
        f"from `{cfg.dataset}` ({summary['num_buckets']} aspect bucket(s): {summary['buckets']}).",
        f"Instance prompt: `{cfg.instance_prompt}`."
        + (f" Prior preservation with {cfg.num_class_images} class pictures of `{cfg.class_prompt}`."
           if cfg.with_prior_preservation else ""),
        "",
        f"Trained {summary['steps']} steps ({summary['seconds']:.0f} s, prediction type {summary['prediction_type']}).",
        "",
        "## Final losses",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.6g} |" for k, v in final_logs.items() if isinstance(v, float)],
        "",
    ]
    if grid is not None:
        lines += ["## Validation", "", f"![validation grid]({os.path.relpath(grid, cfg.out)})", ""]
    lines += ["## Files", "", *[f"- `{name}`" for name in files], "", "## Hyperparameters", "",
              "| setting | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in config_dict(cfg).items()]
    return "\n".join(lines) + "\n"


def write_card(cfg: TrainConfig, summary: dict, final_logs: dict, grid: Path | None, files: list[str]) -> Path:
    path = Path(cfg.out) / "README.md"
    return write_atomic(path, render_card(cfg, summary, final_logs, grid, files))
