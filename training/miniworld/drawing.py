"""The mini-world's drawing kit: colours, the retro palette and `Pen`, which draws on a supersampled canvas
in unit coordinates (render.py lays characters and scenes out with it)."""
from __future__ import annotations

import colorsys
import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .attributes import Clothing, HairColor, Style

SUPERSAMPLE = 4
SIZES = (64, 128)

HAIR = {
    HairColor.BLACK: (38, 36, 48),
    HairColor.BROWN: (122, 72, 36),
    HairColor.BLONDE: (246, 212, 92),
    HairColor.RED: (214, 40, 32),
    HairColor.BLUE: (48, 104, 226),
    HairColor.PINK: (252, 128, 190),
}
CLOTHING = {
    Clothing.RED: (222, 36, 48),
    Clothing.BLUE: (36, 80, 210),
    Clothing.GREEN: (34, 160, 66),
    Clothing.YELLOW: (250, 210, 30),
    Clothing.PURPLE: (140, 60, 190),
}
SKIN = (255, 222, 196)
WHITE = (252, 252, 250)
STREAK = (212, 214, 222)  # silver streaks of old characters
OUTLINE = (40, 26, 30)
GLASSES = (24, 20, 28)
EYE_IRIS = (70, 60, 150)
LIPS = (214, 58, 78)
BLUSH = (255, 150, 160)
RIBBON_A, RIBBON_B = (230, 30, 70), (40, 190, 220)  # B where the hair is red or pink
HAT, HAT_BAND = (238, 206, 120), (200, 40, 40)
NORI = (30, 44, 34)
UMBRELLA_A, UMBRELLA_B = (150, 60, 220), (250, 250, 240)

BG = {  # the named colours of each scene (the retro palette is made from these too)
    "sky": (130, 200, 250), "grass": (70, 180, 70), "grass_dark": (40, 130, 50), "flower_red": (240, 60, 80),
    "flower_yellow": (255, 225, 40), "flower_white": (255, 255, 255), "flower_pink": (255, 140, 200),
    "wall_market": (240, 200, 140), "awning_red": (220, 40, 40), "wood": (150, 90, 45), "orange": (255, 150, 20),
    "apple": (200, 20, 40), "melon": (120, 200, 60),
    "hill": (110, 190, 90), "house": (245, 240, 225), "roof": (170, 60, 40), "tree": (40, 120, 50),
    "trunk": (110, 70, 40),
    "night": (20, 24, 70), "building": (50, 50, 80), "window": (255, 220, 80), "moon": (255, 250, 200),
    "sea": (20, 110, 200), "sand": (245, 220, 160), "sun": (255, 200, 40), "beach_sky": (160, 225, 255),
    "cream": (245, 235, 205), "board": (30, 100, 70), "desk": (170, 110, 60), "pane": (180, 225, 250),
}


@functools.lru_cache(maxsize=4096)
def _pastel(rgb) -> tuple[int, int, int]:
    """Retro colours: a little lighter and less saturated, warmer; darks stay dark."""
    r, g, b = (c / 255 for c in rgb)
    h, l, s = colorsys.rgb_to_hls(r, g, b)
    l = l + (0.82 - l) * 0.22 if l > 0.2 else l + 0.04
    s = s * 0.72
    r, g, b = colorsys.hls_to_rgb(h, l, s)
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))


def _retro_palette() -> np.ndarray:
    base = [*HAIR.values(), *CLOTHING.values(), SKIN, WHITE, STREAK, EYE_IRIS, LIPS, BLUSH, RIBBON_A, RIBBON_B,
            HAT, HAT_BAND, NORI, UMBRELLA_A, UMBRELLA_B, *BG.values()]
    colours = {_pastel(c) for c in base}
    colours |= {OUTLINE, (90, 70, 70), (196, 150, 130)}  # outline, dark shade, skin shadow
    return np.array(sorted(colours), dtype=np.float32)


RETRO_PALETTE = _retro_palette()
_BAYER4 = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=np.float32) + 0.5) / 16 - 0.5


class Pen:
    """Draws shapes given in unit coordinates, outlines first (so touching shapes share one outer outline)."""

    def __init__(self, image: Image.Image, style: Style, rng: np.random.Generator):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.S = image.size[0]
        self.style = style
        self.rng = rng
        px = self.S / SUPERSAMPLE / 64  # one 64-px pixel, in canvas pixels, scaled with the output size
        self.line = max(1, round((1.6 if style is Style.RETRO else 0.8) * SUPERSAMPLE * px))

    def c(self, rgb, jitter: float = 0.0) -> tuple[int, int, int]:
        if jitter:
            f = 1 + self.rng.uniform(-jitter, jitter)
            rgb = tuple(min(255, max(0, int(v * f))) for v in rgb)
        return _pastel(tuple(rgb)) if self.style is Style.RETRO else tuple(rgb)

    def xy(self, points: Sequence[tuple[float, float]]):
        return [(x * self.S, y * self.S) for x, y in points]

    def box(self, x0, y0, x1, y1):
        return [x0 * self.S, y0 * self.S, x1 * self.S, y1 * self.S]

    def shapes(self, shapes, fill, outline=True, grow: float = 1.0):
        """shapes: ("ellipse", (x0,y0,x1,y1)) | ("poly", [(x,y)...]) | ("chord"/"pie", box, start, end)."""
        if outline:
            w = self.line * grow
            for kind, geom, *rest in shapes:
                if kind == "poly":  # PIL strokes polygons inside their edge: stroke the closed path instead
                    pts = self.xy(geom)
                    self.draw.polygon(pts, fill=OUTLINE)
                    self.draw.line(pts + pts[:1], fill=OUTLINE, width=max(1, int(round(2 * w))), joint="curve")
                    for x, y in pts:
                        self.draw.ellipse([x - w, y - w, x + w, y + w], fill=OUTLINE)
                else:
                    b = self.box(*geom)
                    b = [b[0] - w, b[1] - w, b[2] + w, b[3] + w]
                    if kind == "ellipse":
                        self.draw.ellipse(b, fill=OUTLINE)
                    else:  # chord / pie: also stroke the straight edge
                        getattr(self.draw, "chord" if kind == "chord" else "pieslice")(
                            b, *rest, fill=OUTLINE, outline=OUTLINE, width=int(round(w)))
        for kind, geom, *rest in shapes:
            if kind == "poly":
                self.draw.polygon(self.xy(geom), fill=fill)
            elif kind == "ellipse":
                self.draw.ellipse(self.box(*geom), fill=fill)
            elif kind == "chord":
                self.draw.chord(self.box(*geom), *rest, fill=fill)
            else:
                self.draw.pieslice(self.box(*geom), *rest, fill=fill)

    def mask(self, shapes) -> Image.Image:
        m = Image.new("L", self.image.size, 0)
        d = ImageDraw.Draw(m)
        for kind, geom, *rest in shapes:
            if kind == "poly":
                d.polygon(self.xy(geom), fill=255)
            elif kind == "ellipse":
                d.ellipse(self.box(*geom), fill=255)
            elif kind == "chord":
                d.chord(self.box(*geom), *rest, fill=255)
            else:
                d.pieslice(self.box(*geom), *rest, fill=255)
        return m

    def line_(self, points, fill=OUTLINE, width: float = 1.0):
        self.draw.line(self.xy(points), fill=fill, width=max(1, int(round(self.line * width))), joint="curve")

    def arc(self, box, start, end, fill=OUTLINE, width: float = 1.0):
        self.draw.arc(self.box(*box), start, end, fill=fill, width=max(1, int(round(self.line * width))))
