"""The pretraining data: which attribute combinations are held out, the fixed pool of renders, and the
augmented captions the UNet is trained with (Django-free)."""
from __future__ import annotations

import hashlib
import random
from typing import Callable

import numpy as np

from .attributes import Attributes, sample_attributes
from .captions import caption
from .phrasing import describe, style_phrases
from .render import render

NEUTRAL_PREFIXES = ("a portrait of ", "a picture of ", "an anime drawing of ", "anime style, ", "illustration, ",
                    "a character, ", "high quality, ", "an image of ", "digital art, ", "bust portrait, ")


def held_out(attrs: Attributes, mod: int = 10) -> bool:
    """True for ~1/mod of all attribute combinations: kept out of training, used for evaluation prompts."""
    key = "|".join(v for v in attrs.names().values()).encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16) % mod == 0


def sample_training_attrs(rng: np.random.Generator, mod: int) -> Attributes:
    while True:
        attrs = sample_attributes(rng)
        if not held_out(attrs, mod):
            return attrs


def sample_held_out_attrs(rng: np.random.Generator, mod: int) -> Attributes:
    while True:
        attrs = sample_attributes(rng)
        if held_out(attrs, mod):
            return attrs


def build_pool(cfg, progress: Callable[[int], None] | None = None) -> dict:
    """The fixed pool: uint8 NCHW images (modern, retro) and each modern image's attributes (as names).
    progress(done) is called after every render."""
    rng = np.random.default_rng(cfg.seed)
    modern, retro, attrs = [], [], []
    for i in range(cfg.pool_modern + cfg.pool_retro):
        a = sample_training_attrs(rng, cfg.held_out_mod)
        is_modern = i < cfg.pool_modern
        image = render(a, "modern" if is_modern else "retro", size=cfg.size, seed=int(rng.integers(2**31)))
        (modern if is_modern else retro).append(np.asarray(image).transpose(2, 0, 1))
        if is_modern:
            attrs.append(a.names())
        if progress:
            progress(i + 1)
    stack = lambda xs: np.stack(xs) if xs else np.zeros((0, 3, cfg.size, cfg.size), np.uint8)  # noqa: E731
    return {"modern": stack(modern), "retro": stack(retro), "attrs": attrs}


def augment_caption(attrs: Attributes, rnd: random.Random, cfg) -> str:
    """A modern caption, its phrases maybe shuffled / dropped, maybe behind a neutral prefix; '' for dropout.
    With cfg.indonesian / cfg.paraphrase, a share of captions are other phrasings (phrasing.describe); with
    cfg.style_words, a share start with a style phrase of their language (phrasing.style_phrases)."""
    if rnd.random() < cfg.caption_dropout:
        return ""
    text, lang = _phrasing(attrs, rnd, cfg)
    if cfg.style_words and rnd.random() < cfg.style_words:
        text = f"{rnd.choice(style_phrases(lang))}, {text}"
    return text


def _phrasing(attrs: Attributes, rnd: random.Random, cfg) -> tuple[str, str]:
    """(caption, language) before the style-word augmentation."""
    if cfg.indonesian or cfg.paraphrase:
        lang = "id" if rnd.random() < cfg.indonesian else "en"
        if lang == "id" or rnd.random() < cfg.paraphrase:
            return describe(attrs, "modern", rnd, lang, shuffle=cfg.shuffle_prob, prefix=cfg.prefix_prob), lang
    phrases = caption(attrs, "modern").split(", ")
    kept = [p for p in phrases if rnd.random() >= cfg.phrase_drop] or [rnd.choice(phrases)]
    if rnd.random() < cfg.shuffle_prob:
        rnd.shuffle(kept)
    text = ", ".join(kept)
    if rnd.random() < cfg.prefix_prob:
        text = rnd.choice(NEUTRAL_PREFIXES) + text
    return text, "en"
