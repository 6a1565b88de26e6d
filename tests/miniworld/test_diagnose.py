"""miniworld_diagnose: confusion matrices count what was asked against what was drawn; the command judges the
shipped base and prints its text encoder's token separation."""
import dataclasses

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from training.miniworld import sample_attributes
from training.miniworld.attributes import HairStyle
from training.miniworld.diagnose import confusion


def test_confusion_counts_asked_values_in_rows_and_drawn_values_in_columns():
    rng = np.random.default_rng(0)
    asked = [dataclasses.replace(sample_attributes(rng), hair_style=s)
             for s in (HairStyle.LONG, HairStyle.LONG, HairStyle.PONYTAIL, HairStyle.SHORT)]
    drawn = [{"hair_style": v} for v in ("long", "ponytail", "ponytail", "short")]
    values, counts = confusion(drawn, asked, "hair_style")
    assert values == ["short", "long", "ponytail", "twintails"]
    assert counts.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_the_command_judges_the_shipped_base_and_measures_its_encoder(capsys):
    from training.miniworld.shipped import BASE

    call_command("miniworld_diagnose", str(BASE), "--n", "4", "--below", "1.01")
    out = capsys.readouterr().out
    assert "token separation" in out and "hair_style " in out
    assert "hair_style:" in out and "asked \\ drawn" in out and "twintails" in out  # every matrix at --below 1.01
    with pytest.raises(CommandError, match=r"^--n 0: expected 1 or more; --guidance 0.5: expected a CFG scale"):
        call_command("miniworld_diagnose", str(BASE), "--n", "0", "--guidance", "0.5")


def test_the_command_judges_a_lora_at_its_cfg_on_retro_prompts(capsys):
    from training.miniworld.shipped import BASE, RETRO_LORA_DIR

    lora = str(RETRO_LORA_DIR / "pytorch_lora_weights.safetensors")
    call_command("miniworld_diagnose", str(BASE), "--n", "4", "--style", "retro", "--guidance", "3")
    assert "4 retro caption prompts at CFG 3: 0% drawn retro" in capsys.readouterr().out  # the base stays modern
    call_command("miniworld_diagnose", str(BASE), "--n", "4", "--style", "retro", "--guidance", "3", "--lora", lora,
                 "--prompt-set", "indonesian")
    assert "4 retro indonesian prompts at CFG 3: 100% drawn retro" in capsys.readouterr().out


def test_generate_reports_each_batch_it_drew():
    import torch

    from generator.engine.loading import load_pipeline
    from training.miniworld.pretrain_eval import generate
    from training.miniworld.shipped import BASE

    pipe = load_pipeline(str(BASE), device="cpu", dtype=torch.float32).pipeline
    drawn = []
    images = generate(pipe, ["a girl", "a boy", "an old man"], steps=1, batch=2, progress=drawn.append)
    assert len(images) == 3 and drawn == [2, 1]
