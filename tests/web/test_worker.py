"""The real RQ worker process: one model load for many jobs, CLIP scores, cancel, and a killed worker.

Everything is real: PostgreSQL (test DB), Redis (db 15), `manage.py rqworker` as a subprocess with
SimpleWorker, the tiny SD model and tiny open_clip from generator.engine.tiny.
"""
import io
import signal

import django_rq
import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image
from rq.job import Job, JobStatus

from generator import services
from generator.engine.params import GenerationParams
from generator.models import GenerationJob
from tests.web.conftest import wait_for

pytestmark = pytest.mark.slow

FAST = dict(steps=2, width=64, height=64, scheduler="euler")
SLOW = dict(steps=100, width=256, height=256, scheduler="euler")  # ~1.4 s per step on one CPU thread


def submit(user, prompt, **params):
    return services.submit_generation(user, GenerationParams(prompt=prompt, **{**FAST, **params}))


def job_status(job):
    job.refresh_from_db()
    return job.status


def wait_final(job, worker, timeout=120):
    try:
        wait_for(lambda: job_status(job) in GenerationJob.FINAL_STATES, timeout=timeout, message=f"job {job.pk}")
    except AssertionError:
        raise AssertionError(f"job {job.pk} is {job.status}; worker log:\n{worker.log()[-4000:]}") from None
    return job


def rq_job(job) -> Job:
    return Job.fetch(job.rq_job_id, connection=django_rq.get_connection(services.QUEUE_NAME))


def test_worker_loads_the_model_once_for_many_jobs(alice, tiny_model, start_worker, clip_spec):
    # A job cancelled while queued is never run (submitted before the worker starts).
    cancelled = submit(alice, "retro anime style, cancelled before it ran")
    assert services.cancel(cancelled) and cancelled.status == "cancelled"
    assert rq_job(cancelled).get_status() == JobStatus.CANCELED

    jobs = [submit(alice, f"retro anime style, character number {i}", seed=100 + i, num_images=1 + (i == 2))
            for i in range(3)]
    worker = start_worker()
    for job in jobs:
        wait_final(job, worker)
    assert [j.status for j in jobs] == ["done"] * 3, [(j.status, j.error) for j in jobs]
    assert rq_job(jobs[-1]).get_meta(refresh=True)["model_loads"] == 1, worker.log()[-3000:]
    assert rq_job(jobs[-1]).get_meta()["clip_loads"] == 1

    for job in jobs:
        assert job.worker_name and job.started_at and job.finished_at
        assert job.progress_step == job.progress_total == job.steps * job.num_images
        images = list(job.images.order_by("index"))
        assert len(images) == job.num_images
        for i, image in enumerate(images):
            assert image.seed == job.seed + i
            assert image.clip_score is not None and -1 <= image.clip_score <= 1
            assert image.clip_model == clip_spec and image.clip_error == ""
            assert image.file.storage.exists(image.file.name)
            assert image.file.name.startswith("generations/") and len(image.file.name.rsplit("/", 1)[1]) == 36
            with image.file.open("rb") as fh:
                png = Image.open(io.BytesIO(fh.read()))
            assert png.size == (64, 64)
            assert png.text["parameters"] == image.parameters
            assert job.prompt in image.parameters and f"Seed: {image.seed}" in image.parameters

    assert job_status(cancelled) == "cancelled" and not cancelled.images.exists()


def test_clip_unavailable_still_saves_the_image(alice, tiny_model, start_worker):
    worker = start_worker(RETROPORTAL_CLIP_MODEL="local-dir:/nonexistent/clip")
    job = wait_final(submit(alice, "retro anime style, no clip today"), worker)
    assert job.status == "done", job.error
    (image,) = job.images.all()
    assert image.clip_score is None
    assert "unavailable" in image.clip_error and "/nonexistent/clip" in image.clip_error
    assert image.file.storage.exists(image.file.name)


def test_a_failing_job_gets_a_readable_reason_and_no_images(alice, tiny_model, start_worker):
    tiny_model.source = "/nonexistent/model-folder"
    tiny_model.save()
    worker = start_worker()
    job = wait_final(submit(alice, "retro anime style, broken model"), worker)
    assert job.status == "failed"
    assert "/nonexistent/model-folder" in job.error and "\n" not in job.error
    assert not job.images.exists()


def test_cancel_and_killed_worker(alice, alice_client, tiny_model, start_worker):
    worker = start_worker()
    # Cancel a running job from the job page: it stops between steps.
    running = submit(alice, "retro anime style, cancel me while running", **SLOW)
    wait_for(lambda: job_status(running) == "running" and running.progress_step >= 1, timeout=120,
             message="the slow job to start")
    response = alice_client.post(reverse("job-cancel", args=[running.pk]))
    assert response.status_code == 302
    wait_for(lambda: job_status(running) == "cancelled", timeout=60, message="the running job to stop")
    assert running.progress_step < running.progress_total and not running.images.exists()

    # kill -9 the worker in the middle of a job: after reconcile the job is failed, with a reason.
    doomed = submit(alice, "retro anime style, the worker dies", **SLOW)
    wait_for(lambda: job_status(doomed) == "running" and doomed.progress_step >= 1, timeout=120,
             message="the second slow job to start")
    worker.kill(signal.SIGKILL)
    assert services.reconcile(doomed).status == "running"  # its heartbeat key has not expired yet
    wait_for(lambda: services.reconcile(doomed).status == "failed", timeout=30, interval=0.5,
             message="reconcile to notice the dead worker")
    assert "worker" in doomed.error and "stopped unexpectedly" in doomed.error
    # the status JSON (what the job page polls) says the same
    status = alice_client.get(reverse("job-status", args=[doomed.pk])).json()
    assert status["status"] == "failed" and status["error"] == doomed.error and status["is_final"]


def test_reconcile_jobs_command(alice, tiny_model, redis_clean, transactional_db, capsys):
    queued = submit(alice, "retro anime style, lost in redis")
    running = submit(alice, "retro anime style, running when redis was lost")
    GenerationJob.objects.filter(pk=running.pk).update(status="running", worker_name="gone-worker")
    redis_clean.flushdb()  # Redis lost its queue (restart without persistence)
    call_command("reconcile_jobs")
    out = capsys.readouterr().out
    # The queued job's row holds every parameter: it is queued again, not failed.
    assert f"{queued.pk}: queued -> re-queued" in out and f"{running.pk}: running -> failed" in out
    assert "changed 2" in out
    assert job_status(queued) == "queued" and queued.error == ""
    assert django_rq.get_queue(services.QUEUE_NAME).job_ids == [f"gen-{queued.pk}"]
    # A job that was running cannot be resumed half-way: failed, with the reason.
    assert job_status(running) == "failed" and "lost from the queue while it ran" in running.error
    call_command("reconcile_jobs")  # nothing left to do
    assert "changed 0" in capsys.readouterr().out
