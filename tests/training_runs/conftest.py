"""Fixtures for training runs: the tiny SD1 model registered as a base, a tiny prepared dataset, a worker."""
import numpy as np
import pytest
from PIL import Image

from tests.conftest import WorkerProcess

HEARTBEAT_TTL = 3  # seconds: a killed worker's run is noticed quickly in tests
# Tiny and fast: 32 px, LoRA rank 4, two-step validation grids.
FAST = {"resolution": 32, "bucket_step": 16, "rank": 4, "max_steps": 3, "checkpoint_steps": 0,
        "validation_inference_steps": 2, "seed": 7}


@pytest.fixture
def base_model(db, tiny_sd1_path):
    from generator.models import AIModel

    return AIModel.objects.create(name="tiny-sd1", source=str(tiny_sd1_path), architecture="sd1", native_size=64,
                                  is_default=True, description="tiny random SD1 for tests")


@pytest.fixture
def tiny_dataset(db):
    """A dataset prepared for real by training.dataprep (4 random 256 px pictures with captions)."""
    from training.models import Dataset
    from training.tasks import run_preparation

    dataset = Dataset.objects.create(name="tiny-girls", instance_prompt="sks girl", class_prompt="a girl",
                                     resolution=256, min_size=16, mode="crop")
    dataset.originals_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((256, 256, 3)) * 255).astype("uint8")).save(dataset.originals_dir / f"p{i}.png")
        (dataset.originals_dir / f"p{i}.txt").write_text(f"red hair, pose {i}", encoding="utf-8")
    run_preparation(dataset, workers=1)
    dataset.refresh_from_db()
    assert dataset.status == "done", dataset.error
    return dataset


@pytest.fixture
def make_run(base_model, tiny_dataset):
    from training.models import TrainingRun

    def make(name="run1", method="lora", **config):
        return TrainingRun.objects.create(name=name, dataset=tiny_dataset, base_model=base_model, method=method,
                                          config={**FAST, **config})

    return make


@pytest.fixture
def heartbeat_settings(settings):
    settings.RETROPORTAL_JOB_HEARTBEAT_TTL = HEARTBEAT_TTL
    return settings


@pytest.fixture
def start_worker(transactional_db, redis_clean, heartbeat_settings, tiny_assets):
    """Call to start a real `manage.py rqworker` on the given queues; every one is stopped after the test."""
    workers = []

    def start(queues=("training",)):
        worker = WorkerProcess(queues=queues, extra_env={
            "RETROPORTAL_JOB_HEARTBEAT_TTL": str(HEARTBEAT_TTL), "RETROPORTAL_CLIP_MODEL": tiny_assets["clip"]})
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
