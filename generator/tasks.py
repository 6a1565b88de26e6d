"""The RQ task that runs one generation job inside the long-lived worker process.

`manage.py rqworker generation --worker-class rq.worker.SimpleWorker` runs every job in the worker's
own process, so the engine's process-level caches (generator.engine.cache) keep loaded pipelines and
the CLIP model across jobs: only the first job for a model pays for loading it. The number of loads is written to the RQ job's
meta (`model_loads`) so tests and operators can see it.

A job is "running" only while this process says so: jobs.core.running keeps a heartbeat key in Redis
(jobs.heartbeat) while the task runs. If the worker is killed (kill -9, OOM), the key expires and
services.reconcile marks the job failed, long before RQ's own 30-minute job TTL would.
"""
import dataclasses
import logging
import secrets
import time

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from generator import services
from generator.engine.params import GenerationParams
from generator.models import AIModel, GeneratedImage, GenerationJob
from jobs import core as jobs

log = logging.getLogger(__name__)

Status = GenerationJob.Status
CANCEL_POLL_SECONDS = 0.3  # how often the cancel flag is read from the DB between steps



def pipeline_cache():
    """The worker process's one PipelineCache (generator.engine.cache.pipelines): it outlives jobs."""
    from generator.engine import cache

    return cache.pipelines


def upscaler_cache():
    """The worker process's UpscalerCache: each registered upscaler is loaded once, like the pipelines."""
    from generator.engine import cache

    return cache.upscalers


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


def _load_model(job: GenerationJob):
    """The pipeline for the job's registry entry, from the process-wide cache."""
    source, lora, scale = job.model.pipeline_spec()
    return pipeline_cache().get(source, lora=lora, lora_scale=scale, allow_pickle=settings.RETROPORTAL_ALLOW_PICKLE,
                                name=job.model.name)


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
                progress_step=job.progress_total or job.steps * job.num_images, preview_png=None,
            )
    except BaseException:
        for name in stored:
            try:
                storage.delete(name)
            except Exception:
                log.warning("could not remove %s after a failed save", name, exc_info=True)
        raise


def run_generation_job(job_id: str) -> str:
    """Run GenerationJob `job_id`; returns its final status. Never raises for a job-level failure."""
    from rq import get_current_job

    rq_job = get_current_job()
    try:
        with jobs.running(services.GENERATION, job_id, progress_step=0) as job:
            if job is None:  # cancelled while queued, queued again since, or deleted
                found = GenerationJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
                return found or "missing"
            return _run(job)
    finally:
        _record_meta(rq_job)


def _picture(file_field, field: str):
    """A job's stored init picture or mask, decoded with the same checks as at submit time (or None)."""
    from generator.engine.pictures import read_picture

    if not file_field:
        return None
    with file_field.open("rb") as f:
        return read_picture(f.read(), field, services.site_limits())


def _loras(job: GenerationJob):
    """The job's [{"name", "scale"}] resolved to registered LoRA files (never a path from the request)."""
    from generator.engine.params import LoraChoice, ParamError

    choices = []
    for item in job.loras or []:
        entry = AIModel.objects.select_related("parent").filter(
            name=item["name"], kind=AIModel.Kind.LORA, is_active=True).first()
        if entry is None:
            raise ParamError("loras", f"LoRA {item['name']!r} is not (or no longer) a registered active LoRA")
        base = entry.base_architecture
        choices.append(LoraChoice(entry.name, float(item.get("scale", 1.0)), entry.source, base or ""))
    return tuple(choices)


def job_params(job: GenerationJob) -> GenerationParams:
    """The job row as GenerationParams: the same fields, the stored pictures decoded, LoRAs resolved."""
    names = {f.name for f in dataclasses.fields(GenerationParams)} - {"init_image", "mask_image", "loras"}
    values = {name: getattr(job, name) for name in names}
    return GenerationParams(**values, init_image=_picture(job.init_image, "init_image"),
                            mask_image=_picture(job.mask_image, "mask_image"), loras=_loras(job))


