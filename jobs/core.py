"""Queueing, claiming, cancelling and reconciling queued work of any kind: the lifecycle written once.

The row is the truth. `enqueue` marks it queued and puts its task on the kind's queue once the
transaction commits (a worker never sees a row that is not there yet); the worker's `running` block
holds the heartbeat and claims the row only while it is still queued under this very RQ job; `cancel`
stops a queued row at once and asks a running one to stop; `reconcile` brings a row whose worker died
or whose queue entry Redis lost to the kind's documented end state, with the reason, so nothing says
'running' forever. What differs between kinds is a `JobKind`.
"""
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import django_rq
import redis
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from jobs.heartbeat import Heartbeat, alive, alive_key
from jobs.models import ACTIVE, CANCELLED, FAILED, QUEUED, RUNNING

log = logging.getLogger(__name__)

REQUEUE = "requeue"  # JobKind.lost_queued: a queued row Redis lost is queued again (its row holds everything)
GONE = (None, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)  # an RQ job that will never run the row


@dataclass(frozen=True)
class JobKind:
    """What one kind of queued work does differently; the rest is this module."""

    name: str  # RQ job ids ('<name>-<pk>') and heartbeat keys start with it
    model_label: str  # "app.Model", resolved when used (the core imports no app)
    queue: str
    task: str  # dotted path of the RQ entry point, called with the row's pk
    died_reason: str  # a running row whose worker died
    lost_reason: str  # a running row whose queue entry Redis lost
    died_state: str = FAILED  # where both of those end
    lost_queued: str = FAILED  # where a queued row Redis lost ends (or REQUEUE)
    lost_queued_reason: str = ""
    timeout: Callable[[], int] | None = None  # seconds one job may run (None: the queue's default)
    result_ttl: int | None = None
    end_fields: dict = field(default_factory=dict)  # also written when reconcile ends a row
    on_ended: Callable | None = None  # called with a row reconcile has just ended

    @property
    def model(self):
        return apps.get_model(self.model_label)

    def alive_key(self, pk) -> str:
        return alive_key(self.name, pk)


def grace_seconds() -> float:
    """How long a queued row may wait for Redis to hear of it (commit, then enqueue) before it counts as lost."""
    return float(settings.RETROPORTAL_JOB_ENQUEUE_GRACE_SECONDS)


# -- queueing ----------------------------------------------------------------------------------------------
def enqueue(kind: JobKind, job, from_states=(QUEUED,), **fields) -> bool:
    """Mark `job` queued (only from one of `from_states`) and queue its task once the transaction commits.

    False when the row is in none of those states (nothing changes). `fields` are written with the status.
    The RQ job id is '<kind>-<pk>': a second delivery of it is harmless, the claim needs a queued row.
    """
    job_id = f"{kind.name}-{job.pk}"
    with transaction.atomic():
        claimed = kind.model.objects.filter(pk=job.pk, status__in=from_states).update(
            status=QUEUED, rq_job_id=job_id, queued_at=timezone.now(), enqueued_at=None, cancel_requested=False,
            error="", worker_name="", started_at=None, finished_at=None, **fields,
        )
        if claimed:
            transaction.on_commit(lambda: push(kind, job.pk, job_id))
    job.refresh_from_db()
    return bool(claimed)


def push(kind: JobKind, pk, job_id: str) -> None:
    """Hand the row to Redis (or run it here when RETROPORTAL_RUN_JOBS_INLINE: the demo without Redis)."""
    if settings.RETROPORTAL_RUN_JOBS_INLINE:
        import_string(kind.task)(pk)
        return
    queue = django_rq.get_queue(kind.queue, commit_mode="auto")  # our caller already waited for the commit
    try:
        queue.enqueue(kind.task, pk, job_id=job_id, job_timeout=kind.timeout() if kind.timeout else None,
                      result_ttl=kind.result_ttl)
    except redis.exceptions.RedisError as exc:  # the row is committed: reconcile deals with it after the grace
        log.warning("could not queue %s %s (%s); reconcile will see to it", kind.name, pk, exc)
        return
    kind.model.objects.filter(pk=pk, rq_job_id=job_id).update(enqueued_at=timezone.now())


def in_redis(kind: JobKind, job) -> bool:
    """Whether Redis holds the row's RQ job (False when it never got there or Redis lost it)."""
    if not job.rq_job_id or settings.RETROPORTAL_RUN_JOBS_INLINE:
        return False
    return bool(django_rq.get_connection(kind.queue).exists(Job.key_for(job.rq_job_id)))


# -- the worker's side -------------------------------------------------------------------------------------
def _drop_stale_connection() -> None:
    """A long-lived worker drops a DB connection the server closed meanwhile (as Django does per request);
    not inside an atomic block (inline mode), which would close the caller's transaction."""
    if not connection.in_atomic_block:
        close_old_connections()


def claim(kind: JobKind, pk, **fields) -> bool:
    """Mark the row running by this worker, only if it is still queued under this RQ job and not cancelled."""
    rq_job = get_current_job()
    mine = {"rq_job_id": rq_job.id} if rq_job is not None else {}
    worker = ((rq_job.worker_name if rq_job is not None else "") or "inline")[:200]
    return bool(kind.model.objects.filter(pk=pk, status=QUEUED, cancel_requested=False, **mine).update(
        status=RUNNING, worker_name=worker, started_at=timezone.now(), finished_at=None, error="", **fields))


