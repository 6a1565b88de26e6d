"""Judge a mini-world pipeline with the shipped ground-truth classifier (Django-free).

Prompts are ``caption()`` of attribute combinations that pretraining held out (``pretrain.held_out``), so the
score measures composition of known words, not recall of training pictures. For every prompt the classifier
reads the generated picture back; accuracy per attribute is the share of pictures showing what the prompt
asked for, and ``modern_share`` the share classified as the modern style. Pictures are drawn with the site's defaults
(``GenerationParams``: DPM++ 2M, 20 steps, CFG 7), what a user of the website gets — not the PNDM sampler the
exported folder names, which on these models loses hair and shirt colours at CFG ≥ 5.
"""
from __future__ import annotations

import random
import time
from typing import Callable

import numpy as np
import torch
from PIL import Image

from generator.engine.params import SITE_DEFAULTS
from generator.engine.schedulers import make_scheduler

from .attributes import ATTRIBUTES, Attributes
from .captions import caption
from .phrasing import describe
from .classifier import classify
from .pretrain_data import sample_held_out_attrs

EVAL_SEED = 424242
SITE = SITE_DEFAULTS  # the website's, API's and CLI's defaults


def held_out_prompts(n: int, seed: int = EVAL_SEED, mod: int = 10) -> list[Attributes]:
    rng = np.random.default_rng(seed)
    return [sample_held_out_attrs(rng, mod) for _ in range(n)]


def with_sampler(pipe, sampler: str):
    """A pipeline sharing `pipe`'s networks with sampler `sampler` (generator.engine names); `pipe` is unchanged."""
    return type(pipe)(**{**pipe.components, "scheduler": make_scheduler(sampler, pipe.scheduler.config)})


@torch.no_grad()
def generate(pipe, prompts: list[str], seed: int = 0, steps: int = SITE.steps, guidance: float = SITE.guidance_scale,
             size: int = 64, batch: int = 25, negative: str = "", sampler: str = SITE.scheduler,
             progress: Callable[[int], None] | None = None) -> list[Image.Image]:
    """`progress(n)` is called after each batch with the number of pictures it drew."""
    pipe = with_sampler(pipe, sampler)
    pipe.set_progress_bar_config(disable=True)
    images = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        gen = torch.Generator().manual_seed(seed + start)
        out = pipe(chunk, negative_prompt=[negative] * len(chunk), num_inference_steps=steps,
                   guidance_scale=guidance, height=size, width=size, generator=gen, output_type="pil")
        images.extend(out.images)
        if progress:
            progress(len(chunk))
    return images


def score(images: list[Image.Image], attrs: list[Attributes]) -> dict:
    preds = classify(images)
    accuracy = {name: float(np.mean([p[name] == getattr(a, name).value for p, a in zip(preds, attrs)]))
                for name in ATTRIBUTES}
    return {"accuracy": accuracy, "mean_accuracy": float(np.mean(list(accuracy.values()))),
            "all_correct": float(np.mean([all(p[k] == getattr(a, k).value for k in ATTRIBUTES)
                                          for p, a in zip(preds, attrs)])),
            "modern_share": float(np.mean([p["style"] == "modern" for p in preds]))}


PROMPT_SETS = ("caption", "paraphrase", "indonesian")


def prompts_for(attrs: list[Attributes], style: str, prompt_set: str = "caption", seed: int = EVAL_SEED) -> list[str]:
    """The prompts of a held-out set: the caption template, English paraphrases or Indonesian (phrasing.py)."""
    if prompt_set == "caption":
        return [caption(a, style) for a in attrs]
    rnd = random.Random(seed)
    lang = "id" if prompt_set == "indonesian" else "en"
    return [describe(a, style, rnd, lang) for a in attrs]


def evaluate_pipeline(pipe, n: int = 100, style: str = "modern", steps: int = SITE.steps,
                      guidance: float = SITE.guidance_scale, seed: int = EVAL_SEED, size: int = 64,
                      prompt_set: str = "caption", sampler: str = SITE.scheduler) -> tuple[dict, list[Image.Image]]:
    """Generate one picture per held-out prompt (captions in `style`) and score it; returns (report, images)."""
    attrs = held_out_prompts(n, seed)
    prompts = prompts_for(attrs, style, prompt_set, seed)
    started = time.perf_counter()
    images = generate(pipe, prompts, seed=seed, steps=steps, guidance=guidance, size=size, sampler=sampler)
    report = score(images, attrs)
    report.update(n=n, prompt_style=style, prompt_set=prompt_set, steps=steps, guidance=guidance, size=size,
                  scheduler=sampler, seconds=round(time.perf_counter() - started, 1),
                  example_prompt=prompts[0])
    return report, images


def grid(images: list[Image.Image], cols: int = 8, scale: int = 2) -> Image.Image:
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w * scale, rows * h * scale), "white")
    for i, im in enumerate(images):
        sheet.paste(im.resize((w * scale, h * scale), Image.Resampling.NEAREST), ((i % cols) * w * scale,
                                                                                (i // cols) * h * scale))
    return sheet
