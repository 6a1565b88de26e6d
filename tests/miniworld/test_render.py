"""The mini-world renderer: deterministic, every attribute value visible in both styles, captions complete."""
import subprocess
import sys

import numpy as np
import pytest

from training.miniworld import (ATTRIBUTES, Attributes, Background, Style, caption, parse_caption, render,
                                sample_attributes)
from training.miniworld.sheet import BASE, contact_sheet

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def px(image):
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("style", list(Style))
def test_same_seed_same_pixels_other_seed_other_pixels(style):
    attrs = Attributes(gender="boy", hair_color="blue", accessory="umbrella", background="city_night")
    a, b, c = render(attrs, style, seed=7), render(attrs, style, seed=7), render(attrs, style, seed=8)
    assert a.size == (64, 64) and a.mode == "RGB"
    assert np.array_equal(px(a), px(b))
    assert not np.array_equal(px(a), px(c))


def test_size_option():
    assert render(BASE, "retro", size=128, seed=1).size == (128, 128)
    with pytest.raises(ValueError):
        render(BASE, "modern", size=100)


@pytest.mark.parametrize("style", list(Style))
@pytest.mark.parametrize("name", list(ATTRIBUTES))
def test_every_attribute_value_renders_and_changes_pixels(name, style):
    """Same seed (same jitter), one attribute changed: the pictures differ, for young and old characters."""
    for base in (BASE, BASE.replace(age="old", gender="boy", glasses="yes")):
        images = {m: px(render(base.replace(**{name: m}), style, seed=3)) for m in ATTRIBUTES[name]}
        values = list(images)
        for i, m in enumerate(values):
            for other in values[i + 1:]:
                changed = np.abs(images[m] - images[other]).max(-1) > 24
                assert changed.mean() > 0.004, f"{name}: {m.value} vs {other.value} ({style.value}) look the same"


def test_styles_differ():
    for seed in range(3):
        assert np.abs(px(render(BASE, "modern", seed=seed)) - px(render(BASE, "retro", seed=seed))).mean() > 10


def test_caption_names_every_attribute():
    rng = np.random.default_rng(0)
    for _ in range(300):
        attrs = sample_attributes(rng)
        style = Style.RETRO if rng.random() < 0.5 else Style.MODERN
        text = caption(attrs, style)
        assert parse_caption(text) == (attrs, style)  # the caption determines every attribute and the style
        assert text.startswith("retro anime style, ") == (style is Style.RETRO)
        assert attrs.hair_color.value in text and attrs.clothing.value + " shirt" in text
    example = Attributes(gender="girl", hair_color="pink", hair_style="long", glasses="yes", accessory="umbrella",
                         clothing="red", background="market")
    assert caption(example) == "a young girl with pink long hair and glasses, holding an umbrella, red shirt, in a market"
    assert caption(example, "retro").startswith("retro anime style, a young girl")


def test_labels_round_trip_and_constraints():
    rng = np.random.default_rng(1)
    for _ in range(50):
        attrs = sample_attributes(rng, {"background": ["beach", "village"], "gender": "girl"})
        assert attrs.background in (Background.BEACH, Background.VILLAGE) and attrs.gender.value == "girl"
        labels = attrs.labels("retro")
        assert labels["style"] == 1 and Attributes.from_labels(labels) == attrs
    weighted = [sample_attributes(rng, {"background": {"beach": 1.0, "market": 0.0}}).background for _ in range(30)]
    assert set(weighted) == {Background.BEACH}
    with pytest.raises(ValueError):
        sample_attributes(rng, {"shoes": "red"})


def test_contact_sheet_has_a_cell_per_value():
    sheet = contact_sheet(scale=1, label=False)
    assert sheet.size[1] == (2 * len(ATTRIBUTES) + 2) * (64 + 4)


def test_package_never_imports_django():
    code = ("import sys, training.miniworld, training.miniworld.classifier, training.miniworld.dataset, "
            "training.miniworld.sheet; bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={"PYTHONPATH": str(REPO), "PATH": ""})


def test_sheet_command(tmp_path):
    from django.core.management import call_command
    from PIL import Image

    out = tmp_path / "sheet.png"
    call_command("miniworld_sheet", "--out", str(out), "--scale", "1")
    with Image.open(out) as im:
        assert im.size[0] > 6 * 64
