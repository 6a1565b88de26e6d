"""The RQ task that runs one generation job inside the long-lived worker process.

`manage.py rqworker generation --worker-class rq.worker.SimpleWorker` runs every job in the worker's
own process, so the engine's process-level caches (generator.engine.cache) keep loaded pipelines and
the CLIP model across jobs: only the first job for a model pays for loading it. The number of loads is written to the RQ job's
meta (`model_loads`) so tests and operators can see it.

A job is "running" only while this process says so: a small thread refreshes a Redis key
(services.alive_key) every few seconds. If the worker is killed (kill -9, OOM), the key expires and
services.reconcile marks the job failed, long before RQ's own 30-minute job TTL would.
"""
import logging
import secrets
import threading
import time

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from generator import services
from generator.engine.params import GenerationParams
from generator.models import GeneratedImage, GenerationJob

log = logging.getLogger(__name__)

Status = GenerationJob.Status
CANCEL_POLL_SECONDS = 0.3  # how often the cancel flag is read from the DB between steps



def pipeline_cache():
    """The worker process's one PipelineCache (generator.engine.cache.pipelines): it outlives jobs."""
    from generator.engine import cache

    return cache.pipelines


def clip_cache():
    """The worker process's one ClipCache (it also remembers an unavailable CLIP model)."""
    from generator.engine import cache

    return cache.clips


def one_line(exc: BaseException) -> str:
    """A readable single-line reason for the job page: the message, else the exception's type."""
    from generator.engine.loading import ModelLoadError

    text = " ".join(str(exc).split()) if str(exc).strip() else ""
    if isinstance(exc, ModelLoadError) and text:
        reason = text
    else:
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:500]


class JobHeartbeat:
    """Keep services.alive_key(job) in Redis while this process works on the job.

    `key` names another key (training runs use it: training.runs.alive_key); services.heartbeat_alive() checks it.
    """

    def __init__(self, job_id, key: str | None = None):
        self.key = key or services.alive_key(job_id)
        self.ttl = max(2, int(settings.RETROPORTAL_JOB_HEARTBEAT_TTL))
        self.stop = threading.Event()
        self.thread = None
        self.conn = None

    def __enter__(self):
        if settings.RETROPORTAL_RUN_JOBS_INLINE:
            return self
        import django_rq

        self.conn = django_rq.get_connection(services.QUEUE_NAME)
        self.conn.set(self.key, "1", ex=self.ttl)
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat {self.key}", daemon=True)
        self.thread.start()
        return self

    def _beat(self):
        while not self.stop.wait(self.ttl / 3):
            try:
                self.conn.set(self.key, "1", ex=self.ttl)
            except Exception:  # Redis briefly away: the next beat retries
                log.warning("job heartbeat %s failed", self.key, exc_info=True)

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
            try:
                self.conn.delete(self.key)
            except Exception:
                pass
        return False


def _load_model(job: GenerationJob):
    """The pipeline for the job's registry entry, from the process-wide cache."""
    aimodel = job.model
    kwargs = dict(allow_pickle=settings.RETROPORTAL_ALLOW_PICKLE, name=aimodel.name)
    if aimodel.kind == aimodel.Kind.LORA:
        if aimodel.parent is None:
            raise ValueError(f"LoRA model {aimodel.name} has no base model; set its parent in the admin")
        return pipeline_cache().get(aimodel.parent.source, lora=aimodel.source, lora_scale=aimodel.lora_scale, **kwargs)
    return pipeline_cache().get(aimodel.source, **kwargs)


def _clip_scores(pictures, prompt: str):
    """(scores, error): CLIP scores for the pictures, or Nones and the reason none could be computed."""
    from generator.engine.clipscore import ClipUnavailable

    spec = settings.RETROPORTAL_CLIP_MODEL
    try:
        scorer = clip_cache().get(spec)
        scores = scorer.score([p.image for p in pictures], [prompt])
        return [float(s) for s in scores], ""
    except ClipUnavailable as exc:
        return [None] * len(pictures), exc.reason
    except Exception as exc:  # a score is a bonus: never lose the images for it
        log.exception("CLIP scoring failed for %s", spec)
        return [None] * len(pictures), f"CLIP scoring failed: {one_line(exc)}"


