"""Starting, cancelling, resuming and reconciling DreamBooth training runs (admin actions and commands).

The row is the truth: an action changes the row first, then (once the transaction commits) puts a job on
the 'training' queue; the worker (training.tasks.run_training_job) claims only a row still 'queued'.
"""
import logging

from django.conf import settings
from django.db.models.deletion import ProtectedError

from jobs import core as jobs
from training.models import TrainingRun

log = logging.getLogger(__name__)

QUEUE_NAME = "training"
Status = TrainingRun.Status
INTERRUPTED = "The worker running this training stopped unexpectedly (killed or crashed); resume it to continue " \
              "from the last checkpoint."
LOST = "The training job was lost from the queue (Redis restarted or was flushed); resume it to start again."


def job_timeout() -> int:
    """Seconds a training job may run: RQ_QUEUES['training']['DEFAULT_TIMEOUT'] (hours by default)."""
    return int(settings.RQ_QUEUES[QUEUE_NAME].get("DEFAULT_TIMEOUT", 48 * 3600))


TRAINING = jobs.JobKind(
    name="training-run", model_label="training.TrainingRun", queue=QUEUE_NAME, task="training.tasks.run_training_job",
    died_reason=INTERRUPTED, lost_reason=LOST, died_state=Status.INTERRUPTED,
    lost_queued=Status.INTERRUPTED, lost_queued_reason=LOST,
    timeout=job_timeout, result_ttl=24 * 3600, end_fields={"eta_seconds": None},
)


class RunRefused(Exception):
    """The action does not apply to the run in its current state; the message says why."""


def _enqueue(run: TrainingRun, action: str) -> None:
    run.validate_config()  # refuse bad settings before anything is queued
    resume = action == "resume"
    if not jobs.enqueue(TRAINING, run, TrainingRun.states_allowing(action), resume_requested=resume,
                        eta_seconds=None):
        raise RunRefused(f"{run.name} is {run.status}; it cannot be {'resumed' if resume else 'started'} now")


def start(run: TrainingRun) -> None:
    """Queue a draft run from step 0."""
    _enqueue(run, "start")


def resume(run: TrainingRun) -> None:
    """Queue a cancelled, interrupted or failed run to continue from its last checkpoint (or step 0)."""
    _enqueue(run, "resume")


def cancel(run: TrainingRun) -> bool:
    """A queued run is cancelled at once; a running one saves a checkpoint after its current step and stops."""
    return jobs.cancel(TRAINING, run)


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
    run.remove_folder()
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


def reconcile(run: TrainingRun) -> TrainingRun:
    """A run whose worker died (heartbeat gone) or whose queued job vanished is marked interrupted."""
    return jobs.reconcile(TRAINING, run)


def reconcile_all() -> list[tuple[TrainingRun, str]]:
    """Reconcile every queued or running run; returns (run, previous status) for those that changed."""
    return jobs.reconcile_all(TRAINING)
