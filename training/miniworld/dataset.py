"""Retro dataset export: a folder shaped like a user's upload, with the ground truth beside it.

``export_dataset(out, n=50, seed=0, style="retro", size=64)`` writes ``0000.png …``, a same-stem ``.txt``
caption for each, and ``labels.jsonl`` (one JSON object a line: file, caption, seed, style, attribute names and
class indices). Retro captions start with ``style_phrase`` ("retro anime style"; a DreamBooth identifier
such as "sks style" for the bench's instance-prompt comparison). With ``indonesian`` > 0 that share of the
captions is in Bahasa Indonesia (``phrasing.describe``; with the default style phrase they open with an Indonesian
retro phrase, "gaya anime retro" …, otherwise with ``style_phrase``): a set captioned in both languages its users
write, so the fine-tune binds the style to the Indonesian phrase too. Like a scraped set, the backgrounds are skewed:
``SCRAPED_BACKGROUNDS`` gives the proportions
(60% flower garden, 20% beach, 12% village, 8% city at night; market and classroom never appear); counts are
allocated exactly (largest remainder) and shuffled, every other attribute is uniform.

Atomic: written to a temporary sibling folder, then renamed into place; an existing non-empty ``out`` is refused.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from .attributes import Background, Style, sample_attributes
from .captions import STYLE_PHRASE, caption
from .phrasing import describe
from .render import SIZES, render

SCRAPED_BACKGROUNDS: dict[Background, float] = {
    Background.FLOWER_GARDEN: 0.60,
    Background.BEACH: 0.20,
    Background.VILLAGE: 0.12,
    Background.CITY_NIGHT: 0.08,
    Background.MARKET: 0.0,
    Background.CLASSROOM: 0.0,
}

# Every scene equally often: a set curated for the style rather than scraped. The scraped skew teaches a LoRA the
# garden's texture with the style (bench.md, "Per-model CFG and a balanced retro set").
BALANCED_BACKGROUNDS: dict[Background, float] = {bg: 1 / len(Background) for bg in Background}
BACKGROUND_MIXES = {"scraped": SCRAPED_BACKGROUNDS, "balanced": BALANCED_BACKGROUNDS}


class ExportError(Exception):
    """A one-line reason the export was refused."""


def allocate(n: int, weights: Mapping) -> dict:
    """Exact counts summing to ``n`` in the given proportions (largest remainder)."""
    keys = list(weights)
    w = np.array([float(weights[k]) for k in keys])
    raw = n * w / w.sum()
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return {k: int(c) for k, c in zip(keys, counts)}


def languages(n: int, share: float, seed: int) -> list[str]:
    """Each picture's caption language: exactly round(n·share) "id", at seeded places, the rest "en"."""
    k = round(n * share)
    places = set(random.Random(f"{seed}-lang").sample(range(n), k))
    return ["id" if i in places else "en" for i in range(n)]


def caption_in(attrs, style: Style, style_phrase: str, lang: str, rnd: random.Random) -> str:
    """The template caption (English), or one Indonesian phrasing opening with the style phrase."""
    if lang == "en":
        return caption(attrs, style, style_phrase)
    if style is Style.MODERN or style_phrase == STYLE_PHRASE:
        return describe(attrs, style, rnd, lang, prefix=0.0)
    return f"{style_phrase}, {describe(attrs, Style.MODERN, rnd, lang, prefix=0.0)}"


def export_dataset(out: str | Path, n: int = 50, seed: int = 0, style: Style | str = Style.RETRO, size: int = 64,
                   backgrounds: Mapping[Background, float] | None = None, progress=None,
                   style_phrase: str = STYLE_PHRASE, indonesian: float = 0.0) -> Path:
    out = Path(out)
    style = Style(style)
    problems = ([f"--n must be at least 1, not {n}"] if n < 1 else []) + \
        ([f"--indonesian must be a share between 0 and 1 (e.g. 0.3), not {indonesian}"]
         if not 0.0 <= indonesian <= 1.0 else []) + \
        ([f"--size must be one of {', '.join(map(str, SIZES))}, not {size}"] if size not in SIZES else [])
    if problems:
        raise ExportError("; ".join(problems))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not an empty folder; choose another --out")
    rng = np.random.default_rng([int(seed), 0x64617461])
    counts = allocate(n, backgrounds or SCRAPED_BACKGROUNDS)
    scenes = [bg for bg, k in counts.items() for _ in range(k)]
    rng.shuffle(scenes)
    langs, rnd = languages(n, indonesian, seed), random.Random(f"{seed}-phrasing")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with open(tmp / "labels.jsonl", "w", encoding="utf-8") as labels:
            for i, scene in enumerate(scenes):
                attrs = sample_attributes(rng, {"background": scene})
                image_seed = int(rng.integers(2**31))
                stem = f"{i:04d}"
                render(attrs, style, size=size, seed=image_seed).save(tmp / f"{stem}.png")
                text = caption_in(attrs, style, style_phrase, langs[i], rnd)
                (tmp / f"{stem}.txt").write_text(text + "\n", encoding="utf-8")
                labels.write(json.dumps({"file": f"{stem}.png", "caption": text, "seed": image_seed,
                                         "style": style.value, "lang": langs[i], "attributes": attrs.names(),
                                         "labels": attrs.labels(style)}) + "\n")
                if progress:
                    progress(i)
        os.chmod(tmp, 0o755)
        if out.exists():
            out.rmdir()  # empty (checked above); rename cannot replace it on every platform
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_labels(folder: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(folder, "labels.jsonl").read_text(encoding="utf-8").splitlines() if line]
