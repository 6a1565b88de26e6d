"""Website: generate form, live job page, image file/publish/delete and prompt history (gallery/ has the rest).

Isolation rule, enforced in `owned_job` / `visible_image` below: a user never sees another user's
jobs or private images; those URLs answer 404 (not 403, which would confirm the id exists).
Public images are readable by every signed-in user; owner-only actions stay owner-only.
Media files are never served by URL prefix: `image_file` checks permission and streams from storage.
"""
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import DetailView, FormView, ListView, TemplateView
from redis.exceptions import RedisError

from generator import inputs, progress, services
from generator.engine.params import ParamError
from generator.engine.sampler_labels import SAMPLER_LABELS
from generator.forms import GenerateForm, initial_from_job
from generator.models import GeneratedImage, GenerationJob, PromptHistory

log = logging.getLogger(__name__)


def reconciled(job: GenerationJob) -> GenerationJob:
    """services.reconcile, but a page still renders (with the last known state) while Redis is down."""
    try:
        return services.reconcile(job)
    except RedisError:
        log.warning("could not reconcile job %s: Redis unreachable", job.pk, exc_info=True)
        return job


def owned_job(request, pk, with_preview=False) -> GenerationJob:
    jobs = GenerationJob.objects.select_related("model")
    if not with_preview:
        jobs = jobs.defer("preview_png")  # a few kB per poll that only the preview view needs
    return get_object_or_404(jobs, pk=pk, user=request.user)


def visible_image(request, pk, owner_only=False) -> GeneratedImage:
    """The image if the user may see it (GeneratedImage.objects.visible_to), or only if they own it."""
    images = GeneratedImage.objects.select_related("job", "job__model", "owner")
    images = images.filter(owner=request.user) if owner_only else images.visible_to(request.user)
    return get_object_or_404(images, pk=pk)


class GenerateView(LoginRequiredMixin, FormView):
    template_name = "generator/generate.html"
    form_class = GenerateForm

    VARY_STRENGTH = 0.25  # "Vary": the same picture, a little different (A1111 users start around 0.1-0.3)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def get_initial(self):
        initial = super().get_initial()
        query = self.request.GET
        reuse = query.get("reuse") or query.get("remix") or query.get("vary")
        history = query.get("history")
        try:
            if reuse:
                image = visible_image(self.request, reuse)
                initial.update(initial_from_job(image.job, seed=image.seed, num_images=1))
                self.reused = image
                if query.get("remix"):  # image to image from this picture, at its size
                    image = inputs.source_image(self.request.user, reuse)
                    initial.update(init_image_id=str(image.pk), width=image.width, height=image.height,
                                   hires_scale=1.0)
                    self.remixed = image
                elif query.get("vary"):  # same seed, a random second seed mixed in a little
                    initial.update(variation_seed=-1, variation_strength=self.VARY_STRENGTH)
                    self.varied = image
            elif history:
                entry = get_object_or_404(PromptHistory, pk=int(history), user=self.request.user)
                if entry.last_job is not None:
                    initial.update(initial_from_job(entry.last_job))
                initial.update(prompt=entry.prompt, negative_prompt=entry.negative_prompt)
        except (ValueError, ValidationError, Http404, inputs.SourceImageNotFound):  # malformed or foreign id
            pass
        return initial

    def form_valid(self, form):
        try:
            job = services.submit_generation(self.request.user, form.params, form.cleaned_data.get("model") or None,
                                             init_image_source=form.init_image_source)
        except ParamError as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
            return self.form_invalid(form)
        except services.SubmissionRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.form_invalid(form)
        return redirect(job)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["reused"] = getattr(self, "reused", None)
        ctx["remixed"] = getattr(self, "remixed", None) or ctx["form"].init_image_source
        ctx["varied"] = getattr(self, "varied", None)
        ctx["sampler_labels"] = SAMPLER_LABELS  # "Read PNG info" maps A1111's Sampler + Schedule type back
        ctx["has_models"] = bool(ctx["form"].fields["model"].widget.choices)
        ctx["recent_jobs"] = GenerationJob.objects.filter(user=self.request.user).select_related("model")[:5]
        return ctx


class JobListView(LoginRequiredMixin, ListView):
    template_name = "generator/job_list.html"
    paginate_by = 25

    def get_queryset(self):
        return GenerationJob.objects.filter(user=self.request.user).select_related("model")


