"""Submitting, cancelling and reconciling generation jobs: the one code path shared by website and API.

The job row is written to PostgreSQL *before* it is queued, so an accepted job is never only in Redis.
"""
import logging
from datetime import timedelta

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
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
    _check_daily_quota(user, params.num_images)
    _check_global_queue()
    _check_queue_reachable()
    with transaction.atomic():
        job = GenerationJob.objects.create(user=user, model=model, **params.as_dict())
        _remember_prompt(user, job)
    transaction.on_commit(lambda: enqueue(job))
    return job


QUOTA_WINDOW = timedelta(hours=24)


def _check_daily_quota(user, wanted: int) -> None:
    """RETROPORTAL_DAILY_IMAGE_QUOTA images per user over a rolling 24 h (failed/cancelled jobs do not count).

    Rolling rather than per calendar day, so Retry-After is exact: the time until the oldest counted job
    leaves the window.
    """
    quota = settings.RETROPORTAL_DAILY_IMAGE_QUOTA
    if not quota:
        return
    since = timezone.now() - QUOTA_WINDOW
    counted = GenerationJob.objects.filter(
        user=user, created_at__gte=since,
        status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING, GenerationJob.Status.DONE],
    )
    used = counted.aggregate(n=Sum("num_images"))["n"] or 0
    if used + wanted <= quota:
        return
    oldest = counted.order_by("created_at").values_list("created_at", flat=True).first()
    wait = int((oldest + QUOTA_WINDOW - timezone.now()).total_seconds()) + 1 if oldest else 3600
    left = max(0, quota - used)
    raise SubmissionRefused(
        f"Daily quota reached: you have made {used} of your {quota} images in the last 24 hours"
        + (f" and {wanted} more would exceed it ({left} left)" if left else "")
        + f"; try again in {_human(wait)}.",
        retry_after=max(1, wait),
    )


def _check_global_queue() -> None:
    """RETROPORTAL_MAX_QUEUED_JOBS: a bound on queued jobs over all users, so the queue cannot grow without end."""
    bound = settings.RETROPORTAL_MAX_QUEUED_JOBS
    if not bound:
        return
    queued = GenerationJob.objects.filter(status=GenerationJob.Status.QUEUED).count()
    if queued >= bound:
        raise SubmissionRefused(
            f"The site is busy: {queued} jobs are waiting for a worker (the limit is {bound}); "
            "please try again in a minute.",
            retry_after=60,
        )


def _human(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


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
    except Exception:  # the DB row is the truth: a vanished RQ job or an unreachable Redis is fine here
        pass


def queue_position(job: GenerationJob) -> int | None:
    """1-based position among all queued jobs (oldest first), None when the job is not queued."""
    if job.status != GenerationJob.Status.QUEUED:
        return None
    return GenerationJob.objects.filter(status=GenerationJob.Status.QUEUED, created_at__lte=job.created_at).count()


def reconcile(job: GenerationJob) -> GenerationJob:
    """Bring a job whose RQ side has failed or vanished to a final state (never 'running' forever).

    A queued job that Redis no longer knows (flushed or restarted without persistence) is queued again.
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
    if rq_status is None and job.status == GenerationJob.Status.QUEUED:
        # Redis lost the queue (restart without persistence, FLUSHALL): the row holds every parameter, so
        # the accepted job is queued again rather than failed. (A job that is queued in the DB but unknown
        # to Redis has not started: the worker marks it running before it does anything.)
        logger.warning("job %s was lost from the queue; queueing it again", job.pk)
        enqueue(job)
        job.refresh_from_db()
        return job
    if rq_status is None:
        reason = ("The job was lost from the queue while it ran (Redis restarted or was flushed); "
                  "please submit it again.")
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


def rq_job_exists(job: GenerationJob) -> bool:
    """Whether Redis holds the job's RQ entry (False when it never got there or Redis lost it)."""
    if not job.rq_job_id or settings.RETROPORTAL_RUN_JOBS_INLINE:
        return False
    return bool(django_rq.get_connection(QUEUE_NAME).exists(Job.key_for(job.rq_job_id)))


def alive_key(job_id) -> str:
    """Redis key the worker refreshes (TTL RETROPORTAL_JOB_HEARTBEAT_TTL) while it runs the job (generator.tasks)."""
    return f"retroportal:job-alive:{job_id}"


def heartbeat_alive(key: str, worker_name: str = "") -> bool:
    """False once the process holding a heartbeat on `key` is gone, or its worker is no longer registered.

    RQ notices a dead SimpleWorker only when the job's TTL (its timeout + 60 s) runs out, so the task
    keeps its own key alive (generator.tasks.JobHeartbeat: set before the row is marked running, refreshed
    by a thread) and we also look at the worker's registration in Redis. Training runs use it too.
    """
    conn = django_rq.get_connection(QUEUE_NAME)
    if not conn.exists(key):
        return False
    if worker_name and worker_name != "inline":
        return bool(conn.exists(Worker.redis_worker_namespace_prefix + worker_name))
    return True


def _worker_alive(job: GenerationJob) -> bool:
    return heartbeat_alive(alive_key(job.pk), job.worker_name)


def _failure_reason(rq_job: Job) -> str:
    info = (rq_job.latest_result().exc_string if rq_job.latest_result() else "") or ""
    if "abandoned" in info.lower() or "heartbeat" in info.lower() or not info:
        return "The worker running this job stopped unexpectedly (killed or crashed); please submit it again."
    return info.strip().splitlines()[-1][:500]
