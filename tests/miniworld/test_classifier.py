"""The shipped ground-truth classifier reads every attribute and the style back from fresh renders."""
import json

import numpy as np
import pytest
from django.core.management import call_command

from training.miniworld import HEADS, Attributes, Style, render
from training.miniworld.classifier import (DEFAULT_WEIGHTS, classify, load_classifier, make_batch, predict)


@pytest.fixture(scope="module")
def shipped():
    return load_classifier()


def test_shipped_weights_are_small_and_documented():
    assert DEFAULT_WEIGHTS.stat().st_size < 2 * 1024 * 1024
    card = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())["card"]
    assert card["train_seconds"] > 0 and card["machine"]["platform"] and card["dtype"] == "float16"
    assert set(card["eval"]["accuracy"]) == set(HEADS)


def test_accuracy_per_head_on_fresh_renders_of_both_styles(shipped):
    """≥ 98% per head on 400 renders (200 modern, 200 retro) from a seed the training never drew from."""
    images, labels = make_batch(np.random.default_rng(20240601), 400, styles=list(Style))
    assert (labels["style"] == 1).sum() == 200
    preds = predict(shipped, images)
    accuracy = {k: float((preds[k] == labels[k]).mean()) for k in HEADS}
    for style in (0, 1):
        mask = labels["style"] == style
        per_style = {k: float((preds[k][mask] == labels[k][mask]).mean()) for k in HEADS}
        assert min(per_style.values()) >= 0.95, (style, per_style)
    assert min(accuracy.values()) >= 0.98, accuracy


def test_classify_names_values_and_takes_128px(shipped):
    attrs = Attributes(gender="boy", age="old", hair_color="pink", hair_style="twintails", glasses="yes",
                       accessory="hat", clothing="green", background="beach")
    out = classify([render(attrs, "retro", size=128, seed=5), render(attrs, "modern", seed=6)], model=shipped)
    assert out[0] == {**attrs.names(), "style": "retro"}
    assert out[1] == {**attrs.names(), "style": "modern"}
    assert classify([]) == []


def test_command_reproduces_a_classifier(tmp_path, capsys):
    out = tmp_path / "c.safetensors"
    call_command("miniworld_classifier", "--out", str(out), "--steps", "2", "--batch-size", "8", "--eval-n", "8")
    model = load_classifier(out)
    assert set(model.config.heads) == set(HEADS)
    assert model.card["steps"] == 2 and "machine" in model.card
    assert "saved" in capsys.readouterr().out


def test_judges_degraded_pictures(shipped):
    """Generated pictures are soft and noisy: blur, JPEG and a 32 px round trip keep every head ≥ 95%."""
    import io

    from PIL import Image, ImageFilter

    images, labels = make_batch(np.random.default_rng(77), 200, styles=list(Style))

    def jpeg(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=40)
        return np.asarray(Image.open(buf).convert("RGB"))

    degraded = {
        "blur": [np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(1.5))) for a in images],
        "jpeg": [jpeg(a) for a in images],
        "32px": [np.asarray(Image.fromarray(a).resize((32, 32), Image.BOX).resize((64, 64), Image.BILINEAR))
                 for a in images],
    }
    for name, pictures in degraded.items():
        preds = predict(shipped, np.stack(pictures))
        accuracy = {k: float((preds[k] == labels[k]).mean()) for k in HEADS}
        assert min(accuracy.values()) >= 0.95, (name, accuracy)
