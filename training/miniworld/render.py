"""The mini-world renderer: a bust portrait of an anime character, drawn with PIL from its attributes.

``render(attrs, style, size=64, seed=0)`` draws on a canvas ``SUPERSAMPLE`` times larger, then box-downscales
(anti-aliasing). Everything is laid out in unit coordinates (0..1 of the canvas) and jittered a little (position,
sizes, colour shades, background layout) by a numpy Generator seeded with ``seed``: same seed, same pixels.

Two styles:

* modern — saturated colours, thin outlines, big eyes with two highlights, soft cel shadow on the hair;
* retro (1970s–90s TV anime) — pastel colours, thick simple outlines, small eyes with one highlight, the whole
  picture snapped to a limited palette with ordered (Bayer) dithering, a warm faded tint, film grain and
  CRT scanlines.

Attributes are drawn to stay recognisable at 64 px in both styles: age shows as silver streaks in the hair
and wrinkles (the hair colour itself stays), glasses are thick dark frames, gender shows in the face (girls:
eyelashes, blush, red lips, sailor collar; boys: thick eyebrows, square jaw, shirt collar).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from .attributes import (Accessory, Age, Attributes, Background, Gender, Glasses, HairColor,
                         HairStyle, Style)
from .drawing import (BG, BLUSH, CLOTHING, EYE_IRIS, GLASSES, HAIR, HAT, HAT_BAND, LIPS, NORI, OUTLINE, RETRO_PALETTE,
                      RIBBON_A, RIBBON_B, SIZES, SKIN, STREAK, SUPERSAMPLE, UMBRELLA_A, UMBRELLA_B, WHITE, _BAYER4, Pen)

# ---------------------------------------------------------------------------------------------------- scenes


def _background(pen: Pen, scene: Background, rng: np.random.Generator) -> None:
    d, c = pen.draw, pen.c
    u = rng.uniform

    def rect(x0, y0, x1, y1, col):
        d.rectangle(pen.box(x0, y0, x1, y1), fill=col)

    if scene is Background.FLOWER_GARDEN:
        horizon = u(0.30, 0.38)
        rect(0, 0, 1, horizon, c(BG["sky"], 0.05))
        rect(0, horizon, 1, 1, c(BG["grass"], 0.06))
        for _ in range(5):  # bushes on the horizon
            x = u(0, 1)
            d.ellipse(pen.box(x - 0.12, horizon - 0.07, x + 0.12, horizon + 0.07), fill=c(BG["grass_dark"]))
        for _ in range(38):
            x, y, r = u(0, 1), u(horizon + 0.02, 1), u(0.025, 0.04)
            col = BG[["flower_red", "flower_yellow", "flower_white", "flower_pink"][rng.integers(4)]]
            for k in range(5):
                a = 2 * np.pi * k / 5
                px, py = x + r * 0.8 * np.cos(a), y + r * 0.8 * np.sin(a)
                d.ellipse(pen.box(px - r * 0.6, py - r * 0.6, px + r * 0.6, py + r * 0.6), fill=c(col))
            d.ellipse(pen.box(x - r * 0.45, y - r * 0.45, x + r * 0.45, y + r * 0.45), fill=c(BG["sun"]))
    elif scene is Background.MARKET:
        rect(0, 0, 1, 1, c(BG["wall_market"], 0.05))
        top, stripe = u(0.08, 0.14), u(0.07, 0.09)
        x = -u(0, stripe)
        k = 0
        while x < 1:  # striped awning with a scalloped edge
            col = c(BG["awning_red"]) if k % 2 == 0 else c(WHITE)
            rect(x, 0, x + stripe, top + 0.12, col)
            d.pieslice(pen.box(x, top + 0.12 - stripe / 2, x + stripe, top + 0.12 + stripe / 2), 0, 180, fill=col)
            x += stripe
            k += 1
        counter = u(0.62, 0.7)
        rect(0, counter, 1, 1, c(BG["wood"], 0.05))
        for _ in range(30):  # fruit piled on the counter
            x, y, r = u(0, 1), u(counter - 0.05, counter + 0.12), u(0.03, 0.045)
            col = BG[["orange", "apple", "melon"][rng.integers(3)]]
            d.ellipse(pen.box(x - r, y - r, x + r, y + r), fill=c(col), outline=c(OUTLINE), width=max(1, pen.line // 2))
        for x0 in (0.0, 0.85):  # crates
            rect(x0 + u(-0.02, 0.02), counter + 0.12, x0 + 0.17, 1, c(BG["trunk"]))
    elif scene is Background.VILLAGE:
        rect(0, 0, 1, 1, c(BG["sky"], 0.05))
        for _ in range(3):  # rolling hills
            x = u(-0.2, 1.2)
            d.ellipse(pen.box(x - 0.6, u(0.35, 0.5), x + 0.6, 1.6), fill=c(BG["hill"], 0.08))
        rect(0, 0.75, 1, 1, c(BG["hill"], 0.05))
        for x in (u(0.0, 0.1), u(0.75, 0.85)):  # houses: white walls, red-brown gabled roofs
            y = u(0.42, 0.5)
            rect(x, y, x + 0.18, y + 0.18, c(BG["house"]))
            d.polygon(pen.xy([(x - 0.03, y), (x + 0.09, y - 0.11), (x + 0.21, y)]), fill=c(BG["roof"], 0.05))
            rect(x + 0.07, y + 0.08, x + 0.11, y + 0.18, c(BG["trunk"]))
        for x in (u(0.22, 0.3), u(0.65, 0.72)):  # trees
            rect(x - 0.015, 0.3, x + 0.015, 0.45, c(BG["trunk"]))
            d.ellipse(pen.box(x - 0.07, 0.17, x + 0.07, 0.34), fill=c(BG["tree"], 0.05))
    elif scene is Background.CITY_NIGHT:
        rect(0, 0, 1, 1, c(BG["night"], 0.05))
        for _ in range(25):
            x, y = u(0, 1), u(0, 0.4)
            d.ellipse(pen.box(x - 0.005, y - 0.005, x + 0.005, y + 0.005), fill=c(WHITE))
        mx, my = u(0.72, 0.88), u(0.08, 0.16)
        d.ellipse(pen.box(mx - 0.07, my - 0.07, mx + 0.07, my + 0.07), fill=c(BG["moon"]))
        x = -u(0, 0.1)
        while x < 1:  # skyline with lit windows
            w, top = u(0.12, 0.2), u(0.2, 0.45)
            rect(x, top, x + w, 1, c(BG["building"], 0.1))
            for wy in np.arange(top + 0.04, 1, 0.07):
                for wx in np.arange(x + 0.025, x + w - 0.03, 0.05):
                    if rng.random() < 0.6:
                        rect(wx, wy, wx + 0.025, wy + 0.035, c(BG["window"]))
            x += w + u(0.0, 0.02)
    elif scene is Background.BEACH:
        horizon = u(0.38, 0.45)
        shore = horizon + u(0.14, 0.2)
        rect(0, 0, 1, horizon, c(BG["beach_sky"], 0.05))
        sx, sy = u(0.08, 0.9), u(0.06, 0.14)
        d.ellipse(pen.box(sx - 0.07, sy - 0.07, sx + 0.07, sy + 0.07), fill=c(BG["sun"]))
        rect(0, horizon, 1, shore, c(BG["sea"], 0.05))
        for y in np.arange(horizon + 0.04, shore - 0.02, 0.05):  # white wave lines
            x0 = u(-0.1, 0.1)
            pen.line_([(x0 + k * 0.1, y + (0.012 if k % 2 else 0)) for k in range(13)], fill=c(WHITE), width=1.0)
        rect(0, shore, 1, 1, c(BG["sand"], 0.04))
        for _ in range(6):
            x, y = u(0, 1), u(shore + 0.02, 1)
            d.ellipse(pen.box(x - 0.015, y - 0.01, x + 0.015, y + 0.01), fill=c(WHITE))
    elif scene is Background.CLASSROOM:
        rect(0, 0, 1, 1, c(BG["cream"], 0.04))
        bx0, by0 = u(0.0, 0.08), u(0.06, 0.12)
        rect(bx0 - 0.03, by0 - 0.03, bx0 + 0.9, by0 + 0.42, c(BG["desk"]))  # chalkboard in a wooden frame
        rect(bx0, by0, bx0 + 0.87, by0 + 0.39, c(BG["board"], 0.05))
        for _ in range(3):  # chalk scribbles
            y = by0 + u(0.05, 0.3)
            x0 = bx0 + u(0.02, 0.2)
            pen.line_([(x0, y), (x0 + u(0.1, 0.2), y + u(-0.01, 0.01))], fill=c(WHITE), width=0.8)
        rect(0, by0 + 0.46, 1, by0 + 0.49, c(BG["desk"]))  # chalk rail / wainscot line
        desk = u(0.78, 0.84)
        rect(0, desk, 1, 1, c(BG["desk"], 0.05))
        rect(0, desk, 1, desk + 0.03, c(BG["trunk"]))


# ---------------------------------------------------------------------------------------------------- figure


def _stripes(size: int, rng: np.random.Generator, hw: float) -> Image.Image:
    """Diagonal silver bands (as a mask) for the streaks of grey in an old character's hair."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    period, phase = hw * 0.6, rng.uniform(0, 1)
    band = ((xx * 0.9 + yy * 0.35) / period + phase) % 1.0 < 0.3
    return Image.fromarray((band * 255).astype(np.uint8), "L")


