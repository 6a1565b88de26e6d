"""Many ways to say one caption, in English and Bahasa Indonesia.

`captions.caption()` is the one canonical template ("a young girl with pink long hair and glasses, …"). Users
write otherwise: "an elderly man", "a schoolgirl with long pink hair", "at the seaside", and — the replaced
system's users — Indonesian ("seorang nenek berambut pendek pirang, di pantai"). A text encoder trained only on
the template never learns those words. `describe()` draws one phrasing from the tables below; mini-CLIP and the
base model's UNet train on such captions, so the default model reads both languages the way a multilingual CLIP
would.

Phrasings are drawn from a list of uniform numbers taken in a fixed order, whatever the attribute values:
the same `rnd` state gives the same phrasing choices for two captions that differ in one attribute — which is
what a hard negative must be ("… with glasses" vs "… without", everything else word for word the same).

| attribute | English (canonical first) | Indonesian |
|---|---|---|
| young boy | a young boy, a boy, a little boy, a young man | seorang anak laki-laki, anak laki-laki, seorang pemuda |
| young girl | a young girl, a girl, a little girl, a young woman, a young lady, a schoolgirl | seorang anak perempuan, seorang gadis, gadis muda |
| old man | an old man, an elderly man, a grandfather, an old gentleman | seorang kakek, pria tua, seorang lelaki tua |
| old woman | an old woman, an elderly woman, a grandmother, an old lady | seorang nenek, wanita tua, seorang perempuan tua |
| hair | with pink long hair, with long pink hair, pink long hair | berambut panjang merah muda, dengan rambut panjang berwarna merah muda |
| glasses | and glasses, wearing glasses, with glasses | dan berkacamata, memakai kacamata |
| accessory | wearing a ribbon / a straw hat, holding an onigiri / an umbrella (+ "with a …") | memakai pita / topi jerami, memegang onigiri / payung |
| clothing | red shirt, wearing a red shirt, in a red shirt | kemeja merah, baju merah, memakai kemeja merah |
| background | in a flower garden / in a garden, on a beach / at the seaside, in a city at night / on a city street at night, in a classroom / at school, … | di taman bunga, di pantai, di kota pada malam hari, di ruang kelas, di pasar, di desa |
| retro | retro anime style, retro anime, 1980s anime style, vintage anime style | gaya anime retro, anime retro, gaya anime jadul |
"""
from __future__ import annotations

import dataclasses
import random

from .attributes import ATTRIBUTES, Age, Attributes, Gender, Glasses, Style

LANGUAGES = ("en", "id")


@dataclasses.dataclass(frozen=True)
class Phrasebook:
    """Every phrasing of every attribute value in one language; the first option of each is the plainest."""

    person: dict  # (age, gender) -> options
    hair: tuple  # templates with {color} and {style}
    color: dict  # hair colour value -> word
    hair_style: dict  # hair style value -> options
    glasses: tuple  # phrases; one starting with "+" is appended to the hair phrase instead of standing alone
    accessory: dict  # accessory value -> options ('' for none)
    clothing: tuple  # templates with {color}
    shirt_color: dict  # clothing value -> word
    background: dict  # background value -> options
    retro: tuple  # style phrases, placed first
    prefixes: tuple  # neutral openers
    modern: tuple  # other style phrases (pretrain's style-word augmentation: modern pictures)


EN = Phrasebook(
    person={(Age.YOUNG, Gender.BOY): ("a young boy", "a boy", "a little boy", "a young man"),
            (Age.YOUNG, Gender.GIRL): ("a young girl", "a girl", "a little girl", "a young woman", "a young lady",
                                       "a schoolgirl"),
            (Age.OLD, Gender.BOY): ("an old man", "an elderly man", "a grandfather", "an old gentleman"),
            (Age.OLD, Gender.GIRL): ("an old woman", "an elderly woman", "a grandmother", "an old lady")},
    hair=("with {color} {style} hair", "with {style} {color} hair", "{color} {style} hair"),
    color={"black": "black", "brown": "brown", "blonde": "blonde", "red": "red", "blue": "blue", "pink": "pink"},
    hair_style={"short": ("short",), "long": ("long",), "ponytail": ("ponytail",),
                "twintails": ("twin-tail", "twintail", "pigtail")},
    glasses=("+ and glasses", "wearing glasses", "with glasses"),
    accessory={"none": ("",), "ribbon": ("wearing a ribbon", "with a hair ribbon"),
               "hat": ("wearing a straw hat", "with a straw hat"),
               "onigiri": ("holding an onigiri", "eating an onigiri"),
               "umbrella": ("holding an umbrella", "with an umbrella")},
    clothing=("{color} shirt", "wearing a {color} shirt", "in a {color} shirt"),
    shirt_color={"red": "red", "blue": "blue", "green": "green", "yellow": "yellow", "purple": "purple"},
    background={"flower_garden": ("in a flower garden", "in a garden", "among flowers"),
                "market": ("in a market", "at a market", "at a street market"),
                "village": ("in a village", "in a countryside village"),
                "city_night": ("in a city at night", "on a city street at night", "in the city at night"),
                "beach": ("on a beach", "at the seaside", "on the beach"),
                "classroom": ("in a classroom", "at school", "in a school classroom")},
    retro=("retro anime style", "retro anime", "1980s anime style", "vintage anime style"),
    modern=("modern anime style", "anime style", "new anime style", "2020s anime style"),
    prefixes=("a portrait of ", "a picture of ", "an anime drawing of ", "anime style, ", "illustration, ",
              "a character, ", "bust portrait, "),
)

