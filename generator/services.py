"""Submitting, cancelling and reconciling generation jobs: the one code path shared by website and API.

The job row is written to PostgreSQL *before* it is queued, so an accepted job is never only in Redis.
"""
from dataclasses import dataclass

import logging

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from generator.engine.params import GenerationParams, Limits, ParamError
from generator.models import AIModel, GenerationJob, PromptHistory

logger = logging.getLogger(__name__)

QUEUE_NAME = "generation"
# A job is executed by generator.tasks.run_generation_job(job_id) on the "generation" queue.
TASK_PATH = "generator.tasks.run_generation_job"


class SubmissionRefused(Exception):
    """The request is valid but cannot be accepted now (queue cap, no model). `field` may name a field."""

    def __init__(self, message: str, field: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after


class QueueUnavailable(SubmissionRefused):
    """Redis cannot be reached: nothing is recorded, the user is asked to retry (the site itself stays up)."""

    def __init__(self):
        super().__init__(
            "The job queue is unavailable right now, so nothing was submitted; please try again in a minute.",
            retry_after=60,
        )


def site_limits() -> Limits:
    return Limits(**settings.RETROPORTAL_LIMITS)


def default_model() -> AIModel | None:
    """The model used when a request names none: the registry's default, else RETROPORTAL_DEFAULT_MODEL."""
    model = AIModel.objects.filter(is_default=True, is_active=True).first()
    if model is None and settings.RETROPORTAL_DEFAULT_MODEL:
        model = AIModel.objects.filter(name=settings.RETROPORTAL_DEFAULT_MODEL, is_active=True).first()
    return model


def resolve_model(name: str | None) -> AIModel:
    if not name:
        model = default_model()
        if model is None:
            raise SubmissionRefused(
                "No default model is registered; an admin can add one with 'manage.py add_model --default'.", "model"
            )
        return model
    model = AIModel.objects.filter(name=name, is_active=True).first()
    if model is None:
        active = ", ".join(AIModel.objects.filter(is_active=True).values_list("name", flat=True)) or "none"
        raise SubmissionRefused(f"unknown or inactive model {name!r}; active models: {active}", "model")
    return model


def submit_generation(user, params: GenerationParams, model_name: str | None = None) -> GenerationJob:
    """Validate, record and enqueue a generation. Raises ParamError or SubmissionRefused."""
    params.validate(site_limits())
    model = resolve_model(model_name)
    cap = settings.RETROPORTAL_MAX_QUEUED_JOBS_PER_USER
    pending = GenerationJob.objects.filter(
        user=user, status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING]
    ).count()
    if pending >= cap:
        raise SubmissionRefused(
            f"You already have {pending} unfinished jobs (the limit is {cap}); wait for one to finish or cancel one.",
            retry_after=30,
        )
    _check_queue_reachable()
    with transaction.atomic():
        job = GenerationJob.objects.create(user=user, model=model, **params.as_dict())
        _remember_prompt(user, job)
    transaction.on_commit(lambda: enqueue(job))
    return job


def _check_queue_reachable() -> None:
    """Refuse up front when Redis is down, rather than record a job nobody will ever run."""
    if settings.RETROPORTAL_RUN_JOBS_INLINE:
        return
    try:
        django_rq.get_connection(QUEUE_NAME).ping()
    except redis.exceptions.RedisError:
        raise QueueUnavailable() from None


def _remember_prompt(user, job: GenerationJob) -> None:
    updated = PromptHistory.objects.filter(
        user=user, prompt=job.prompt, negative_prompt=job.negative_prompt
    ).update(times_used=F("times_used") + 1, last_job=job, last_used_at=timezone.now())
    if not updated:
        PromptHistory.objects.create(user=user, prompt=job.prompt, negative_prompt=job.negative_prompt, last_job=job)


def enqueue(job: GenerationJob) -> None:
    """Put the job on the generation queue (or run it inline in demo mode without Redis)."""
    if settings.RETROPORTAL_RUN_JOBS_INLINE:
        from generator.tasks import run_generation_job

        run_generation_job(str(job.pk))
        return
    # "auto": enqueue now. Our callers already wait for the commit (transaction.on_commit in submit).
    queue = django_rq.get_queue(QUEUE_NAME, commit_mode="auto")
    try:
        rq_job = queue.enqueue(TASK_PATH, str(job.pk), job_id=f"gen-{job.pk}")
    except redis.exceptions.RedisError as exc:
        # The row is committed: reconcile() re-queues jobs that never reached Redis.
        logger.warning("could not queue job %s (%s); reconcile_jobs will queue it again", job.pk, exc)
        return
    GenerationJob.objects.filter(pk=job.pk).update(rq_job_id=rq_job.id)
    job.rq_job_id = rq_job.id  # callers holding this instance (cancel right after submit) see it too