@contextmanager
def running(kind: JobKind, pk, **fields):
    """The body of every task: heartbeat first, then the claim; yields the claimed row, or None when it is not
    this job's to run (cancelled while queued, queued again since, deleted)."""
    _drop_stale_connection()
    try:
        with Heartbeat(kind.queue, kind.alive_key(pk)):
            yield kind.model.objects.get(pk=pk) if claim(kind, pk, **fields) else None
    finally:
        _drop_stale_connection()


def finish(kind: JobKind, pk, status: str, **fields) -> None:
    """Write a final status (and `fields`) with the time it ended."""
    kind.model.objects.filter(pk=pk).update(status=status, finished_at=timezone.now(), **fields)


# -- cancelling --------------------------------------------------------------------------------------------
def cancel(kind: JobKind, job) -> bool:
    """A queued row is cancelled at once; a running one is asked to stop (its task polls cancel_requested).
    False when the row was neither."""
    model = kind.model
    if model.objects.filter(pk=job.pk, status=QUEUED).update(
            status=CANCELLED, cancel_requested=True, finished_at=timezone.now()):
        _cancel_rq_job(kind, job.rq_job_id)
        job.refresh_from_db()
        return True
    asked = model.objects.filter(pk=job.pk, status=RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return bool(asked)


def _cancel_rq_job(kind: JobKind, job_id: str) -> None:
    if not job_id or settings.RETROPORTAL_RUN_JOBS_INLINE:
        return
    try:
        Job.fetch(job_id, connection=django_rq.get_connection(kind.queue)).cancel()
    except Exception:  # the row is the truth: a vanished RQ job or an unreachable Redis is fine here
        pass


# -- reconciling -------------------------------------------------------------------------------------------
def _fetch(kind: JobKind, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=django_rq.get_connection(kind.queue))
    except NoSuchJobError:
        return None


def reconcile(kind: JobKind, job):
    """Bring a queued or running row whose RQ side is gone to the kind's documented end state.

    Queued: Redis must know its job once it has been handed over (or the grace period is over); if not,
    the row is queued again (REQUEUE) or ends in `lost_queued`. Running: the RQ job must exist and not have
    failed, and the worker's heartbeat must be alive; if not, it ends in `died_state` with the reason.
    A running row without an RQ job (or run by worker 'inline') runs inside a command's own process: there
    is nothing to check it against.
    """
    if job.status not in ACTIVE or settings.RETROPORTAL_RUN_JOBS_INLINE:
        return job
    if job.status == QUEUED:
        if not _lost_while_queued(kind, job):
            return job
        if kind.lost_queued == REQUEUE:
            log.warning("%s %s was lost from the queue; queueing it again", kind.name, job.pk)
            enqueue(kind, job)
            return job
        return _end(kind, job, kind.lost_queued, kind.lost_queued_reason)
    if not job.rq_job_id or job.worker_name == "inline":
        return job
    rq_job = _fetch(kind, job.rq_job_id)
    status = rq_job.get_status(refresh=True) if rq_job is not None else None
    if status is None:
        return _end(kind, job, kind.died_state, kind.lost_reason)
    if status in GONE:
        return _end(kind, job, kind.died_state, _failure_reason(kind, rq_job))
    if not alive(kind.queue, kind.alive_key(job.pk), job.worker_name):
        return _end(kind, job, kind.died_state, kind.died_reason)
    return job


def _lost_while_queued(kind: JobKind, job) -> bool:
    waited = (timezone.now() - (job.queued_at or job.created_at)).total_seconds()
    if job.enqueued_at is None and waited <= grace_seconds():
        return False  # still on its way to Redis
    return not job.rq_job_id or _status(kind, job.rq_job_id) in GONE


def _status(kind: JobKind, job_id: str):
    rq_job = _fetch(kind, job_id)
    return rq_job.get_status(refresh=True) if rq_job is not None else None


def _failure_reason(kind: JobKind, rq_job: Job) -> str:
    """RQ's own reason when it says more than 'the worker went away'."""
    result = rq_job.latest_result()
    info = ((result.exc_string if result else "") or "").strip()
    if not info or "abandoned" in info.lower() or "heartbeat" in info.lower():
        return kind.died_reason
    return info.splitlines()[-1][:500]


def _end(kind: JobKind, job, state: str, reason: str):
    ended = kind.model.objects.filter(pk=job.pk, status=job.status).update(
        status=state, error=reason, finished_at=timezone.now(), **kind.end_fields)
    job.refresh_from_db()
    if ended and kind.on_ended is not None:
        kind.on_ended(job)
    return job


def reconcile_all(kind: JobKind, queryset=None) -> list[tuple[object, str]]:
    """Reconcile every queued or running row (oldest first); (row, status before) for those that changed."""
    rows = kind.model.objects.filter(status__in=ACTIVE) if queryset is None else queryset
    changed = []
    for job in rows.order_by("created_at"):
        before = job.status
        job = reconcile(kind, job)
        if job.status != before:
            changed.append((job, before))
    return changed
