"""Starting, cancelling, resuming and reconciling DreamBooth training runs (admin actions and commands).

The row is the truth: an action changes the row first, then (once the transaction commits) puts a job on
the 'training' queue; the worker (training.tasks.run_training_job) claims only a row still 'queued'.
"""
import logging
import os
import shutil
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models.deletion import ProtectedError
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from training.models import TrainingRun

log = logging.getLogger(__name__)

QUEUE_NAME = "training"
TASK_PATH = "training.tasks.run_training_job"
Status = TrainingRun.Status


class RunRefused(Exception):
    """The action does not apply to the run in its current state; the message says why."""


def alive_key(run_id) -> str:
    """Redis key the worker refreshes while it trains the run (generator.tasks.JobHeartbeat)."""
    return f"retroportal:training-run-alive:{run_id}"


def job_timeout() -> int:
    """Seconds a training job may run: RQ_QUEUES['training']['DEFAULT_TIMEOUT'] (hours by default)."""
    return int(settings.RQ_QUEUES[QUEUE_NAME].get("DEFAULT_TIMEOUT", 48 * 3600))


def _enqueue(run: TrainingRun, resume: bool, from_states) -> None:
    run.validate_config()  # refuse bad settings before anything is queued
    job_id = f"training-run-{run.pk}-{os.urandom(4).hex()}"
    with transaction.atomic():
        claimed = TrainingRun.objects.filter(pk=run.pk, status__in=from_states).update(
            status=Status.QUEUED, resume_requested=resume, cancel_requested=False, error="", rq_job_id=job_id,
            eta_seconds=None, finished_at=None, worker_name="",
        )
        if not claimed:
            run.refresh_from_db()
            raise RunRefused(f"{run.name} is {run.status}; it cannot be {'resumed' if resume else 'started'} now")
        queue = django_rq.get_queue(QUEUE_NAME, commit_mode="on_db_commit")
        queue.enqueue(TASK_PATH, run.pk, job_id=job_id, job_timeout=job_timeout(), result_ttl=24 * 3600)
    run.refresh_from_db()


def start(run: TrainingRun) -> None:
    """Queue a draft run from step 0."""
    _enqueue(run, False, TrainingRun.STARTABLE_STATES)


def resume(run: TrainingRun) -> None:
    """Queue a cancelled, interrupted or failed run to continue from its last checkpoint (or step 0)."""
    _enqueue(run, True, TrainingRun.RESUMABLE_STATES)


def cancel(run: TrainingRun) -> bool:
    """A queued run is cancelled at once; a running one saves a checkpoint after its current step and stops."""
    if TrainingRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, cancel_requested=False, finished_at=timezone.now()
    ):
        _cancel_rq_job(run.rq_job_id)
        run.refresh_from_db()
        return True
    updated = TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return bool(updated)


def _cancel_rq_job(job_id: str) -> None:
    if not job_id:
        return
    try:
        Job.fetch(job_id, connection=django_rq.get_connection(QUEUE_NAME)).cancel()
    except Exception:  # the row is the truth; a vanished RQ job is fine
        pass


def delete_outputs(run: TrainingRun) -> None:
    """Remove the run's folder and its (inactive, unused) registered model; the run goes back to draft."""
    if run.is_active:
        raise RunRefused(f"{run.name} is {run.status}; cancel it first")
    model = run.result_model
    if model is not None:
        if model.is_active:
            raise RunRefused(f"{run.name}: its model {model.name} is active; deactivate it before deleting the files")
        try:
            model.delete()
        except ProtectedError:
            raise RunRefused(f"{run.name}: its model {model.name} has generation jobs; keep the files") from None
    out = run.out_path.resolve()
    root = (Path(settings.MEDIA_ROOT) / "training_runs").resolve()
    if out.is_relative_to(root) and out != root:
        shutil.rmtree(out, ignore_errors=True)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.DRAFT, step=0, eta_seconds=None, last_losses={}, error="", started_at=None, finished_at=None,
        result_model=None, cancel_requested=False, resume_requested=False, rq_job_id="", worker_name="",
    )
    run.refresh_from_db()


def activate_result(run: TrainingRun):
    """Make the run's registered model visible in the users' model picker."""
    if run.status != Status.DONE or run.result_model is None:
        raise RunRefused(f"{run.name} has no registered model yet (status {run.status})")
    model = run.result_model
    model.is_active = True
    model.save(update_fields=["is_active"])
    return model


ENQUEUE_GRACE_SECONDS = 10
INTERRUPTED = "The worker running this training stopped unexpectedly (killed or crashed); resume it to continue " \
              "from the last checkpoint."
LOST = "The training job was lost from the queue (Redis restarted or was flushed); resume it to start again."


def reconcile(run: TrainingRun) -> TrainingRun:
    """A run whose worker died (heartbeat key gone) or whose queued job vanished is marked interrupted."""
    from generator.services import heartbeat_alive

    if not run.is_active or settings.RETROPORTAL_RUN_JOBS_INLINE:
        return run
    reason = None
    if run.status == Status.RUNNING:
        if not heartbeat_alive(alive_key(run.pk), run.worker_name):
            reason = INTERRUPTED
    elif (timezone.now() - run.updated_at).total_seconds() > ENQUEUE_GRACE_SECONDS:
        # queued: the job must still be in Redis (it reaches Redis just after the row's commit)
        try:
            rq_status = Job.fetch(run.rq_job_id, connection=django_rq.get_connection(QUEUE_NAME)).get_status(refresh=True)
        except NoSuchJobError:
            rq_status = None
        if rq_status in (None, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            reason = LOST
    if reason:
        TrainingRun.objects.filter(pk=run.pk, status=run.status).update(
            status=Status.INTERRUPTED, error=reason, finished_at=timezone.now(), eta_seconds=None
        )
        run.refresh_from_db()
    return run


def reconcile_all() -> list[tuple[TrainingRun, str]]:
    """Reconcile every queued or running run; returns (run, previous status) for those that changed."""
    changed = []
    for run in TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE_STATES).order_by("created_at"):
        before = run.status
        run = reconcile(run)
        if run.status != before:
            changed.append((run, before))
    return changed
