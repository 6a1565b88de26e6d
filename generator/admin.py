from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from generator.models import AIModel, GeneratedImage, GenerationJob, PromptHistory


class AIModelForm(forms.ModelForm):
    """Registers models; an upscaler is checked by loading it (spandrel must see a super-resolution model,
    safetensors unless pickles are allowed), which also fills its architecture and scale."""

    class Meta:
        model = AIModel
        exclude = ("upscale_factor",)  # detected on save

    def clean(self):
        data = super().clean()
        if data.get("kind") != AIModel.Kind.UPSCALER:
            return data
        if data.get("is_default"):
            self.add_error("is_default", "an upscaler cannot be the default model; it is offered as hires_upscaler")
        if data.get("parent"):
            self.add_error("parent", "an upscaler has no base model; leave this empty")
        if data.get("source"):
            self._check_upscaler(data)
        return data

    def _check_upscaler(self, data):
        from generator.engine.loading import ModelLoadError
        from generator.engine.upscalers import load_upscaler

        path = Path(data["source"]).expanduser()
        source = str(path.resolve()) if path.exists() else data["source"]
        try:
            upscaler = load_upscaler(source, device="cpu", allow_pickle=settings.RETROPORTAL_ALLOW_PICKLE)
        except ModelLoadError as exc:
            self.add_error("source", str(exc))
            return
        data.update(source=source, architecture=upscaler.architecture)
        self.instance.upscale_factor = upscaler.scale


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    form = AIModelForm
    list_display = ("name", "kind", "architecture", "scale", "is_active", "is_default", "downloadable", "source",
                    "created_at")
    list_filter = ("kind", "architecture", "is_active", "is_default", "downloadable")
    search_fields = ("name", "source", "description")
    readonly_fields = ("scale",)
    actions = ("activate", "deactivate", "make_default")

    @admin.display(description="scale")
    def scale(self, obj):
        return f"×{obj.upscale_factor}" if obj.kind == AIModel.Kind.UPSCALER and obj.upscale_factor else ""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.kind == AIModel.Kind.UPSCALER:
            self.message_user(request, f"Upscaler {obj.name}: {obj.architecture} ×{obj.upscale_factor}, offered as "
                                       "hires_upscaler on the generate form, the API and manage.py generate.",
                              messages.SUCCESS)

    @admin.action(description="Activate (list in the model picker)")
    def activate(self, request, queryset):
        count = queryset.update(is_active=True)
        self.message_user(request, f"{count} model(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate (hide from the model picker)")
    def deactivate(self, request, queryset):
        count = queryset.update(is_active=False, is_default=False)
        self.message_user(request, f"{count} model(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Make default")
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to make it the default.", messages.ERROR)
            return
        model = queryset.get()
        if model.kind == AIModel.Kind.UPSCALER:
            self.message_user(request, f"{model.name} is an upscaler; pick a model that draws.", messages.ERROR)
            return
        with transaction.atomic():
            AIModel.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
            AIModel.objects.filter(pk=model.pk).update(is_default=True, is_active=True)
        self.message_user(request, f"{model.name} is now the default model.", messages.SUCCESS)


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    can_delete = False
    fields = ("thumbnail", "index", "seed", "clip_score", "clip_error", "is_public")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="image")
    def thumbnail(self, obj):
        return _thumbnail(obj, 64)


def _thumbnail(image, size):
    # Through the permission-checked file view: media are never served by a URL prefix.
    return format_html('<img src="{}" width="{}" height="{}" style="object-fit:cover" alt="">',
                       image.get_file_url(), size, size)


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "model", "short_prompt", "status", "progress", "created_at", "worker_name")
    list_filter = ("status", "model", "cancel_requested")
    search_fields = ("prompt", "user__username", "id", "rq_job_id")
    date_hierarchy = "created_at"
    list_select_related = ("user", "model")
    inlines = (GeneratedImageInline,)
    readonly_fields = (
        "id", "user", "model", "prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height",
        "num_images", "scheduler", "status", "progress", "progress_step", "progress_total", "error", "warnings",
        "cancel_requested", "rq_job_id", "worker_name", "created_at", "started_at", "finished_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # jobs are submitted through the site, the API or `manage.py generate`

    @admin.display(description="prompt")
    def short_prompt(self, obj):
        return obj.prompt[:60]

    @admin.display(description="progress")
    def progress(self, obj):
        total = obj.progress_total or obj.steps
        return f"{obj.progress_step}/{total}"


@admin.register(GeneratedImage)
class GeneratedImageAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "id", "owner", "prompt", "seed", "clip_score", "is_public", "created_at")
    list_filter = ("is_public", "job__model")
    search_fields = ("job__prompt", "owner__username", "id")
    list_select_related = ("owner", "job")
    readonly_fields = ("preview", "id", "job", "owner", "file", "index", "seed", "width", "height", "parameters",
                       "clip_score", "clip_model", "clip_error", "created_at")
    fields = readonly_fields + ("is_public",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="image")
    def thumbnail(self, obj):
        return _thumbnail(obj, 64)

    @admin.display(description="preview")
    def preview(self, obj):
        return _thumbnail(obj, 256)

    @admin.display(description="prompt")
    def prompt(self, obj):
        return obj.job.prompt[:60]


@admin.register(PromptHistory)
class PromptHistoryAdmin(admin.ModelAdmin):
    list_display = ("short_prompt", "user", "times_used", "last_used_at")
    search_fields = ("prompt", "negative_prompt", "user__username")
    list_select_related = ("user",)
    raw_id_fields = ("last_job",)

    @admin.display(description="prompt")
    def short_prompt(self, obj):
        return obj.prompt[:80]
