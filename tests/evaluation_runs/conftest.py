"""Fixtures for evaluating training runs through the real stack: tiny SD1 base, tiny dataset, tiny CLIP/DINO,
real `rqworker training generation` subprocesses."""
import pytest

from tests.conftest import WorkerProcess
from tests.evaluation.conftest import tiny_dino_dir  # noqa: F401  (fixture)
from tests.training_runs.conftest import FAST, HEARTBEAT_TTL, base_model, tiny_dataset  # noqa: F401  (fixtures)

# Evaluations this small: one prompt in one language, one 64 px picture per prompt, two denoising steps.
EVAL = {"images_per_prompt": 1, "steps": 2, "prompt_keys": "girl-glasses-market", "languages": "en", "seed": 3}


@pytest.fixture
def make_run(base_model, tiny_dataset):  # noqa: F811
    from training.models import TrainingRun

    def make(name="run1", method="lora", **config):
        return TrainingRun.objects.create(name=name, dataset=tiny_dataset, base_model=base_model, method=method,
                                          config={**FAST, **config})

    return make


@pytest.fixture
def eval_settings(settings, tiny_clip_dir, tiny_dino_dir):  # noqa: F811
    settings.RETROPORTAL_CLIP_MODEL = f"local-dir:{tiny_clip_dir}"
    settings.RETROPORTAL_DINO_MODEL = str(tiny_dino_dir)
    return settings


def start_worker(eval_settings):
    return WorkerProcess(queues=("training", "generation"), extra_env={
        "RETROPORTAL_CLIP_MODEL": eval_settings.RETROPORTAL_CLIP_MODEL,
        "RETROPORTAL_DINO_MODEL": eval_settings.RETROPORTAL_DINO_MODEL,
        "RETROPORTAL_JOB_HEARTBEAT_TTL": str(HEARTBEAT_TTL),
    })


@pytest.fixture
def worker(transactional_db, redis_clean, eval_settings):
    """One real worker on both queues (trains, then evaluates), with the tiny encoders configured."""
    process = start_worker(eval_settings)
    yield process
    process.stop()
