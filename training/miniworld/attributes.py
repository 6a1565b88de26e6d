"""The mini-world's attributes: what a character can be, and how a random one is drawn.

Every attribute is an Enum whose members are listed in class-index order; ``ATTRIBUTES`` maps an
attribute's name to its Enum (the classifier has one head per entry, plus ``style``).
"""
from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, Mapping

import numpy as np


class Gender(str, Enum):
    BOY = "boy"
    GIRL = "girl"


class Age(str, Enum):
    YOUNG = "young"
    OLD = "old"


class HairColor(str, Enum):
    BLACK = "black"
    BROWN = "brown"
    BLONDE = "blonde"
    RED = "red"
    BLUE = "blue"
    PINK = "pink"


class HairStyle(str, Enum):
    SHORT = "short"
    LONG = "long"
    PONYTAIL = "ponytail"
    TWINTAILS = "twintails"


class Glasses(str, Enum):
    NO = "no"
    YES = "yes"


class Accessory(str, Enum):
    NONE = "none"
    RIBBON = "ribbon"
    HAT = "hat"
    ONIGIRI = "onigiri"
    UMBRELLA = "umbrella"


class Clothing(str, Enum):
    RED = "red"
    BLUE = "blue"
    GREEN = "green"
    YELLOW = "yellow"
    PURPLE = "purple"


class Background(str, Enum):
    FLOWER_GARDEN = "flower_garden"
    MARKET = "market"
    VILLAGE = "village"
    CITY_NIGHT = "city_night"
    BEACH = "beach"
    CLASSROOM = "classroom"


class Style(str, Enum):
    MODERN = "modern"
    RETRO = "retro"


ATTRIBUTES: dict[str, type[Enum]] = {
    "gender": Gender,
    "age": Age,
    "hair_color": HairColor,
    "hair_style": HairStyle,
    "glasses": Glasses,
    "accessory": Accessory,
    "clothing": Clothing,
    "background": Background,
}
# Every label the classifier predicts: the attributes, then the drawing style.
HEADS: dict[str, type[Enum]] = {**ATTRIBUTES, "style": Style}


@dataclasses.dataclass(frozen=True)
class Attributes:
    gender: Gender = Gender.GIRL
    age: Age = Age.YOUNG
    hair_color: HairColor = HairColor.BLACK
    hair_style: HairStyle = HairStyle.SHORT
    glasses: Glasses = Glasses.NO
    accessory: Accessory = Accessory.NONE
    clothing: Clothing = Clothing.RED
    background: Background = Background.FLOWER_GARDEN

    def __post_init__(self):
        for name, enum in ATTRIBUTES.items():  # accept plain strings ("pink") and bools for glasses
            value = getattr(self, name)
            if isinstance(value, bool):
                value = Glasses.YES if value else Glasses.NO
            object.__setattr__(self, name, enum(value))

    def replace(self, **changes) -> "Attributes":
        return dataclasses.replace(self, **changes)

    def labels(self, style: Style | str | None = None) -> dict[str, int]:
        """Class index of every attribute (and of ``style`` when given): the ground-truth record."""
        record = {name: index_of(getattr(self, name)) for name in ATTRIBUTES}
        if style is not None:
            record["style"] = index_of(Style(style))
        return record

    def names(self) -> dict[str, str]:
        return {name: getattr(self, name).value for name in ATTRIBUTES}

    @classmethod
    def from_labels(cls, labels: Mapping[str, int]) -> "Attributes":
        return cls(**{name: list(enum)[int(labels[name])] for name, enum in ATTRIBUTES.items()})


def index_of(member: Enum) -> int:
    return list(type(member)).index(member)


def sample_attributes(rng: np.random.Generator, constraints: Mapping[str, Any] | None = None) -> Attributes:
    """A random character. ``constraints`` maps an attribute name to a fixed value, a list of allowed values
    (drawn uniformly), or a dict value → weight (drawn with those proportions); other attributes are uniform."""
    constraints = dict(constraints or {})
    unknown = set(constraints) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown attribute(s) {sorted(unknown)}; known: {list(ATTRIBUTES)}")
    values = {}
    for name, enum in ATTRIBUTES.items():
        members = list(enum)
        weights = None
        spec = constraints.get(name)
        if spec is None:
            pass
        elif isinstance(spec, Mapping):
            members = [enum(k) for k in spec]
            weights = np.array([float(w) for w in spec.values()])
            if weights.sum() <= 0 or (weights < 0).any():
                raise ValueError(f"weights for {name} must be non-negative and not all zero")
            weights = weights / weights.sum()
        elif isinstance(spec, (list, tuple, set, frozenset)):
            members = [enum(v) for v in spec]
        else:
            members = [enum(spec)]
        values[name] = members[int(rng.choice(len(members), p=weights))]
    return Attributes(**values)
