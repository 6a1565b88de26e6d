"""Prompt suites and evaluations in the Django admin (read-only results; evaluations are queued from runs)."""
from django.contrib import admin
from django.forms import ValidationError

from training import run_evaluations
from training.models import Evaluation, EvaluationImage, PromptSuite


@admin.register(PromptSuite)
class PromptSuiteAdmin(admin.ModelAdmin):
    list_display = ["name", "prompts", "updated_at"]
    search_fields = ["name"]

    @admin.display(description="prompts")
    def prompts(self, suite: PromptSuite) -> str:
        try:
            parsed = suite.parse()
        except ValidationError:
            return "invalid"
        return f"{len(parsed.concepts)} concepts × {len(parsed.languages)} languages"


class EvaluationImageInline(admin.TabularInline):
    model = EvaluationImage
    extra = 0
    can_delete = False
    fields = ["prompt_id", "language", "seed", "clip_t", "max_train_sim", "near_copy", "file"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "progress", "clip_t", "clip_i", "near_copy_rate", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "training_run__name"]
    inlines = [EvaluationImageInline]
    readonly_fields = ["training_run", "model", "name", "checkpoint", "step", "lora_path", "suite", "settings", "status",
                       "progress_done", "progress_total", "error", "overall", "by_prompt", "by_language", "by_split",
                       "warnings", "out_dir", "report_file", "rq_job_id", "worker_name", "created_at", "started_at",
                       "finished_at"]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        run_evaluations.reconcile_pending()  # a dead worker's evaluation shows as failed, with the reason
        return super().changelist_view(request, extra_context)

    @admin.display(description="progress")
    def progress(self, ev: Evaluation) -> str:
        return f"{ev.progress_done}/{ev.progress_total} ({ev.progress_percent}%)" if ev.progress_total else "—"

    def _metric(self, ev: Evaluation, key: str) -> str:
        value = (ev.overall or {}).get(key)
        return "—" if value is None else (f"{value:.1%}" if key == "near_copy_rate" else f"{value:.4f}")

    @admin.display(description="CLIP-T")
    def clip_t(self, ev):
        return self._metric(ev, "clip_t")

    @admin.display(description="CLIP-I")
    def clip_i(self, ev):
        return self._metric(ev, "clip_i")

    @admin.display(description="near copies")
    def near_copy_rate(self, ev):
        return self._metric(ev, "near_copy_rate")
