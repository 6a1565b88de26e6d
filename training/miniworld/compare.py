"""Compare mini-world models side by side, and ask whether mini-CLIP ranks pictures the way the ground truth does.

`side_by_side` draws the same prompts with the same seeds from several models (e.g. v1 and v2, base and retro)
into one labelled sheet at 2x nearest-neighbour, so a person can look instead of reading numbers.
`clip_rank_agreement` is the check the first mini-CLIP failed: its CLIP-T ranked smudged retro pictures above
clear on-prompt ones. It is the Spearman correlation, over generated pictures, between mini-CLIP-T (prompt vs
picture) and the classifier-measured fidelity (share of the prompt's 8 attributes the picture shows).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from .attributes import ATTRIBUTES, Attributes
from .classifier import classify
from .pretrain_eval import SITE, generate


def side_by_side(pipes: dict, prompts: list[str], guidance: dict | None = None, seed: int = 7,
                 scale: int = 2) -> Image.Image:
    """One row per model (label on the left), one column per prompt; picture i of every row uses seed + i
    (the site's default sampler and steps: pretrain_eval.generate), each model at its CFG in `guidance` (label →
    scale; the site's where absent)."""
    rows = {}
    for name, pipe in pipes.items():
        cfg = (guidance or {}).get(name, SITE.guidance_scale)
        rows[name] = [generate(pipe, [p], seed=seed + i, guidance=cfg)[0] for i, p in enumerate(prompts)]
    w, h = next(iter(rows.values()))[0].size
    label_w = 6 * max(len(n) for n in rows) + 12  # PIL's default bitmap font: ~6 px a character
    sheet = Image.new("RGB", (label_w + len(prompts) * w * scale, len(rows) * h * scale), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (name, images) in enumerate(rows.items()):
        draw.text((4, r * h * scale + h * scale // 2 - 6), name, fill="black")
        for c, image in enumerate(images):
            sheet.paste(image.resize((w * scale, h * scale), Image.Resampling.NEAREST),
                        (label_w + c * w * scale, r * h * scale))
    return sheet


def fidelity(images: list[Image.Image], attrs: list[Attributes]) -> np.ndarray:
    """Per picture: the share of its prompt's attributes the classifier reads back."""
    preds = classify(images)
    return np.array([np.mean([p[k] == getattr(a, k).value for k in ATTRIBUTES]) for p, a in zip(preds, attrs)])


@torch.no_grad()
def clip_rank_agreement(clip, images: list[Image.Image], prompts: list[str], attrs: list[Attributes]) -> dict:
    """Spearman correlation between per-picture mini-CLIP-T and classifier fidelity (target >= 0.5)."""
    from torchmetrics.functional import spearman_corrcoef

    clip_t = (clip.embed_images(images) * clip.embed_texts(prompts)).sum(-1).float()
    truth = torch.from_numpy(fidelity(images, attrs)).float()
    return {"spearman": float(spearman_corrcoef(clip_t, truth)), "n": len(images),
            "mean_clip_t": float(clip_t.mean()), "mean_fidelity": float(truth.mean())}
