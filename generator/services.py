"""Submitting, cancelling and reconciling generation jobs: the one code path shared by website and API.

The job row is written to PostgreSQL *before* it is queued, so an accepted job is never only in Redis.
"""
from dataclasses import replace
from datetime import timedelta

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from generator import inputs
from generator.engine.params import GenerationParams, Limits, ParamError
from generator.models import AIModel, GenerationJob, PromptHistory
from jobs import core as jobs

QUEUE_NAME = "generation"
GENERATION = jobs.JobKind(
    name="gen", model_label="generator.GenerationJob", queue=QUEUE_NAME,
    task="generator.tasks.run_generation_job",
    died_reason="The worker running this job stopped unexpectedly (killed or crashed); please submit it again.",
    lost_reason="The job was lost from the queue while it ran (Redis restarted or was flushed); "
                "please submit it again.",
    lost_queued=jobs.REQUEUE,  # the row holds every parameter: an accepted job is queued again, not failed
)


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


def configured_limits() -> Limits:
    """settings.RETROPORTAL_LIMITS alone, without the database: the numeric bounds (e.g. for the OpenAPI schema,
    built where no database may be reachable)."""
    return Limits(**settings.RETROPORTAL_LIMITS)


def site_limits() -> Limits:
    """What requests are validated against: the configured limits and the registered upscalers `hires_upscaler`
    may name (one small query)."""
    return replace(configured_limits(), upscalers=tuple(AIModel.objects.upscalers().values_list("name", flat=True)))


def default_model() -> AIModel | None:
    """The model used when a request names none: the registry's default, else RETROPORTAL_DEFAULT_MODEL."""
    model = AIModel.objects.drawable().filter(is_default=True).first()
    if model is None and settings.RETROPORTAL_DEFAULT_MODEL:
        model = AIModel.objects.drawable().filter(name=settings.RETROPORTAL_DEFAULT_MODEL).first()
    return model


def resolve_model(name: str | None) -> AIModel:
    if not name:
        model = default_model()
        if model is None:
            raise SubmissionRefused(
                "No default model is registered; an admin can add one with 'manage.py add_model --default'.", "model"
            )
        return model
    model = AIModel.objects.drawable().filter(name=name).first()
    if model is None:
        active = ", ".join(AIModel.objects.drawable().values_list("name", flat=True)) or "none"
        raise SubmissionRefused(f"unknown or inactive model {name!r}; active models: {active}", "model")
    return model


def submit_generation(user, params: GenerationParams, model_name: str | None = None, *,
                      init_image_source=None) -> GenerationJob:
    """Validate, record and enqueue a generation. Raises ParamError or SubmissionRefused.

    `init_image_source` is the GeneratedImage a remix started from (its picture is params.init_image);
    the pictures are stored on the job under generated names (generator.inputs.store_pictures)."""
    params.validate(site_limits())
    model = resolve_model(model_name)
    refused = inputs.request_errors(model, params)
    if refused:
        raise ParamError.from_errors(refused)
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
    job = GenerationJob(user=user, model=model, init_image_source=init_image_source, **params.as_dict())
    stored = []
    try:
        with transaction.atomic():
            stored = inputs.store_pictures(job, params)
            job.save()
            _remember_prompt(user, job)
            enqueue(job)
    except BaseException:
        inputs.delete_stored(job, stored)  # nothing half-written: no picture without its job
        raise
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


def enqueue(job: GenerationJob) -> bool:
    """Put a queued job on the generation queue once the transaction commits (inline in demo mode)."""
    return jobs.enqueue(GENERATION, job)


def cancel(job: GenerationJob) -> bool:
    """Cancel a queued job at once; ask a running one to stop between steps. Returns False if already final."""
    return jobs.cancel(GENERATION, job)


def queue_position(job: GenerationJob) -> int | None:
    """1-based position among all queued jobs (oldest first), None when the job is not queued."""
    if job.status != GenerationJob.Status.QUEUED:
        return None
    return GenerationJob.objects.filter(status=GenerationJob.Status.QUEUED, created_at__lte=job.created_at).count()


def reconcile(job: GenerationJob) -> GenerationJob:
    """A job whose worker died or whose queue entry vanished ends failed with the reason (never 'running'
    forever); a queued job Redis lost is queued again (jobs.core.reconcile, GENERATION's rules)."""
    return jobs.reconcile(GENERATION, job)


def rq_job_exists(job: GenerationJob) -> bool:
    """Whether Redis holds the job's RQ entry (False when it never got there or Redis lost it)."""
    return jobs.in_redis(GENERATION, job)
