"""Captions: the prompt a picture of the mini-world would be described with.

"a young girl with pink long hair and glasses, holding an umbrella, red shirt, in a market"; retro pictures
are prefixed "retro anime style, " (or another style phrase: a DreamBooth identifier such as "sks style").
``parse_caption`` inverts ``caption`` (tests use it to show that a caption
names every attribute).
"""
from __future__ import annotations

import re

from .attributes import (Accessory, Age, Attributes, Background, Clothing, Gender, Glasses, HairColor,
                         HairStyle, Style)

STYLE_PHRASE = "retro anime style"
RETRO_PREFIX = STYLE_PHRASE + ", "

PERSON = {
    (Age.YOUNG, Gender.BOY): "a young boy",
    (Age.YOUNG, Gender.GIRL): "a young girl",
    (Age.OLD, Gender.BOY): "an old man",
    (Age.OLD, Gender.GIRL): "an old woman",
}
HAIR_STYLE = {
    HairStyle.SHORT: "short",
    HairStyle.LONG: "long",
    HairStyle.PONYTAIL: "ponytail",
    HairStyle.TWINTAILS: "twin-tail",
}
ACCESSORY = {
    Accessory.NONE: "",
    Accessory.RIBBON: "wearing a ribbon",
    Accessory.HAT: "wearing a straw hat",
    Accessory.ONIGIRI: "holding an onigiri",
    Accessory.UMBRELLA: "holding an umbrella",
}
BACKGROUND = {
    Background.FLOWER_GARDEN: "in a flower garden",
    Background.MARKET: "in a market",
    Background.VILLAGE: "in a village",
    Background.CITY_NIGHT: "in a city at night",
    Background.BEACH: "on a beach",
    Background.CLASSROOM: "in a classroom",
}


def caption(attrs: Attributes, style: Style | str = Style.MODERN, style_phrase: str = STYLE_PHRASE) -> str:
    """The template caption; a retro one starts with `style_phrase`."""
    parts = [f"{PERSON[attrs.age, attrs.gender]} with {attrs.hair_color.value} {HAIR_STYLE[attrs.hair_style]} hair"
             + (" and glasses" if attrs.glasses is Glasses.YES else "")]
    if ACCESSORY[attrs.accessory]:
        parts.append(ACCESSORY[attrs.accessory])
    parts.append(f"{attrs.clothing.value} shirt")
    parts.append(BACKGROUND[attrs.background])
    text = ", ".join(parts)
    return f"{style_phrase}, {text}" if Style(style) is Style.RETRO else text


def _alt(values) -> str:
    return "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True) if v)


_PATTERN = re.compile(
    rf"^(?P<retro>{re.escape(RETRO_PREFIX)})?(?P<person>{_alt(PERSON.values())}) with "
    rf"(?P<color>{_alt(c.value for c in HairColor)}) (?P<hstyle>{_alt(HAIR_STYLE.values())}) hair"
    rf"(?P<glasses> and glasses)?(?:, (?P<acc>{_alt(ACCESSORY.values())}))?, "
    rf"(?P<cloth>{_alt(c.value for c in Clothing)}) shirt, (?P<bg>{_alt(BACKGROUND.values())})$"
)


def parse_caption(text: str) -> tuple[Attributes, Style]:
    """The attributes and style a caption written by ``caption`` describes (ValueError for any other text)."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"not a mini-world caption: {text!r}")
    age, gender = next(k for k, v in PERSON.items() if v == match["person"])
    attrs = Attributes(
        gender=gender, age=age, hair_color=match["color"],
        hair_style=next(k for k, v in HAIR_STYLE.items() if v == match["hstyle"]),
        glasses=Glasses.YES if match["glasses"] else Glasses.NO,
        accessory=next(k for k, v in ACCESSORY.items() if v == (match["acc"] or "")),
        clothing=match["cloth"],
        background=next(k for k, v in BACKGROUND.items() if v == match["bg"]),
    )
    return attrs, Style.RETRO if match["retro"] else Style.MODERN
