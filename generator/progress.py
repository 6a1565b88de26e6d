"""Live progress of a generation job, as the job page and the API show it: "image k of N · step s of S · ETA".

The worker writes the numbers (progress_image/progress_images/progress_image_step/progress_image_steps, and
progress_step/progress_total over all images) and a small preview PNG of the image being denoised
(`preview_png`, a latent-to-RGB approximation, no VAE decode); this module only reads them.
"""
from django.urls import reverse
from django.utils import timezone

from generator.models import GenerationJob

Status = GenerationJob.Status


def eta_seconds(job: GenerationJob, now=None) -> int | None:
    """Seconds left: the time since the job started, spread over the steps done, times the steps left.

    None until a step is done (model loading is not a step) or once the job is final."""
    if job.is_final or job.status != Status.RUNNING or not job.started_at:
        return None
    step, total = job.progress_step, job.progress_total
    if not total or step <= 0 or step >= total:
        return None
    elapsed = ((now or timezone.now()) - job.started_at).total_seconds()
    return max(0, round(elapsed * (total - step) / step))


def percent(job: GenerationJob) -> int:
    if job.status == Status.DONE:
        return 100
    total = job.progress_total
    step = min(job.progress_step, total) if total else job.progress_step
    return max(0, min(100, int(100 * step / total))) if total else 0


def has_preview(job: GenerationJob) -> bool:
    """A preview is shown only while the job runs (the final pictures replace it)."""
    return job.status == Status.RUNNING and job.preview_updated_at is not None


def preview_url(job: GenerationJob) -> str | None:
    """The owner-only preview URL, with the preview's time in the query so a browser never shows a stale one."""
    if not has_preview(job):
        return None
    version = int(job.preview_updated_at.timestamp() * 1000)
    return f"{reverse('job-preview', args=[job.pk])}?v={version}"


def progress_info(job: GenerationJob) -> dict:
    """The numbers both the job page's status.json and the API's `progress` carry."""
    total = job.progress_total
    return {
        "step": min(job.progress_step, total) if total else job.progress_step,
        "total": total,
        "percent": percent(job),
        "image": job.progress_image,
        "images": job.progress_images or job.num_images,
        "image_step": job.progress_image_step,
        "image_steps": job.progress_image_steps,
        "eta_seconds": eta_seconds(job),
    }


def eta_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def progress_line(job: GenerationJob) -> str:
    """'image 2 of 4 · step 8 of 20 · ETA 12 s' for a running job with steps done, else ''."""
    info = progress_info(job)
    if job.status != Status.RUNNING or not info["image"] or not info["image_steps"]:
        return ""
    parts = [f"image {info['image']} of {info['images']}", f"step {info['image_step']} of {info['image_steps']}"]
    if info["eta_seconds"] is not None:
        parts.append(f"ETA {eta_text(info['eta_seconds'])}")
    return " · ".join(parts)
