"""Contact sheets: a grid of renders, both styles, every value of every attribute."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .attributes import ATTRIBUTES, Attributes, Style
from .render import render

BASE = Attributes(gender="girl", age="young", hair_color="brown", hair_style="short", glasses="no",
                  accessory="none", clothing="red", background="flower_garden")


def contact_sheet(size: int = 64, scale: int = 2, seed: int = 0, label: bool = True) -> Image.Image:
    """One row per (attribute, style); in a row, the base character with that attribute set to each value.
    A final pair of rows shows random characters in both styles."""
    rows: list[tuple[str, list[tuple[str, Image.Image]]]] = []
    for name, enum in ATTRIBUTES.items():
        for style in Style:
            cells = [(m.value, render(BASE.replace(**{name: m}), style, size, seed + i)) for i, m in enumerate(enum)]
            rows.append((f"{name} ({style.value})", cells))
    from .attributes import sample_attributes
    rng = np.random.default_rng(seed)
    randoms = [sample_attributes(rng) for _ in range(6)]
    for style in Style:
        rows.append((f"random ({style.value})", [("", render(a, style, size, seed + 100 + i)) for i, a in enumerate(randoms)]))
    cell = size * scale
    label_w = 130 if label else 0
    text_h = 12 if label else 0
    cols = max(len(r[1]) for r in rows)
    sheet = Image.new("RGB", (label_w + cols * (cell + 4), len(rows) * (cell + text_h + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (title, cells) in enumerate(rows):
        y = r * (cell + text_h + 4)
        if label:
            draw.text((4, y + cell // 2), title, fill=(0, 0, 0))
        for c, (name, image) in enumerate(cells):
            x = label_w + c * (cell + 4)
            sheet.paste(image.resize((cell, cell), Image.Resampling.NEAREST), (x, y))
            if label:
                draw.text((x + 2, y + cell + 1), name, fill=(60, 60, 60))
    return sheet


def save_contact_sheet(path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(**kwargs).save(path)
    return path
