"""Comparing mini-world models: mini-CLIP's CLIP-T agrees with the classifier's fidelity on pictures whose
prompts are partly wrong, and the side-by-side command writes one labelled row per model."""
import random

import numpy as np
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
