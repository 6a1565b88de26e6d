"""Aspect buckets and the stateless batch plan (no models)."""
import json
from pathlib import Path

import pytest
import torch

from training.dreambooth.config import ConfigError, TrainConfig
from training.dreambooth.data import BatchPlan, Example, bucket_size, drop_tags, scan_dataset
from training.dreambooth.step import batch_prompts

from .conftest import write_dataset


def test_bucket_size_keeps_aspect_and_area():
    assert bucket_size(40, 40, 32, 16) == (32, 32)
    w, h = bucket_size(1200, 800, 512, 64)
    assert (w % 64, h % 64) == (0, 0) and w > h and abs(w * h - 512 * 512) / (512 * 512) < 0.2


def test_batches_hold_one_bucket_and_replay_from_the_index():
    examples = [Example(Path(f"{i}.png"), "p", (64, 32) if i % 3 else (32, 32)) for i in range(10)]
    plan = BatchPlan(examples, batch_size=2, seed=7)
    seen = []
    for index in range(3 * plan.batches_per_epoch):
        batch = plan.batch(index)
        assert len({e.size for e in batch}) == 1
        seen.append([e.path for e in batch])
    again = BatchPlan(examples, batch_size=2, seed=7)
    assert [[e.path for e in again.batch(i)] for i in reversed(range(len(seen)))] == seen[::-1]
    epoch = sorted(p for batch in seen[:plan.batches_per_epoch] for p in batch)
    assert epoch == sorted(e.path for e in examples)  # each picture once per epoch
    assert seen[:plan.batches_per_epoch] != seen[plan.batches_per_epoch:2 * plan.batches_per_epoch]  # reshuffled


def test_manifest_buckets_and_captions(tmp_path):
    folder = write_dataset(tmp_path / "prepared", n=2)
    records = [{"source": "a.png", "status": "kept", "output": "img0.png", "bucket": [48, 32]},
               {"source": "b.png", "status": "duplicate"}]
    (folder / "manifest.json").write_text(json.dumps({"version": 1, "records": records}))
    examples = {e.path.name: e for e in scan_dataset(folder, "sks girl", 32, 16)}
    assert examples["img0.png"].size == (48, 32) and examples["img1.png"].size == (32, 32)
    assert examples["img0.png"].prompt == "sks girl, red hair, pose 0"


CAPTION = "retro anime style, a young girl with pink long hair, holding an umbrella, red shirt, in a market"


def test_drop_tags_keeps_the_instance_prompt_and_replays_from_the_generator():
    def drop(rate, seed):
        return drop_tags(CAPTION, rate, ("retro anime style",), torch.Generator().manual_seed(seed))

    assert drop(0.0, 1) == CAPTION
    assert {drop(0.999, s) for s in range(20)} == {"retro anime style"}  # only the kept tag survives
    variants = [drop(0.5, s) for s in range(200)]
    assert all(v.startswith("retro anime style") for v in variants)
    assert len(set(variants)) == 16  # every subset of the four other tags, in their order
    assert variants == [drop(0.5, s) for s in range(200)]
    share = sum(v.count(",") for v in variants) / (4 * len(variants))
    assert 0.4 < share < 0.6  # each of the four droppable tags kept about half of the time


def test_step_prompts_drop_tags_per_batch_index_and_stream():
    cfg = TrainConfig(base_model="b", dataset="d", out="o", instance_prompt="retro anime style",
                      caption_tag_dropout=0.5)
    examples = [Example(Path("a.png"), CAPTION, (64, 64))]
    by_index = [batch_prompts(cfg, examples, i, 0)[0] for i in range(40)]
    assert len(set(by_index)) > 8 and by_index == [batch_prompts(cfg, examples, i, 0)[0] for i in range(40)]
    assert [batch_prompts(cfg, examples, i, 1)[0] for i in range(40)] != by_index  # class pictures draw their own
    plain = TrainConfig(base_model="b", dataset="d", out="o", instance_prompt="retro anime style")
    assert batch_prompts(plain, examples, 3, 0) == [CAPTION]


def test_caption_dropout_empties_whole_captions_at_its_rate_and_replays():
    cfg = TrainConfig(base_model="b", dataset="d", out="o", instance_prompt="retro anime style",
                      caption_dropout=0.2)
    examples = [Example(Path(f"{i}.png"), CAPTION, (64, 64)) for i in range(4)]
    prompts = [p for i in range(250) for p in batch_prompts(cfg, examples, i, 0)]
    assert set(prompts) == {"", CAPTION}  # whole captions, the instance prompt included
    assert 0.15 < prompts.count("") / len(prompts) < 0.25
    assert prompts == [p for i in range(250) for p in batch_prompts(cfg, examples, i, 0)]
    both = TrainConfig(base_model="b", dataset="d", out="o", instance_prompt="retro anime style",
                       caption_dropout=0.2, caption_tag_dropout=0.5)
    mixed = [p for i in range(100) for p in batch_prompts(both, examples, i, 0)]
    assert "" in mixed and len(set(mixed)) > 8  # dropped captions and shortened ones


@pytest.mark.parametrize("name", ["caption_tag_dropout", "caption_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_caption_dropout_rates_out_of_range_are_named(name, rate):
    with pytest.raises(ConfigError, match=rf"^{name}: expected a share in \[0, 1\)"):
        TrainConfig(base_model="b", dataset="d", out="o", instance_prompt="p", **{name: rate})