def _paint_hair(pen: Pen, shapes, hair, old: bool, rng, hw: float, shadow: bool) -> None:
    pen.shapes(shapes, fill=hair)
    mask = pen.mask(shapes)
    if shadow and pen.style is Style.MODERN:  # soft cel shadow on the lower half of the hair
        shade = tuple(int(v * 0.78) for v in hair)
        lower = Image.new("L", mask.size, 0)
        ImageDraw.Draw(lower).rectangle([0, int(mask.size[1] * 0.47), mask.size[0], mask.size[1]], fill=255)
        pen.image.paste(shade, (0, 0), ImageChops.multiply(mask, lower))
    if old:
        pen.image.paste(pen.c(STREAK), (0, 0), ImageChops.multiply(mask, _stripes(mask.size[0], rng, hw)))


def _figure(pen: Pen, a: Attributes, rng: np.random.Generator) -> None:
    u = rng.uniform
    c = pen.c
    retro = pen.style is Style.RETRO
    girl = a.gender is Gender.GIRL
    old = a.age is Age.OLD
    k = u(0.95, 1.05)
    cx, cy = 0.5 + u(-0.035, 0.035), 0.45 + u(-0.025, 0.025)
    hw, hh = 0.165 * k * (0.97 if girl else 1.03), 0.19 * k
    hair = c(HAIR[a.hair_color], 0.06)
    skin = c(SKIN, 0.03)
    cloth = c(CLOTHING[a.clothing], 0.05)
    top = cy - hh  # top of the skull

    # --- umbrella: canopy behind the figure, top left
    if a.accessory is Accessory.UMBRELLA:
        ux, uy, ur = cx - 0.26, 0.2 + u(-0.02, 0.02), 0.25
        box = (ux - ur, uy - ur * 0.75, ux + ur, uy + ur * 0.75)
        pen.shapes([("pie", box, 180, 360)], fill=c(UMBRELLA_A, 0.05))
        for i in range(0, 6, 2):  # alternate light panels
            pen.draw.pieslice(pen.box(*box), 180 + i * 30 + 30, 180 + i * 30 + 60, fill=c(UMBRELLA_B))
        for i in range(7):
            ang = np.pi + i * np.pi / 6
            pen.line_([(ux, uy), (ux + ur * np.cos(ang), uy + ur * 0.75 * np.sin(ang))], width=0.6)
        pen.line_([(ux - ur, uy), (ux + ur, uy)], width=1.0)
        pen.shapes([("ellipse", (ux - 0.015, uy - ur * 0.75 - 0.04, ux + 0.015, uy - ur * 0.75 + 0.01))], fill=c(UMBRELLA_A))

    # --- hair behind the head (long hair, tails)
    back = []
    if a.hair_style is HairStyle.LONG:
        back.append(("poly", [(cx - hw - 0.05, cy - 0.05), (cx + hw + 0.05, cy - 0.05), (cx + hw + 0.09, 0.86),
                              (cx, 0.8), (cx - hw - 0.09, 0.86)]))
        back.append(("ellipse", (cx - hw - 0.05, top - 0.04, cx + hw + 0.05, cy + 0.15)))
    elif a.hair_style is HairStyle.PONYTAIL:
        tx = cx + hw + 0.02
        back.append(("poly", [(cx + hw * 0.3, top + 0.02), (tx + 0.08, top + 0.02), (tx + 0.15, cy + 0.12),
                              (tx + 0.1, cy + 0.26), (tx + 0.03, cy + 0.1), (cx + hw * 0.5, top + 0.1)]))
    elif a.hair_style is HairStyle.TWINTAILS:
        for s in (-1, 1):
            bx = cx + s * (hw + 0.02)
            back.append(("poly", [(bx, top + 0.03), (bx + s * 0.1, top + 0.02), (bx + s * 0.17, cy + 0.12),
                                  (bx + s * 0.12, cy + 0.28), (bx + s * 0.06, cy + 0.08), (bx - s * 0.02, top + 0.1)]))
    if back:
        _paint_hair(pen, back, hair, old, rng, hw, shadow=True)
    if a.hair_style in (HairStyle.PONYTAIL, HairStyle.TWINTAILS):  # hair ties
        sides = (1,) if a.hair_style is HairStyle.PONYTAIL else (-1, 1)
        for s in sides:
            tx = cx + s * (hw + 0.05)
            pen.shapes([("ellipse", (tx - 0.03, top + 0.0, tx + 0.03, top + 0.06))], fill=c(RIBBON_B if s > 0 else RIBBON_A))

    # --- body: shoulders, neck, collar
    sw = 0.36 if not girl else 0.32
    pen.shapes([("chord", (cx - sw, 0.74 + u(-0.01, 0.01), cx + sw, 1.3), 180, 360)], fill=cloth)
    neck = 0.05 if girl else 0.065
    pen.shapes([("poly", [(cx - neck, cy + hh * 0.6), (cx + neck, cy + hh * 0.6), (cx + neck, 0.78), (cx - neck, 0.78)])],
               fill=skin)
    pen.draw.polygon(pen.xy([(cx - neck, 0.74), (cx + neck, 0.74), (cx, 0.8)]), fill=skin)
    shadow = tuple(int(v * 0.86) for v in skin)  # cel shadow the chin casts on the neck
    pen.draw.polygon(pen.xy([(cx - neck, cy + hh * 0.6), (cx + neck, cy + hh * 0.6), (cx + neck, cy + hh * 1.25),
                             (cx, cy + hh * 1.4), (cx - neck, cy + hh * 1.25)]), fill=shadow)
    if girl:  # sailor collar with a red scarf
        pen.shapes([("poly", [(cx - 0.16, 0.76), (cx - neck, 0.74), (cx, 0.84), (cx + neck, 0.74), (cx + 0.16, 0.76),
                              (cx + 0.13, 0.86), (cx, 0.92), (cx - 0.13, 0.86)])], fill=c(WHITE))
        pen.draw.polygon(pen.xy([(cx - neck, 0.74), (cx + neck, 0.74), (cx, 0.84)]), fill=skin)
        pen.shapes([("poly", [(cx - 0.05, 0.84), (cx + 0.05, 0.84), (cx, 0.93)])], fill=c(LIPS))
    else:  # pointed shirt collar
        for s in (-1, 1):
            pen.shapes([("poly", [(cx + s * neck, 0.73), (cx + s * (neck + 0.09), 0.78), (cx + s * 0.02, 0.87)])],
                       fill=c(WHITE))

    # --- head: ears, face (rounder for girls, square jaw for boys)
    ey = cy + hh * 0.17
    pen.shapes([("ellipse", (cx - hw - 0.03, ey - 0.04, cx - hw + 0.03, ey + 0.05)),
                ("ellipse", (cx + hw - 0.03, ey - 0.04, cx + hw + 0.03, ey + 0.05))], fill=skin)
    if girl:
        jaw = [(cx - hw, cy), (cx - hw * 0.85, cy + hh * 0.6), (cx, cy + hh * 1.12), (cx + hw * 0.85, cy + hh * 0.6),
               (cx + hw, cy)]
    else:
        jaw = [(cx - hw, cy), (cx - hw * 0.98, cy + hh * 0.75), (cx - hw * 0.4, cy + hh * 1.1),
               (cx + hw * 0.4, cy + hh * 1.1), (cx + hw * 0.98, cy + hh * 0.75), (cx + hw, cy)]
    pen.shapes([("ellipse", (cx - hw, top, cx + hw, cy + hh * 0.5)), ("poly", jaw)], fill=skin)

    # --- eyes
    big = not retro
    ew, eh = (0.052, 0.062) if big else (0.042, 0.04)
    ex = hw * 0.47
    for s in (-1, 1):
        x = cx + s * ex
        pen.draw.ellipse(pen.box(x - ew, ey - eh, x + ew, ey + eh), fill=c(WHITE))
        iw = ew * 0.72
        pen.draw.ellipse(pen.box(x - iw, ey - eh * 0.85, x + iw, ey + eh), fill=c(EYE_IRIS))
        pen.draw.ellipse(pen.box(x - iw * 0.5, ey - eh * 0.3, x + iw * 0.5, ey + eh * 0.6), fill=OUTLINE)
        if big:
            pen.draw.ellipse(pen.box(x - iw * 0.7, ey - eh * 0.7, x - iw * 0.05, ey - eh * 0.1), fill=WHITE)
            pen.draw.ellipse(pen.box(x + iw * 0.2, ey + eh * 0.35, x + iw * 0.55, ey + eh * 0.7), fill=WHITE)
        else:
            pen.draw.ellipse(pen.box(x - iw * 0.5, ey - eh * 0.55, x - iw * 0.05, ey - eh * 0.1), fill=c(WHITE))
        pen.arc((x - ew * 1.1, ey - eh * 1.05, x + ew * 1.1, ey + eh * 1.3), 190, 350, width=1.6 if girl else 1.2)
        if girl:  # lashes flicking out at the outer corner
            ox = x + s * ew
            pen.draw.polygon(pen.xy([(ox - s * 0.012, ey - eh * 0.6), (ox + s * 0.03, ey - eh * 1.1),
                                     (ox + s * 0.004, ey - eh * 0.05)]), fill=OUTLINE)
            pen.draw.ellipse(pen.box(x + s * ew * 0.9 - 0.035, ey + eh + 0.012, x + s * ew * 0.9 + 0.035,
                                     ey + eh + 0.04), fill=c(BLUSH))
        else:  # thick straight eyebrows
            pen.line_([(x - s * ew * 0.9, ey - eh - 0.035), (x + s * ew * 1.2, ey - eh - 0.045)], width=2.2)
        if old:  # bags under the eyes and crow's feet
            pen.arc((x - ew, ey + eh * 0.6, x + ew, ey + eh * 1.9), 20, 160, width=1.1)
            ox = x + s * ew * 1.15
            pen.line_([(ox, ey - 0.005), (ox + s * 0.03, ey - 0.02)], width=1.0)
            pen.line_([(ox, ey + 0.01), (ox + s * 0.03, ey + 0.02)], width=1.0)
    # nose, mouth, wrinkles
    pen.line_([(cx + 0.004, ey + eh + 0.02), (cx - 0.008, ey + eh + 0.045)], width=0.8)
    my = cy + hh * 0.78
    if girl:
        pen.shapes([("ellipse", (cx - 0.022, my - 0.01, cx + 0.022, my + 0.014))], fill=c(LIPS), grow=0.5)
    else:
        pen.line_([(cx - 0.035, my), (cx + 0.035, my)], width=1.2)
    if old:  # smile lines
        for s in (-1, 1):
            pen.line_([(cx + s * 0.05, my - 0.06), (cx + s * 0.065, my + 0.01)], width=1.1)

    # --- hair in front: crown and bangs, side locks
    front = [("chord", (cx - hw - 0.035, top - 0.045, cx + hw + 0.035, cy + hh * 0.75), 180, 360)]
    fringe = cy - hh * 0.35
    n = 5
    pts = [(cx - hw - 0.03, cy - 0.02)]
    for i in range(n + 1):
        x = cx - hw + 2 * hw * i / n
        pts.append((x, fringe + (0.03 + u(0, 0.02) if i % 2 else 0.0) - (0.02 if i in (0, n) else 0)))
        if i < n:
            pts.append((x + hw / n, fringe + 0.05 + u(-0.01, 0.01)))
    pts.append((cx + hw + 0.03, cy - 0.02))
    pts.append((cx + hw + 0.03, top + 0.05))
    pts.append((cx - hw - 0.03, top + 0.05))
    front.append(("poly", pts))
    side = ey + 0.04 if a.hair_style is HairStyle.SHORT else ey + 0.12
    for s in (-1, 1):
        x0 = cx + s * (hw + 0.04)
        front.append(("poly", [(x0, cy - 0.06), (x0 - s * 0.07, cy - 0.06), (x0 - s * 0.05, side),
                               (x0 + s * 0.005, side + 0.02)]))
    _paint_hair(pen, front, hair, old, rng, hw, shadow=False)
    if not retro:  # the glossy "angel ring" highlight of modern anime hair
        shine = tuple(int(v + (255 - v) * 0.55) for v in hair)
        pen.arc((cx - hw * 0.8, top + 0.015, cx + hw * 0.8, cy + hh * 0.3), 215, 325, fill=shine, width=1.6)

    # --- glasses: thick dark round frames
    if a.glasses is Glasses.YES:
        gr = 0.068
        gw = pen.S * 0.022
        for s in (-1, 1):
            x = cx + s * ex
            pen.draw.ellipse(pen.box(x - gr, ey - gr * 0.95, x + gr, ey + gr * 0.95), outline=GLASSES, width=int(gw))
            pen.line_([(x + s * gr, ey - 0.01), (cx + s * (hw + 0.01), ey - 0.02)], fill=GLASSES, width=1.5)
        pen.line_([(cx - ex + gr, ey - 0.01), (cx + ex - gr, ey - 0.01)], fill=GLASSES, width=2.0)

    # --- things worn on the head or held
    if a.accessory is Accessory.RIBBON:
        col = c(RIBBON_B if a.hair_color in (HairColor.RED, HairColor.PINK) else RIBBON_A, 0.05)
        rx, ry, r = cx + hw * 0.45, top + 0.01, 0.1
        pen.shapes([("poly", [(rx, ry), (rx - r, ry - r * 0.7), (rx - r, ry + r * 0.7)]),
                    ("poly", [(rx, ry), (rx + r, ry - r * 0.7), (rx + r, ry + r * 0.7)]),
                    ("ellipse", (rx - 0.025, ry - 0.025, rx + 0.025, ry + 0.025))], fill=col)
    elif a.accessory is Accessory.HAT:
        by = top + 0.05
        pen.shapes([("ellipse", (cx - 0.3, by - 0.05, cx + 0.3, by + 0.05)),
                    ("chord", (cx - hw * 0.95, top - 0.14, cx + hw * 0.95, by + 0.1), 180, 360)], fill=c(HAT, 0.04))
        pen.draw.rectangle(pen.box(cx - hw * 0.95, by - 0.045, cx + hw * 0.95, by - 0.005), fill=c(HAT_BAND))
    elif a.accessory is Accessory.ONIGIRI:
        ox, oy, r = cx + 0.17, 0.88, 0.1
        pen.shapes([("poly", [(ox, oy - r), (ox + r * 1.05, oy + r * 0.75), (ox - r * 1.05, oy + r * 0.75)]),
                    ("ellipse", (ox - r * 0.35, oy - r * 1.1, ox + r * 0.35, oy - r * 0.6))], fill=c(WHITE), grow=1.2)
        pen.draw.rectangle(pen.box(ox - r * 0.45, oy + r * 0.2, ox + r * 0.45, oy + r * 0.75), fill=c(NORI))
        pen.shapes([("ellipse", (ox - r * 0.55, oy + r * 0.6, ox + r * 0.35, oy + r * 1.25))], fill=skin)
    elif a.accessory is Accessory.UMBRELLA:
        hx = cx - 0.26
        pen.line_([(hx, 0.2), (hx + 0.02, 0.9)], fill=OUTLINE, width=2.2 if not retro else 1.4)
        pen.shapes([("ellipse", (hx - 0.04, 0.8, hx + 0.06, 0.9))], fill=skin)