def _save_images(job: GenerationJob, pictures, scores, clip_error: str, warnings: str) -> None:
    """Store files and rows together: on any error no row is left without its file, nor file without row."""
    stored = []
    storage = GeneratedImage._meta.get_field("file").storage
    try:
        with transaction.atomic():
            for index, (picture, score) in enumerate(zip(pictures, scores)):
                image = GeneratedImage(
                    job=job, owner_id=job.user_id, index=index, seed=picture.seed,
                    width=picture.image.width, height=picture.image.height, parameters=picture.infotext,
                    clip_score=score, clip_model=settings.RETROPORTAL_CLIP_MODEL if score is not None else "",
                    clip_error=clip_error if score is None else "",
                )
                # 128 random bits: a file name nobody can guess (it is never served by URL prefix anyway).
                image.file.save(f"{secrets.token_hex(16)}.png", ContentFile(picture.png), save=False)
                stored.append(image.file.name)
                image.save()
            GenerationJob.objects.filter(pk=job.pk).update(
                status=Status.DONE, finished_at=timezone.now(), warnings=warnings, error="",
                progress_step=job.progress_total or job.steps * job.num_images,
            )
    except BaseException:
        for name in stored:
            try:
                storage.delete(name)
            except Exception:
                log.warning("could not remove %s after a failed save", name, exc_info=True)
        raise


def _drop_stale_connection() -> None:
    """A long-lived worker: drop a DB connection the server closed meanwhile (as Django does per request).

    Not inside an atomic block (inline mode in a test or an ATOMIC_REQUESTS request): that would close
    the caller's transaction.
    """
    if not connection.in_atomic_block:
        close_old_connections()


def run_generation_job(job_id: str) -> str:
    """Run GenerationJob `job_id`; returns its final status. Never raises for a job-level failure."""
    from rq import get_current_job

    _drop_stale_connection()
    rq_job = get_current_job()
    try:
        job = GenerationJob.objects.select_related("model", "model__parent").get(pk=job_id)
    except GenerationJob.DoesNotExist:
        log.warning("generation job %s no longer exists; skipping", job_id)
        return "missing"
    worker_name = (rq_job.worker_name if rq_job is not None else "") or "inline"
    try:
        with JobHeartbeat(job.pk):
            claimed = GenerationJob.objects.filter(pk=job.pk, status=Status.QUEUED, cancel_requested=False).update(
                status=Status.RUNNING, started_at=timezone.now(), worker_name=worker_name[:200],
                progress_step=0, progress_total=job.steps * job.num_images,
            )
            if not claimed:  # cancelled while queued, or already handled
                job.refresh_from_db()
                if job.status == Status.QUEUED:  # cancel requested but not yet applied
                    GenerationJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
                        status=Status.CANCELLED, finished_at=timezone.now()
                    )
                return job.status
            job.refresh_from_db()
            return _run(job)
    finally:
        _record_meta(rq_job)
        _drop_stale_connection()


def _run(job: GenerationJob) -> str:
    from generator.engine.generate import GenerationCancelled, generate

    last_check = [0.0, False]

    def on_step(step: int, total: int) -> None:
        GenerationJob.objects.filter(pk=job.pk).update(progress_step=step, progress_total=total)
        job.progress_step, job.progress_total = step, total

    def should_cancel() -> bool:
        now = time.monotonic()
        if not last_check[1] and now - last_check[0] >= CANCEL_POLL_SECONDS:
            last_check[0] = now
            last_check[1] = GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()
        return last_check[1]

    try:
        model = _load_model(job)
        params = GenerationParams(
            prompt=job.prompt, negative_prompt=job.negative_prompt, seed=job.seed, steps=job.steps,
            guidance_scale=job.guidance_scale, width=job.width, height=job.height, num_images=job.num_images,
            scheduler=job.scheduler,
        )
        result = generate(model, params, on_step=on_step, should_cancel=should_cancel, limits=services.site_limits())
        pictures = result.pictures
        scores, clip_error = _clip_scores(pictures, job.prompt)
        _save_images(job, pictures, scores, clip_error, "\n".join(result.warnings or []))
        log.info("generation job %s done: %d image(s)", job.pk, len(pictures))
        return Status.DONE
    except GenerationCancelled:
        GenerationJob.objects.filter(pk=job.pk).update(status=Status.CANCELLED, finished_at=timezone.now())
        log.info("generation job %s cancelled", job.pk)
        return Status.CANCELLED
    except Exception as exc:
        log.exception("generation job %s failed", job.pk)
        GenerationJob.objects.filter(pk=job.pk).update(
            status=Status.FAILED, error=one_line(exc), finished_at=timezone.now()
        )
        return Status.FAILED


def _record_meta(rq_job) -> None:
    if rq_job is None:
        return
    try:
        rq_job.meta["model_loads"] = pipeline_cache().loads
        rq_job.meta["clip_loads"] = clip_cache().loads
        rq_job.save_meta()
    except Exception:
        log.warning("could not record model loads in the RQ job's meta", exc_info=True)
