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

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import shipped
from generator.engine.tiny import OPENAI_CLIP_PREPROCESS

from .attributes import ATTRIBUTES, Style, sample_attributes
from .captions import caption
from .phrasing import describe, swap_one
from .render import render

SWAPPABLE = (*ATTRIBUTES, "style")

SHIPPED_MINICLIP = shipped.MINICLIP
MINICLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 3, "width": 64, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 4},
    },
    "preprocess_cfg": OPENAI_CLIP_PREPROCESS,
}


@dataclass
class MiniClipConfig:
    steps: int = 1200
    batch: int = 64
    pool: int = 12000  # fixed renders (half modern, half retro), re-captioned every time they are drawn
    learning_rate: float = 1e-3
    warmup: int = 100
    seed: int = 0
    # Hard negatives: per picture, captions that differ from its own in exactly one attribute (or the style),
    # scored against the picture beside the true one. A batch of random captions almost never differs in one
    # word only, so without them the model never has to look at gender or glasses.
    hard_negatives: int = 3
    hard_weight: float = 1.0
    indonesian: float = 0.35  # share of captions in Bahasa Indonesia (phrasing.ID)
    paraphrase: float = 0.6  # share of English captions drawn from phrasing.EN (the rest canonical)
    # Attributes (SWAPPABLE names) that half of the hard negatives swap: those the model still confuses
    # (mini-CLIP v2: hair style 0.62, accessory 0.86, gender 0.78); () swaps any attribute alike.
    focus: tuple = ()
    # An open_clip folder (e.g. candidates/miniclip-v2) to continue training instead of starting from scratch.
    init_from: str = ""


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


def training_caption(attrs, style, rnd: random.Random, cfg: MiniClipConfig) -> tuple[str, list[str]]:
    """A caption of (attrs, style) in a random language and phrasing, and `cfg.hard_negatives` captions in the
    same words except one attribute or the style."""
    lang = "id" if rnd.random() < cfg.indonesian else "en"
    canonical = lang == "en" and rnd.random() >= cfg.paraphrase
    phrasing = rnd.getrandbits(64)  # the same phrasing choices for the caption and its negatives

    def text(a, s):
        return caption(a, s) if canonical else describe(a, s, random.Random(phrasing), lang)

    negatives = []
    for _ in range(cfg.hard_negatives):
        name = rnd.choice(cfg.focus) if cfg.focus and rnd.random() < 0.5 else rnd.choice(SWAPPABLE)
        if name == "style":
            negatives.append(text(attrs, Style.MODERN if Style(style) is Style.RETRO else Style.RETRO))
        else:
            negatives.append(text(swap_one(attrs, name, rnd), style))
    return text(attrs, style), negatives


def hard_negative_loss(image_features, negative_features, positive_features, logit_scale) -> torch.Tensor:
    """Cross-entropy of each picture's true caption against its own hard negatives.

    image_features, positive_features: [B, D]; negative_features: [B, K, D]; all L2-normalised."""
    candidates = torch.cat([positive_features[:, None], negative_features], dim=1)  # [B, 1+K, D]
    logits = logit_scale * torch.einsum("bd,bkd->bk", image_features, candidates)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


def train_miniclip(cfg: MiniClipConfig, progress: Callable[[int, int, float], None] | None = None):
    """Train mini-CLIP from scratch; returns (model in eval mode, {"loss": [...], "seconds": s})."""
    import open_clip
    from open_clip.loss import ClipLoss
    from open_clip.model import CLIP

    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        from .text_encoder import load_open_clip_dir

        model = load_open_clip_dir(cfg.init_from)
    else:
        model = CLIP(**MINICLIP_CONFIG["model_cfg"])
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the standard CLIP BPE tokenizer, context 77
    pixels, labels = render_pool(cfg.pool, cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / cfg.warmup))
    loss_fn, gen, history, started = ClipLoss(), torch.Generator().manual_seed(cfg.seed), [], time.perf_counter()
    rnd = random.Random(cfg.seed)
    model.train()
    for step in range(cfg.steps):
        idx = torch.randperm(len(labels), generator=gen)[:cfg.batch]
        pairs = [training_caption(*labels[i], rnd, cfg) for i in idx.tolist()]
        texts = tokenizer([p for p, _ in pairs] + [n for _, negs in pairs for n in negs])
        image_features = model.encode_image(normalize(pixels[idx]), normalize=True)
        text_features = model.encode_text(texts, normalize=True)
        positives, negatives = text_features[:len(idx)], text_features[len(idx):].view(len(idx), -1,
                                                                                      text_features.shape[-1])
        logit_scale = model.logit_scale.exp()
        loss = loss_fn(image_features, positives, logit_scale)
        if cfg.hard_negatives:
            loss = loss + cfg.hard_weight * hard_negative_loss(image_features, negatives, positives, logit_scale)
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


@torch.no_grad()
def attribute_discrimination(clip, n: int = 200, seed: int = 77) -> dict:
    """For each attribute and the style: how often a render is closer to its own caption than to the same caption
    with that one attribute swapped, over `n` fresh renders (half per style), for canonical English captions,
    English paraphrases and Indonesian (phrasing.describe). Chance is 0.5."""
    rng, rnd = np.random.default_rng(seed), random.Random(seed)
    attrs = [sample_attributes(rng) for _ in range(n)]
    styles = [(Style.MODERN, Style.RETRO)[i % 2] for i in range(n)]
    images = clip.embed_images([render(a, s, size=64, seed=5000 + i) for i, (a, s) in enumerate(zip(attrs, styles))])
    out = {}
    for mode in ("en", "en-paraphrase", "id"):
        lang = "id" if mode == "id" else "en"
        phrasings = [rnd.getrandbits(64) for _ in range(n)]

        def text(a, s, k):
            return caption(a, s) if mode == "en" else describe(a, s, random.Random(phrasings[k]), lang)

        positives = clip.embed_texts([text(a, s, k) for k, (a, s) in enumerate(zip(attrs, styles))])
        pos = (images * positives).sum(-1)
        out[mode] = {}
        for name in SWAPPABLE:
            swapped = [text(a, (Style.MODERN if s is Style.RETRO else Style.RETRO), k) if name == "style"
                       else text(swap_one(a, name, rnd), s, k) for k, (a, s) in enumerate(zip(attrs, styles))]
            neg = (images * clip.embed_texts(swapped)).sum(-1)
            out[mode][name] = float((pos > neg).float().mean())
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
