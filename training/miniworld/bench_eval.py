"""Judge one fine-tuned mini-world model against the world's ground truth (Django-free).

Three splits of `n` pictures each, on attribute combinations the base model never saw (pretrain.held_out):

* retro  — "retro anime style, <full caption>" (the instance prompt, then the caption): style adoption (share
  the classifier reads as retro), prompt
  fidelity (per-attribute accuracy), background generalization (accuracy on the backgrounds the fine-tune set
  lacks or barely has) and background collapse (share drawn as a flower garden, the set's majority scene,
  when the prompt asked for another);
* plain  — the same captions without the style phrase: prior preservation (share still modern) and its fidelity;
* open   — "retro anime style, a young girl" etc.: diversity, the normalized entropy (0–1) of the six attributes
  the prompt leaves open, read by the classifier.

Memorization compares retro pictures with the fine-tune set in pixel space: a picture is a near-copy when its
nearest training picture is closer than ANY fresh render of the world is to that set (`copy_threshold`), which
calibrates the threshold on the world itself instead of a guessed cosine. The evaluation issue's embedding
metrics (CLIP-T, CLIP-I, KID, FID) come from `miniclip`, a small CLIP-architecture model trained contrastively
on the world's captions — reported as "mini-CLIP", not comparable with OpenAI CLIP numbers.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from .attributes import ATTRIBUTES, Attributes, Background, Style, sample_attributes
from .captions import PERSON, STYLE_PHRASE, caption
from .classifier import classify, load_classifier
from .pretrain_eval import held_out_prompts
from .render import render

ABSENT = (Background.MARKET.value, Background.CLASSROOM.value)  # never in the fine-tune set
RARE = (Background.CITY_NIGHT.value,)  # 8% of it
OPEN_ATTRIBUTES = ("hair_color", "hair_style", "glasses", "accessory", "clothing", "background")
EVAL_SEED = 20261125


def load_model(base_model: str, model: Path, lora_scale: float = 1.0):
    """A diffusers pipeline for a bench snapshot (full folder, or the base + its LoRA at `lora_scale`) with
    DPM-Solver++ 2M."""
    from diffusers import DPMSolverMultistepScheduler

    from generator.engine.loading import load_pipeline

    lora = model / "pytorch_lora_weights.safetensors"
    loaded = load_pipeline(base_model if lora.exists() else str(model), device="cpu", dtype=torch.float32,
                           lora=str(lora) if lora.exists() else None, lora_scale=lora_scale, local_files_only=True)
    pipe = loaded.pipeline
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def generate(pipe, prompts: list[str], seed: int, steps: int, guidance: float, size: int, batch: int = 50,
             progress: Callable[[int, int], None] | None = None) -> list[Image.Image]:
    """One picture per prompt; picture i uses generator seed `seed + i` whatever the batching."""
    images: list[Image.Image] = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        gens = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        images += pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, height=size, width=size,
                       generator=gens, output_type="pil").images
        if progress:
            progress(len(images), len(prompts))
    return images


def open_prompts(n: int, seed: int = EVAL_SEED, style_phrase: str = STYLE_PHRASE) -> list[str]:
    rng = np.random.default_rng(seed)
    people = list(PERSON.values())
    return [f"{style_phrase}, {people[int(rng.integers(len(people)))]}" for _ in range(n)]


def accuracy(preds: list[dict], attrs: list[Attributes]) -> dict[str, float]:
    return {name: float(np.mean([p[name] == getattr(a, name).value for p, a in zip(preds, attrs)]))
            for name in ATTRIBUTES}


def normalized_entropy(values: list[str], classes: int) -> float:
    """H(values) / log(classes): 1 when every class is equally frequent, 0 when one class takes all."""
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(classes))


def retro_metrics(preds: list[dict], attrs: list[Attributes]) -> dict:
    bg = np.array([a.background.value for a in attrs])
    pred_bg = np.array([p["background"] for p in preds])
    absent, rare = np.isin(bg, ABSENT), np.isin(bg, RARE)
    not_garden = bg != Background.FLOWER_GARDEN.value
    return {
        "style_adoption": float(np.mean([p["style"] == Style.RETRO.value for p in preds])),
        "fidelity": accuracy(preds, attrs),
        "background_absent": float(np.mean(pred_bg[absent] == bg[absent])),
        "background_rare": float(np.mean(pred_bg[rare] == bg[rare])),
        "garden_collapse": float(np.mean(pred_bg[not_garden] == Background.FLOWER_GARDEN.value)),
    }


def plain_metrics(preds: list[dict], attrs: list[Attributes]) -> dict:
    return {"prior_modern": float(np.mean([p["style"] == Style.MODERN.value for p in preds])),
            "prior_fidelity": accuracy(preds, attrs)}


def open_metrics(preds: list[dict]) -> dict:
    per = {name: normalized_entropy([p[name] for p in preds], len(ATTRIBUTES[name])) for name in OPEN_ATTRIBUTES}
    return {"diversity": float(np.mean(list(per.values()))), "diversity_per_attribute": per}


def pixels(images: list[Image.Image]) -> np.ndarray:
    """[N, 3·H·W] float32 in [0, 1]."""
    return np.stack([np.asarray(im.convert("RGB"), dtype=np.float32).reshape(-1) / 255.0 for im in images])


def nearest_distance(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """RMS pixel distance of each row of x to its nearest row of train: [N]."""
    d2 = (x ** 2).sum(1)[:, None] + (train ** 2).sum(1)[None, :] - 2.0 * x @ train.T
    return np.sqrt(np.maximum(d2.min(1), 0.0) / x.shape[1])


def copy_threshold(train: np.ndarray, size: int, n: int = 500, seed: int = EVAL_SEED) -> float:
    """The smallest distance from any of `n` fresh retro renders (new seeds) to the training set."""
    rng = np.random.default_rng(seed)
    fresh = [render(sample_attributes(rng), Style.RETRO, size=size, seed=int(rng.integers(2**31))) for _ in range(n)]
    return float(nearest_distance(pixels(fresh), train).min())


def memorization(images: list[Image.Image], train: np.ndarray, threshold: float) -> dict:
    d = nearest_distance(pixels(images), train)
    return {"near_copies": float(np.mean(d < threshold)), "nearest_distance_median": float(np.median(d)),
            "copy_threshold": threshold}


def evaluate_model(pipe, training_images: list[Image.Image], n: int = 200, steps: int = 10, guidance: float = 5.0,
                   size: int = 64, clip=None, threshold: float | None = None,
                   progress: Callable[[int, int], None] | None = None, style_phrase: str = STYLE_PHRASE
                   ) -> tuple[dict, dict]:
    """All bench metrics of one pipeline; returns (metrics, {split: pictures}) for grids. Retro and open prompts
    start with `style_phrase`, the fine-tune's instance prompt."""
    classifier = load_classifier()
    attrs = held_out_prompts(n, seed=EVAL_SEED)
    prompts = {"retro": [caption(a, Style.RETRO, style_phrase) for a in attrs],
               "plain": [caption(a, Style.MODERN) for a in attrs], "open": open_prompts(n, style_phrase=style_phrase)}
    images = {}
    for k, (split, texts) in enumerate(prompts.items()):
        images[split] = generate(pipe, texts, EVAL_SEED, steps, guidance, size,
                                 progress=(lambda i, t, k=k: progress(k * n + i, 3 * n)) if progress else None)
    preds = {split: classify(imgs, classifier) for split, imgs in images.items()}
    train = pixels(training_images)
    threshold = copy_threshold(train, size) if threshold is None else threshold
    metrics = {**retro_metrics(preds["retro"], attrs), **plain_metrics(preds["plain"], attrs),
               **open_metrics(preds["open"]), **memorization(images["retro"] + images["open"], train, threshold),
               "n_per_split": n}
    if clip is not None:
        from .miniclip import embedding_metrics

        truth = [render(a, Style.RETRO, size=size, seed=EVAL_SEED + i) for i, a in enumerate(attrs)]
        metrics["miniclip"] = embedding_metrics(clip, images["retro"], prompts["retro"], truth, training_images)
    return metrics, images


@torch.no_grad()
def vae_ceiling(vae, n: int = 200, size: int = 64, seed: int = EVAL_SEED) -> dict:
    """Classifier accuracy on ground-truth renders of the held-out retro and plain prompts after a round trip
    through the base VAE: the most any model on this VAE can reach (retro pastel colours suffer most)."""
    attrs = held_out_prompts(n, seed=seed)
    out = {}
    for style in (Style.RETRO, Style.MODERN):
        truth = [render(a, style, size=size, seed=seed + i) for i, a in enumerate(attrs)]
        x = torch.from_numpy(pixels(truth).reshape(n, size, size, 3)).permute(0, 3, 1, 2) * 2.0 - 1.0
        decoded = vae.decode(vae.encode(x).latent_dist.mode()).sample  # [n, 3, size, size] in ~[-1, 1]
        arrays = ((decoded.clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        preds = classify([Image.fromarray(a) for a in arrays])
        out[style.value] = {"fidelity": accuracy(preds, attrs),
                            "style": float(np.mean([p["style"] == style.value for p in preds]))}
    return out
