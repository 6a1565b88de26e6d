"""mini-CLIP: trains with open_clip's own CLIP and loss, saves in open_clip's local-dir layout (fp16) that the
engine's CLIP loader reads back, and the shipped one retrieves the right caption for fresh renders."""
import json

import numpy as np
import torch
from safetensors import safe_open

from generator.engine.clipscore import load_clip
from generator.engine.files import write_atomic
from training.miniworld import caption, sample_attributes
from training.miniworld.miniclip import (SHIPPED_MINICLIP, MiniClipConfig, embedding_metrics, retrieval_accuracy,
                                         save_miniclip, train_miniclip)
from training.miniworld.render import render


def test_micro_training_lowers_the_loss_and_round_trips_through_the_engine_loader(tmp_path):
    model, history = train_miniclip(MiniClipConfig(steps=12, batch=8, pool=16, warmup=1, learning_rate=2e-3))
    assert len(history["loss"]) == 12 and np.mean(history["loss"][-3:]) < np.mean(history["loss"][:3])
    out = save_miniclip(model, tmp_path / "clip")
    with safe_open(out / "open_clip_model.safetensors", "pt") as f:
        assert f.get_tensor("visual.conv1.weight").dtype == torch.float16
    assert json.loads((out / "open_clip_config.json").read_text())["model_cfg"]["vision_cfg"]["image_size"] == 64
    clip = load_clip(f"local-dir:{out}", device="cpu")
    image = render(sample_attributes(np.random.default_rng(0)), size=64)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.encode_image(clip.preprocess(image)[None].float()), dim=-1)
    assert torch.allclose(clip.embed_images([image]), expected, atol=2e-2)  # fp16 storage, same network


def test_shipped_miniclip_matches_pictures_to_their_captions():
    clip = load_clip(f"local-dir:{SHIPPED_MINICLIP}", device="cpu")
    accuracy = retrieval_accuracy(clip, n=64)
    print(f"mini-CLIP top-1 retrieval among 64: {accuracy}")
    assert accuracy["modern"] >= 0.8 and accuracy["retro"] >= 0.8  # chance is 1/64
    rng = np.random.default_rng(5)
    attrs = [sample_attributes(rng) for _ in range(8)]
    truth = [render(a, "retro", size=64, seed=i) for i, a in enumerate(attrs)]
    shuffled = truth[1:] + truth[:1]
    prompts = [caption(a, "retro") for a in attrs]
    right = embedding_metrics(clip, truth, prompts, truth, truth)
    wrong = embedding_metrics(clip, shuffled, prompts, truth, truth)
    assert right["clip_t"] > wrong["clip_t"] + 0.1  # the metric sees which picture shows which prompt


def test_write_atomic_replaces_whole_files_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "card.json"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_text() == "second" and sorted(p.name for p in target.parent.iterdir()) == ["card.json"]


def test_focused_hard_negatives_swap_the_named_attributes_half_of_the_time():
    import random

    from training.miniworld.captions import parse_caption
    from training.miniworld.miniclip import training_caption

    cfg = MiniClipConfig(hard_negatives=4, focus=("hair_style",), indonesian=0.0, paraphrase=0.0)
    rng, rnd, swapped = np.random.default_rng(0), random.Random(0), []
    for _ in range(200):
        attrs = sample_attributes(rng)
        positive, negatives = training_caption(attrs, "modern", rnd, cfg)
        for negative in negatives:
            other, style = parse_caption(negative)
            changed = [k for k in vars(attrs) if getattr(attrs, k) != getattr(other, k)] or [str(style.value)]
            swapped.append(changed == ["hair_style"])
    assert 0.5 < np.mean(swapped) < 0.62  # half focused, plus 1/9 of the rest by chance


def test_training_continues_from_a_saved_miniclip(tmp_path):
    model, _ = train_miniclip(MiniClipConfig(steps=2, batch=4, pool=8, warmup=1))
    first = save_miniclip(model, tmp_path / "first")
    resumed, _ = train_miniclip(MiniClipConfig(steps=1, batch=4, pool=8, warmup=1, learning_rate=0.0,
                                               init_from=str(first)))
    saved = load_clip(f"local-dir:{first}", device="cpu").model.state_dict()
    assert all(torch.allclose(v.float(), saved[k].float()) for k, v in resumed.state_dict().items())


def test_the_command_refuses_an_unknown_focus_and_a_folder_that_is_no_miniclip(tmp_path):
    import pytest
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=r"--focus hairstyle: unknown; valid: gender, .*hair_style.*style"):
        call_command("miniworld_miniclip", "--out", str(tmp_path / "c"), "--focus", "hair_style,hairstyle")
    with pytest.raises(CommandError, match="not an open_clip folder"):
        call_command("miniworld_miniclip", "--out", str(tmp_path / "c"), "--init-from", str(tmp_path))
    assert not (tmp_path / "c").exists()