ID = Phrasebook(
    person={(Age.YOUNG, Gender.BOY): ("seorang anak laki-laki", "anak laki-laki", "seorang pemuda"),
            (Age.YOUNG, Gender.GIRL): ("seorang anak perempuan", "seorang gadis", "gadis muda"),
            (Age.OLD, Gender.BOY): ("seorang kakek", "pria tua", "seorang lelaki tua"),
            (Age.OLD, Gender.GIRL): ("seorang nenek", "wanita tua", "seorang perempuan tua")},
    hair=("berambut {style} {color}", "dengan rambut {style} berwarna {color}"),
    color={"black": "hitam", "brown": "cokelat", "blonde": "pirang", "red": "merah", "blue": "biru",
           "pink": "merah muda"},
    hair_style={"short": ("pendek",), "long": ("panjang",), "ponytail": ("kuncir kuda",),
                "twintails": ("kuncir dua",)},
    glasses=("+ dan berkacamata", "memakai kacamata"),
    accessory={"none": ("",), "ribbon": ("memakai pita",), "hat": ("memakai topi jerami",),
               "onigiri": ("memegang onigiri",), "umbrella": ("memegang payung",)},
    clothing=("kemeja {color}", "baju {color}", "memakai kemeja {color}"),
    shirt_color={"red": "merah", "blue": "biru", "green": "hijau", "yellow": "kuning", "purple": "ungu"},
    background={"flower_garden": ("di taman bunga",), "market": ("di pasar",), "village": ("di desa",),
                "city_night": ("di kota pada malam hari", "di kota saat malam"), "beach": ("di pantai",),
                "classroom": ("di ruang kelas", "di kelas")},
    retro=("gaya anime retro", "anime retro", "gaya anime jadul"),
    modern=("gaya anime modern", "gaya anime", "anime modern"),
    prefixes=("potret ", "gambar ", "ilustrasi, ", "gaya anime, "),
)
BOOKS = {"en": EN, "id": ID}


def _pick(options, u: float):
    return options[min(int(u * len(options)), len(options) - 1)]


def describe(attrs: Attributes, style: Style | str, rnd: random.Random, lang: str = "en", *,
             shuffle: float = 0.5, prefix: float = 0.3) -> str:
    """One phrasing of the caption of `attrs` in `style` and `lang`, drawn with `rnd` (always 16 draws)."""
    book = BOOKS[lang]
    u = [rnd.random() for _ in range(16)]
    names = attrs.names()
    hair = _pick(book.hair, u[0]).format(color=book.color[names["hair_color"]],
                                          style=_pick(book.hair_style[names["hair_style"]], u[1]))
    person = f"{_pick(book.person[attrs.age, attrs.gender], u[2])} {hair}"
    glasses = _pick(book.glasses, u[3]) if attrs.glasses is Glasses.YES else ""
    if glasses.startswith("+"):
        person, glasses = person + glasses[1:], ""
    slots = [person, glasses, _pick(book.accessory[names["accessory"]], u[4]),
             _pick(book.clothing, u[5]).format(color=book.shirt_color[names["clothing"]]),
             _pick(book.background[names["background"]], u[6])]
    keys = u[7:12]
    order = sorted(range(len(slots)), key=keys.__getitem__) if u[12] < shuffle else range(len(slots))
    text = ", ".join(slots[i] for i in order if slots[i])
    if Style(style) is Style.RETRO:
        text = f"{_pick(book.retro, u[13])}, {text}"
    elif u[14] < prefix:
        text = _pick(book.prefixes, u[15]) + text
    return text


def style_phrases(lang: str = "en") -> tuple[str, ...]:
    """Every style phrase of `lang`, retro and modern: what the pretraining's style-word augmentation draws."""
    return BOOKS[lang].retro + BOOKS[lang].modern


def swap_one(attrs: Attributes, name: str, rnd: random.Random) -> Attributes:
    """`attrs` with attribute `name` changed to another value, drawn with `rnd`."""
    enum = ATTRIBUTES[name]
    others = [v for v in enum if v is not getattr(attrs, name)]
    return attrs.replace(**{name: others[rnd.randrange(len(others))]})
