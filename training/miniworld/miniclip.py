"""mini-CLIP: a small CLIP-architecture model trained contrastively on the mini-world's pictures and captions.

Real CLIP weights cannot be downloaded here, and a random tiny CLIP scores every picture alike. A CLIP
trained on the world itself gives the evaluation metrics (CLIP-T, CLIP-I, KID, FID) something to measure.
It is open_clip's own `CLIP` class (ViT image tower, transformer text tower, the real CLIP BPE tokenizer)
trained with open_clip's `ClipLoss` (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021) on renders of both styles, and saved in open_clip's local-dir layout, so
`generator.engine.clipscore.load_clip("local-dir:…")` loads it like any CLIP. Numbers it gives are
"mini-CLIP" numbers: comparable between our runs, never with published CLIP scores.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import shipped
from generator.engine.tiny import OPENAI_CLIP_PREPROCESS

from .attributes import Style, sample_attributes
from .captions import caption
from .render import render

SHIPPED_MINICLIP = shipped.MINICLIP
MINICLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 3, "width": 64, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
    },
    "preprocess_cfg": OPENAI_CLIP_PREPROCESS,
}


@dataclass
class MiniClipConfig:
    steps: int = 1000
    batch: int = 64
    pool: int = 8000  # fixed renders (half modern, half retro), re-captioned every time they are drawn
    learning_rate: float = 1e-3
    warmup: int = 100
    seed: int = 0


def render_pool(n: int, seed: int) -> tuple[torch.Tensor, list]:
    """`n` renders [n, 3, 64, 64] in [0, 1] and their (attributes, style)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        attrs, style = sample_attributes(rng), (Style.MODERN, Style.RETRO)[i % 2]
        images.append(np.asarray(render(attrs, style, size=64, seed=int(rng.integers(2**31)))))
        labels.append((attrs, style))
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return pixels, labels


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """The open_clip eval transform for 64 px inputs (no resize needed): per-channel mean/std."""
    cfg = MINICLIP_CONFIG["preprocess_cfg"]
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    return (pixels - mean) / std


def train_miniclip(cfg: MiniClipConfig, progress: Callable[[int, int, float], None] | None = None):
    """Train mini-CLIP from scratch; returns (model in eval mode, {"loss": [...], "seconds": s})."""
    import open_clip
    from open_clip.loss import ClipLoss
    from open_clip.model import CLIP

    torch.manual_seed(cfg.seed)
    model = CLIP(**MINICLIP_CONFIG["model_cfg"])
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the standard CLIP BPE tokenizer, context 77
    pixels, labels = render_pool(cfg.pool, cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / cfg.warmup))
    loss_fn, gen, history, started = ClipLoss(), torch.Generator().manual_seed(cfg.seed), [], time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        idx = torch.randperm(len(labels), generator=gen)[:cfg.batch]
        texts = tokenizer([caption(*labels[i]) for i in idx.tolist()])
        image_features, text_features, logit_scale = model(normalize(pixels[idx]), texts)[:3]
        loss = loss_fn(image_features, text_features, logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        history.append(loss.item())
        if progress:
            progress(step + 1, cfg.steps, history[-1])
    return model.eval(), {"loss": history, "seconds": round(time.perf_counter() - started, 1)}


@torch.no_grad()
def retrieval_accuracy(clip, n: int = 256, seed: int = 99) -> dict:
    """Top-1 image→caption retrieval among `n` fresh renders of each style (chance = 1/n)."""
    out = {}
    for style in Style:
        rng = np.random.default_rng(seed)
        attrs = [sample_attributes(rng) for _ in range(n)]
        images = [render(a, style, size=64, seed=1000 + i) for i, a in enumerate(attrs)]
        sims = clip.embed_images(images) @ clip.embed_texts([caption(a, style) for a in attrs]).T
        out[style.value] = float((sims.argmax(1) == torch.arange(n)).float().mean())
    return out


def embedding_metrics(clip, images, prompts: list[str], truth, training_images) -> dict:
    """The evaluation issue's metrics in mini-CLIP space: CLIP-T of the pictures and of ground-truth renders
    of the same prompts (the ceiling), CLIP-I to the fine-tune set, KID and FID against the ground truth."""
    from training.evaluation import metrics

    gen, ref = clip.embed_images(images), clip.embed_images(truth)
    texts = clip.embed_texts(prompts)
    return {"clip_t": float(metrics.clip_t(gen, texts).mean()), "clip_t_truth": float(metrics.clip_t(ref, texts).mean()),
            "clip_i_train": float(metrics.clip_i(gen, clip.embed_images(training_images)).mean()),
            "kid": float(metrics.kid(gen, ref)), "fid": float(metrics.fid(gen, ref))}


def save_miniclip(model, out_dir: str | Path, overwrite: bool = True) -> Path:
    from generator.engine.tiny import save_open_clip

    return save_open_clip(model, MINICLIP_CONFIG, out_dir, overwrite=overwrite, dtype=torch.float16)
