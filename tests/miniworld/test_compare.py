"""Comparing mini-world models: mini-CLIP's CLIP-T agrees with the classifier's fidelity on pictures whose
prompts are partly wrong, and the side-by-side command writes one labelled row per model."""
import random

import numpy as np
import pytest
from django.core.management import call_command

from training.miniworld import render, sample_attributes, shipped
from training.miniworld.attributes import ATTRIBUTES
from training.miniworld.captions import caption
from training.miniworld.compare import clip_rank_agreement, fidelity
from training.miniworld.phrasing import swap_one


def test_clip_rank_agreement_follows_how_wrong_the_prompt_is():
    from generator.engine.clipscore import load_clip

    rng, rnd = np.random.default_rng(5), random.Random(5)
    shown = [sample_attributes(rng) for _ in range(48)]
    images = [render(a, "modern", seed=i) for i, a in enumerate(shown)]
    asked = []
    for i, a in enumerate(shown):  # 0 to 3 attributes of the prompt differ from the picture
        for name in rnd.sample(list(ATTRIBUTES), i % 4):
            a = swap_one(a, name, rnd)
        asked.append(a)
    assert sorted(set(np.round(fidelity(images, asked) * 8))) == [5, 6, 7, 8]  # the classifier sees the swaps
    result = clip_rank_agreement(load_clip(f"local-dir:{shipped.MINICLIP}", device="cpu"), images,
                                 [caption(a) for a in asked], asked)
    assert result["n"] == 48 and result["spearman"] > 0.3


def test_compare_command_draws_every_model_in_its_own_row(tmp_path):
    out = tmp_path / "sheet.png"
    call_command("miniworld_compare", "--model", f"a={shipped.BASE}", "--model", f"b={shipped.BASE}", "--out", str(out))
    from PIL import Image

    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert sheet.shape[0] == 2 * 128  # two rows at 2x of 64 px
    top, bottom = sheet[:128, 40:], sheet[128:, 40:]
    assert np.abs(top - bottom).max() == 0  # same model, same prompts and seeds: the same pictures


def test_compare_draws_a_lora_at_the_scale_after_the_at_sign(tmp_path):
    from django.core.management.base import CommandError
    from PIL import Image

    out = tmp_path / "sheet.png"
    lora = shipped.RETRO_LORA
    call_command("miniworld_compare", "--model", f"base={shipped.BASE}", "--model", f"off={shipped.BASE}+{lora}@0",
                 "--model", f"on={shipped.BASE}+{lora}@1", "--out", str(out), "--retro")
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    base, off, on = sheet[:128, 40:], sheet[128:256, 40:], sheet[256:384, 40:]
    assert np.abs(base - off).mean() < 1  # scale 0: the base's pictures
    assert np.abs(base - on).mean() > 10  # scale 1: the retro LoRA's
    with pytest.raises(CommandError, match="must be a number, e.g. \\+LORA@0.8"):
        call_command("miniworld_compare", "--model", f"x={shipped.BASE}+{lora}@big", "--out", str(out))


def test_compare_draws_each_model_at_the_cfg_after_the_hash_sign(tmp_path):
    from django.core.management.base import CommandError
    from PIL import Image

    out = tmp_path / "sheet.png"
    call_command("miniworld_compare", "--model", f"site={shipped.BASE}", "--model", f"seven={shipped.BASE}#7",
                 "--model", f"three={shipped.BASE}#3", "--out", str(out))
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    site, seven, three = sheet[:128, 40:], sheet[128:256, 40:], sheet[256:384, 40:]
    assert np.abs(site - seven).max() == 0  # no CFG given: the site's 7
    assert np.abs(site - three).mean() > 1  # CFG 3 draws other pictures from the same seeds
    with pytest.raises(CommandError, match="the CFG scale after # must be a number, e.g. #3"):
        call_command("miniworld_compare", "--model", f"x={shipped.BASE}#high", "--out", str(out))
