"""Aspect buckets and the stateless batch plan (no models)."""
import json
from pathlib import Path

from training.dreambooth.data import BatchPlan, Example, bucket_size, scan_dataset

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
