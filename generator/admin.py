from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from generator.models import AIModel, GeneratedImage, GenerationJob, PromptHistory


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "architecture", "is_active", "is_default", "downloadable", "source", "created_at")
    list_filter = ("kind", "architecture", "is_active", "is_default", "downloadable")
    search_fields = ("name", "source", "description")
    actions = ("activate", "deactivate", "make_default")

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
