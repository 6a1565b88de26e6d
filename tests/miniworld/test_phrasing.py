"""Paraphrases and Indonesian captions: every attribute value has its own words, and a caption with one
attribute swapped (a hard negative) differs from the original in that attribute's words only."""
import random

import numpy as np
import pytest

from training.miniworld import Attributes, sample_attributes
from training.miniworld.attributes import ATTRIBUTES, Style
from training.miniworld.phrasing import BOOKS, describe, swap_one


@pytest.mark.parametrize("lang", ["en", "id"])
def test_same_draws_same_phrasing(lang):
    attrs = Attributes(gender="boy", age="old", glasses="yes", accessory="hat", background="beach")
    texts = {describe(attrs, "modern", random.Random(3), lang) for _ in range(3)}
    assert len(texts) == 1
    assert len({describe(attrs, "modern", random.Random(s), lang) for s in range(40)}) > 5  # and it varies


@pytest.mark.parametrize("lang", ["en", "id"])
def test_every_value_is_worded_differently(lang):
    """Two values of one attribute never give the same text under the same draws (else a negative is no
    negative): checked for every attribute, every pair of values, many phrasings."""
    rng = np.random.default_rng(0)
    for trial in range(30):
        base = sample_attributes(rng)
        for name, enum in ATTRIBUTES.items():
            texts = {describe(base.replace(**{name: v}), "modern", random.Random(trial), lang) for v in enum}
            assert len(texts) == len(enum), (name, texts)


@pytest.mark.parametrize("lang", ["en", "id"])
def test_swapped_caption_keeps_the_other_words(lang):
    rng, rnd = np.random.default_rng(1), random.Random(1)
    for trial in range(40):
        attrs = sample_attributes(rng)
        name = list(ATTRIBUTES)[trial % len(ATTRIBUTES)]
        other = swap_one(attrs, name, rnd)
        assert getattr(other, name) != getattr(attrs, name)
        assert {k: v for k, v in other.names().items() if k != name} == \
               {k: v for k, v in attrs.names().items() if k != name}
        a, b = (describe(x, "retro", random.Random(trial), lang) for x in (attrs, other))
        assert a != b and a.split(", ")[0] == b.split(", ")[0]  # the style phrase leads both


def test_indonesian_words_are_indonesian():
    attrs = Attributes(gender="girl", age="old", hair_color="pink", hair_style="long", glasses="yes",
                       accessory="umbrella", clothing="green", background="beach")
    text = describe(attrs, Style.RETRO, random.Random(0), "id", shuffle=0.0)
    for word in ("merah muda", "panjang", "payung", "hijau", "di pantai"):
        assert word in text
    assert any(p in text for p in BOOKS["id"].person[attrs.age, attrs.gender])
    assert text.startswith(tuple(BOOKS["id"].retro))