def _upscaler(params: GenerationParams, device: str):
    """The registered upscaler model the job's hires_upscaler names (None for Lanczos/Latent or no hires),
    loaded once per worker; its file comes from the registry, never from the request."""
    from generator.engine.param_checks import HIRES_UPSCALERS
    from generator.engine.params import ParamError

    if not params.is_hires or params.hires_upscaler in HIRES_UPSCALERS:
        return None
    entry = AIModel.objects.upscalers().filter(name=params.hires_upscaler).first()
    if entry is None:
        raise ParamError("hires_upscaler", f"upscaler {params.hires_upscaler!r} is not (or no longer) a registered "
                                           "active upscaler")
    return upscaler_cache().get(entry.source, device=device, allow_pickle=settings.RETROPORTAL_ALLOW_PICKLE,
                                name=entry.name)


def _translator(params: GenerationParams):
    if not params.translate or not settings.RETROPORTAL_TRANSLATE_MODEL:
        return None  # the engine then says how to switch translation on
    from generator.engine.cache import translators

    return translators.get(settings.RETROPORTAL_TRANSLATE_MODEL)


def _png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _run(job: GenerationJob) -> str:
    from generator.engine.generate import GenerationCancelled, generate

    last_check = [0.0, False]

    def on_progress(progress) -> None:
        """image k of N, step s of S, the whole job's step count, and the preview when one was made."""
        fields = dict(progress_step=progress.done, progress_total=progress.total, progress_image=progress.image,
                      progress_images=progress.images, progress_image_step=progress.step,
                      progress_image_steps=progress.steps)
        if progress.preview is not None:
            fields.update(preview_png=_png(progress.preview), preview_updated_at=timezone.now())
        GenerationJob.objects.filter(pk=job.pk).update(**fields)
        job.progress_step, job.progress_total = progress.done, progress.total

    def should_cancel() -> bool:
        now = time.monotonic()
        if not last_check[1] and now - last_check[0] >= CANCEL_POLL_SECONDS:
            last_check[0] = now
            last_check[1] = GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()
        return last_check[1]

    try:
        params = job_params(job)
        job.progress_total = params.total_steps()
        GenerationJob.objects.filter(pk=job.pk).update(
            progress_total=job.progress_total, progress_images=params.num_images,
            progress_image_steps=params.steps_per_image(), progress_image=1, progress_image_step=0)
        model = _load_model(job)
        result = generate(model, params, on_progress=on_progress, should_cancel=should_cancel,
                          limits=services.site_limits(), translator=_translator(params),
                          allow_pickle=settings.RETROPORTAL_ALLOW_PICKLE, upscaler=_upscaler(params, model.device))
        pictures = result.pictures
        if result.translated_prompt:
            GenerationJob.objects.filter(pk=job.pk).update(
                translated_prompt=result.translated_prompt, translated_negative_prompt=result.translated_negative_prompt)
        scores, clip_error = _clip_scores(pictures, result.translated_prompt or job.prompt)
        _save_images(job, pictures, scores, clip_error, "\n".join(result.warnings or []))
        log.info("generation job %s done: %d image(s)", job.pk, len(pictures))
        return Status.DONE
    except GenerationCancelled:
        jobs.finish(services.GENERATION, job.pk, Status.CANCELLED)
        log.info("generation job %s cancelled", job.pk)
        return Status.CANCELLED
    except Exception as exc:
        log.exception("generation job %s failed", job.pk)
        jobs.finish(services.GENERATION, job.pk, Status.FAILED, error=one_line(exc))
        return Status.FAILED


def _record_meta(rq_job) -> None:
    if rq_job is None:
        return
    try:
        rq_job.meta["model_loads"] = pipeline_cache().loads
        rq_job.meta["clip_loads"] = clip_cache().loads
        rq_job.meta["upscaler_loads"] = upscaler_cache().loads
        rq_job.save_meta()
    except Exception:
        log.warning("could not record model loads in the RQ job's meta", exc_info=True)
