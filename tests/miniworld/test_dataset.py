"""Retro dataset export: folder layout, skewed backgrounds, captions, labels, atomic refusal; the command."""
from collections import Counter

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from training.miniworld import Attributes, parse_caption
from training.miniworld.dataset import SCRAPED_BACKGROUNDS, ExportError, allocate, export_dataset, read_labels


def test_export_layout_skew_captions_labels(tmp_path):
    out = export_dataset(tmp_path / "set", n=50, seed=3)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{i:04d}.png" for i in range(50)] + [f"{i:04d}.txt" for i in range(50)] + ["labels.jsonl"])
    records = read_labels(out)
    assert len(records) == 50
    scenes = Counter(r["attributes"]["background"] for r in records)
    assert scenes == {"flower_garden": 30, "beach": 10, "village": 6, "city_night": 4}  # market, classroom: none
    assert scenes.most_common(1)[0][0] == "flower_garden"
    for r in records:
        stem = r["file"][:-4]
        text = (out / f"{stem}.txt").read_text(encoding="utf-8").strip()
        assert text == r["caption"] and text.startswith("retro anime style, ")
        attrs, style = parse_caption(text)
        assert style.value == "retro" == r["style"] and attrs == Attributes.from_labels(r["labels"])
        assert attrs.names() == r["attributes"]
    with Image.open(out / "0000.png") as im:
        assert im.size == (64, 64) and im.mode == "RGB"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_export_is_deterministic_and_seeded(tmp_path):
    a = read_labels(export_dataset(tmp_path / "a", n=6, seed=1))
    b = read_labels(export_dataset(tmp_path / "b", n=6, seed=1))
    c = read_labels(export_dataset(tmp_path / "c", n=6, seed=2))
    assert a == b and a != c
    assert (tmp_path / "a/0003.png").read_bytes() == (tmp_path / "b/0003.png").read_bytes()


def test_export_refuses_non_empty_out_and_keeps_it(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(ExportError, match="already exists"):
        export_dataset(out, n=3)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(read_labels(export_dataset(empty, n=2))) == 2


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import training.miniworld.dataset as ds

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ds, "caption", boom)
    with pytest.raises(RuntimeError):
        export_dataset(tmp_path / "set", n=3)
    assert list(tmp_path.iterdir()) == []


def test_allocation_is_exact():
    assert sum(allocate(7, SCRAPED_BACKGROUNDS).values()) == 7
    assert allocate(100, SCRAPED_BACKGROUNDS)["market"] == 0


def test_command(tmp_path, capsys):
    out = tmp_path / "cmd"
    call_command("miniworld_dataset", "--n", "5", "--out", str(out), "--seed", "4", "--size", "128")
    assert len(read_labels(out)) == 5 and "wrote 5 pictures" in capsys.readouterr().out
    with Image.open(out / "0004.png") as im:
        assert im.size == (128, 128)
    with pytest.raises(CommandError, match="already exists and is not an empty folder"):
        call_command("miniworld_dataset", "--n", "5", "--out", str(out))


def test_an_indonesian_share_captions_that_many_pictures_in_bahasa_indonesia(tmp_path):
    from training.miniworld.phrasing import ID, style_phrases

    records = read_labels(export_dataset(tmp_path / "set", n=10, seed=5, indonesian=0.3))
    indonesian = [r for r in records if r["lang"] == "id"]
    assert len(indonesian) == 3 and sum(r["lang"] == "en" for r in records) == 7
    for r in indonesian:
        assert r["caption"].split(",")[0] in style_phrases("id")[:len(ID.retro)]
        assert ID.color[r["attributes"]["hair_color"]] in r["caption"]
        assert any(word in r["caption"] for word in ID.background[r["attributes"]["background"]])
    english = [r for r in records if r["lang"] == "en"]
    assert all(r["caption"].startswith("retro anime style, ") for r in english)
    plain = read_labels(export_dataset(tmp_path / "plain", n=10, seed=5))
    assert [r["attributes"] for r in plain] == [r["attributes"] for r in records]  # the share changes words only
    assert {r["lang"] for r in plain} == {"en"}


def test_every_bad_export_setting_is_named_in_one_error(tmp_path):
    with pytest.raises(ExportError) as err:
        export_dataset(tmp_path / "set", n=0, indonesian=1.5, size=32)
    message = str(err.value)
    assert "--n must be at least 1, not 0" in message and "--size must be one of 64, 128, not 32" in message
    assert "--indonesian must be a share between 0 and 1 (e.g. 0.3), not 1.5" in message
    assert not (tmp_path / "set").exists()