class JobDetailView(LoginRequiredMixin, DetailView):
    template_name = "generator/job_detail.html"
    context_object_name = "job"

    def get_object(self, queryset=None):
        job = reconciled(owned_job(self.request, self.kwargs["pk"]))
        prefetch_related_objects([job], "images")  # after reconcile, whose refresh would drop it: one read
        return job

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["status"] = status = job_status_payload(self.object)
        ctx["images"] = self.object.images_in_order()
        count, current = status["progress"]["images"], status["progress"]["image"]
        ctx["slots"] = [{"index": k, "drawing": k == current} for k in range(1, count + 1)]
        return ctx


def job_status_payload(job: GenerationJob) -> dict:
    info = progress.progress_info(job)
    images = []
    if job.status == GenerationJob.Status.DONE:
        images = [
            {
                "id": str(img.pk),
                "url": img.get_absolute_url(),
                "file_url": img.get_file_url(),
                "seed": img.seed,
                "width": img.width,
                "height": img.height,
                "pixelated": img.pixelated,
                "clip_score": img.clip_score,
                "clip_error": img.clip_error,
            }
            for img in job.images_in_order()
        ]
    return {
        "id": str(job.pk),
        "status": job.status,
        "is_final": job.is_final,
        **{key: info[key] for key in ("step", "total", "percent")},
        "progress": info,  # image k of N, step s of S, eta_seconds (as the API's `progress`)
        "progress_line": progress.progress_line(job),
        "preview_url": progress.preview_url(job),
        "error": job.error,
        "warnings": job.warnings,
        "queue_position": services.queue_position(job),
        "cancel_requested": job.cancel_requested,
        "images": images,
    }


@login_required
@require_GET
def job_status(request, pk):
    job = reconciled(owned_job(request, pk))
    response = JsonResponse(job_status_payload(job))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def job_preview(request, pk):
    """The latent preview of the image being drawn (owner only; 404 once the job is final or before a preview)."""
    job = owned_job(request, pk, with_preview=True)
    if not progress.has_preview(job) or not job.preview_png:
        raise Http404("No preview: the job is not drawing right now.")
    response = HttpResponse(bytes(job.preview_png), content_type="image/png")
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def job_cancel(request, pk):
    job = owned_job(request, pk)
    if services.cancel(job):
        if job.status == GenerationJob.Status.CANCELLED:
            messages.info(request, "The job was cancelled.")
        else:
            messages.info(request, "Stopping the job after the current step…")
    else:
        messages.info(request, f"The job had already finished ({job.status}).")
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(job_status_payload(job))
    return redirect(job)


class HistoryView(LoginRequiredMixin, ListView):
    template_name = "generator/history.html"
    context_object_name = "entries"
    paginate_by = 50

    def get_queryset(self):
        return PromptHistory.objects.filter(user=self.request.user).select_related("last_job")


@require_GET
def image_file(request, pk):
    """Stream the PNG (with its A1111 `parameters` chunk) to whoever may see it (visible_to: published ones to
    everyone, signed out too; private ones to the owner and staff); a hidden one signed out asks to sign in."""
    image = GeneratedImage.objects.visible_to(request.user).filter(pk=pk).first()
    if image is None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404("No such image.")
    try:
        handle = image.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The image file is missing from storage.") from None
    download = request.GET.get("download") == "1"
    response = FileResponse(
        handle, content_type="image/png", as_attachment=download,
        filename=f"retroportal-{image.seed}-{str(image.pk)[:8]}.png",
    )
    response["Cache-Control"] = "private, max-age=3600" if image.is_public else "private, no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def image_publish(request, pk):
    image = visible_image(request, pk, owner_only=True)
    image.is_public = request.POST.get("public") == "1"
    image.save(update_fields=["is_public"])
    messages.success(request, "Published: everyone can see it on Explore and your profile." if image.is_public
                     else "Unpublished: only you can see it.")
    return redirect(image)


class ImageDeleteView(LoginRequiredMixin, TemplateView):
    """GET asks for confirmation (the image page asks with a JS confirm); POST deletes row and file."""

    template_name = "generator/image_confirm_delete.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["image"] = visible_image(self.request, self.kwargs["pk"], owner_only=True)
        return ctx

    def post(self, request, pk):
        image = visible_image(request, pk, owner_only=True)
        image.delete()  # generator.signals removes the file once the delete is committed
        messages.success(request, "The image was deleted.")
        return redirect(reverse("gallery"))