# ---------------------------------------------------------------------------------------------------- styles


@functools.lru_cache(maxsize=1)
def _palette_lut() -> np.ndarray:
    """Nearest retro-palette colour for each of 32×32×32 colour cells (indexed r<<10 | g<<5 | b)."""
    levels = np.arange(32, dtype=np.float32) * 8 + 4
    cells = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    return ((cells[:, None, :] - RETRO_PALETTE[None]) ** 2).sum(-1).argmin(-1).astype(np.int16)


def _retro_finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Limited palette with ordered dither, warm faded tint, film grain and CRT scanlines."""
    arr = np.asarray(image, dtype=np.float32)
    h, w, _ = arr.shape
    bayer = np.tile(_BAYER4, (h // 4 + 1, w // 4 + 1))[:h, :w, None]
    dithered = np.clip(arr + bayer * 22.0, 0, 255).astype(np.int32) >> 3  # 32 levels a channel
    arr = RETRO_PALETTE[_palette_lut()[(dithered[..., 0] << 10) | (dithered[..., 1] << 5) | dithered[..., 2]]]
    warm = np.array([255, 228, 190], dtype=np.float32)
    arr = arr * 0.86 + warm * 0.12  # faded, warm: lifted blacks, creamy whites
    arr *= np.array([1.0, 0.96, 0.86], dtype=np.float32)
    arr += rng.normal(0, 5.0, size=(h, w, 1)).astype(np.float32)  # film grain (luminance)
    arr[1::2] *= 0.88  # scanlines
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def render(attrs: Attributes, style: Style | str = Style.MODERN, size: int = 64, seed: int = 0) -> Image.Image:
    """The portrait of ``attrs`` in ``style`` as an RGB image of ``size``×``size`` (64 or 128)."""
    style = Style(style)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size}")
    rng = np.random.default_rng([int(seed), 0x6D696E69])
    canvas = Image.new("RGB", (size * SUPERSAMPLE, size * SUPERSAMPLE), (255, 255, 255))
    pen = Pen(canvas, style, rng)
    _background(pen, attrs.background, np.random.default_rng([int(seed), 1]))
    _figure(pen, attrs, rng)
    image = canvas.resize((size, size), Image.Resampling.BOX)
    if style is Style.RETRO:
        image = _retro_finish(image, rng)
    return image