def cancel(job: GenerationJob) -> bool:
    """Cancel a queued job at once; ask a running one to stop between steps. Returns False if already final."""
    if job.is_final:
        return False
    if job.status == GenerationJob.Status.QUEUED:
        updated = GenerationJob.objects.filter(pk=job.pk, status=GenerationJob.Status.QUEUED).update(
            status=GenerationJob.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()
        )
        if updated:
            _cancel_rq_job(job)
            job.refresh_from_db()
            return True
    GenerationJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    return True


def _cancel_rq_job(job: GenerationJob) -> None:
    if not job.rq_job_id:
        return
    try:
        Job.fetch(job.rq_job_id, connection=django_rq.get_connection(QUEUE_NAME)).cancel()
    except (NoSuchJobError, Exception):  # the DB row is the truth; a vanished RQ job is fine here
        pass


@dataclass
class QueueInfo:
    position: int | None  # 1-based position among queued jobs, None when not queued


def queue_position(job: GenerationJob) -> int | None:
    if job.status != GenerationJob.Status.QUEUED:
        return None
    return GenerationJob.objects.filter(status=GenerationJob.Status.QUEUED, created_at__lte=job.created_at).count()


def reconcile(job: GenerationJob) -> GenerationJob:
    """Bring a job whose RQ side has failed or vanished to a final state (never 'running' forever).

    A running job whose RQ job failed (worker killed: RQ moves abandoned jobs to the failed registry
    once the worker's heartbeat expires) or no longer exists in Redis is marked failed with the reason.
    """
    if job.is_final or settings.RETROPORTAL_RUN_JOBS_INLINE:
        return job
    if not job.rq_job_id:
        return _requeue_if_never_queued(job)
    try:
        rq_job = Job.fetch(job.rq_job_id, connection=django_rq.get_connection(QUEUE_NAME))
        rq_status = rq_job.get_status(refresh=True)
    except NoSuchJobError:
        rq_job, rq_status = None, None
    reason = None
    if rq_status is None:
        reason = "The job was lost from the queue (Redis restarted or was flushed); please submit it again."
    elif rq_status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED) and job.status != "cancelled":
        reason = _failure_reason(rq_job)
    elif job.status == GenerationJob.Status.RUNNING and not _worker_alive(job):
        reason = "The worker running this job stopped unexpectedly (killed or crashed); please submit it again."
    if reason:
        GenerationJob.objects.filter(pk=job.pk, status__in=["queued", "running"]).update(
            status=GenerationJob.Status.FAILED, error=reason, finished_at=timezone.now()
        )
        job.refresh_from_db()
    return job


ENQUEUE_GRACE_SECONDS = 30


def _requeue_if_never_queued(job: GenerationJob) -> GenerationJob:
    """A committed job that never reached Redis (it failed between commit and enqueue) is queued again."""
    age = (timezone.now() - job.created_at).total_seconds()
    if job.status == GenerationJob.Status.QUEUED and age > ENQUEUE_GRACE_SECONDS:
        enqueue(job)
    return job


def alive_key(job_id) -> str:
    """Redis key the worker refreshes (TTL RETROPORTAL_JOB_HEARTBEAT_TTL) while it runs the job (generator.tasks)."""
    return f"retroportal:job-alive:{job_id}"


def _worker_alive(job: GenerationJob) -> bool:
    """False once the worker that took a running job is gone.

    RQ notices a dead SimpleWorker only when the job's TTL (its timeout + 60 s) runs out, so we look at
    the job's own heartbeat key (the task sets it before marking the job running, and a thread refreshes
    it) and at the worker's registration in Redis.
    """
    conn = django_rq.get_connection(QUEUE_NAME)
    if not conn.exists(alive_key(job.pk)):
        return False
    if job.worker_name and job.worker_name != "inline":
        return bool(conn.exists(Worker.redis_worker_namespace_prefix + job.worker_name))
    return True


def _failure_reason(rq_job: Job) -> str:
    info = (rq_job.latest_result().exc_string if rq_job.latest_result() else "") or ""
    if "abandoned" in info.lower() or "heartbeat" in info.lower() or not info:
        return "The worker running this job stopped unexpectedly (killed or crashed); please submit it again."
    return info.strip().splitlines()[-1][:500]
