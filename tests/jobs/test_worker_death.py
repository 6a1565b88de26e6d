"""Kill -9 the worker while it runs a row of each kind: reconcile ends the row in its documented state
(docs/jobs.md), with the reason, once the heartbeat has expired — never 'running' forever."""
import numpy as np
import pytest
from PIL import Image

from generator import services
from generator.engine.params import GenerationParams
from jobs import core as jobs
from tests.conftest import WorkerProcess, wait_for
from tests.evaluation_runs.conftest import EVAL
from tests.training_runs.conftest import HEARTBEAT_TTL
from training import run_evaluations, runs
from training import datasets
from training.models import Dataset

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def generation(user, base_model, tiny_dataset, make_run):
    params = GenerationParams(prompt="retro anime style, the worker dies", steps=100, width=256, height=256,
                              scheduler="euler")
    return services.GENERATION, services.submit_generation(user, params)


def preparation(user, base_model, tiny_dataset, make_run):
    dataset = Dataset.objects.create(name="big-set", instance_prompt="sks girl", resolution=256, min_size=16)
    dataset.originals_dir.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(150):  # a few seconds of work on one thread
        Image.fromarray((rng.random((320, 320, 3)) * 255).astype("uint8")).save(dataset.originals_dir / f"{i}.png")
    assert datasets.enqueue_preparation(dataset)
    return datasets.PREPARATION, dataset


def training(user, base_model, tiny_dataset, make_run):
    run = make_run("doomed-run", max_steps=2000)
    runs.start(run)
    return runs.TRAINING, run


def evaluation(user, base_model, tiny_dataset, make_run):
    overrides = {**EVAL, "images_per_prompt": 4, "steps": 150}
    return run_evaluations.EVALUATION, run_evaluations.evaluate_model(base_model, tiny_dataset.prepared_dir,
                                                              overrides=overrides)


DOCUMENTED_END = {generation: "failed", preparation: "failed", training: "interrupted", evaluation: "failed"}


@pytest.mark.parametrize("make_job", DOCUMENTED_END, ids=lambda f: f.__name__)
def test_a_killed_worker_leaves_each_kind_in_its_documented_state(make_job, django_user_model, base_model,
                                                                   tiny_dataset, make_run, eval_settings,
                                                                   heartbeat_settings, redis_clean):
    user = django_user_model.objects.create_user("kim", password="kim-pass-1234")
    kind, row = make_job(user, base_model, tiny_dataset, make_run)
    worker = WorkerProcess(queues=(kind.queue,), extra_env={
        "RETROPORTAL_JOB_HEARTBEAT_TTL": str(HEARTBEAT_TTL), "RETROPORTAL_DATASET_WORKERS": "1",
        "RETROPORTAL_CLIP_MODEL": eval_settings.RETROPORTAL_CLIP_MODEL,
        "RETROPORTAL_DINO_MODEL": eval_settings.RETROPORTAL_DINO_MODEL})
    try:
        wait_for(lambda: row.refresh_from_db() or row.status == "running", timeout=120,
                 message=f"the worker to claim the {kind.name} row")
        worker.kill()
        assert jobs.reconcile(kind, row).status == "running"  # its heartbeat has not expired yet
        wait_for(lambda: jobs.reconcile(kind, row).status != "running", timeout=30, interval=0.5,
                 message="reconcile to notice the dead worker")
    finally:
        worker.stop()
    assert row.status == DOCUMENTED_END[make_job] == kind.died_state
    assert row.error == kind.died_reason and "stopped unexpectedly" in row.error
    assert row.finished_at is not None
