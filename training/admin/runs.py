"""Training runs in the Django admin: settings form, live progress (status JSON polled by the change page),
the run's actions (its state table, docs/jobs.md), its files, evaluation report and comparison pages."""
from django.contrib import admin, messages
from django.forms import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from training import run_evaluations, runs
from training.admin.files import SERVED_SUFFIXES, serve_file
from training.forms import CONFIG_FIELDSETS
from training.models import TrainingRun

RUN_SERVED_SUFFIXES = {**SERVED_SUFFIXES, ".csv": "text/csv; charset=utf-8", ".log": "text/plain; charset=utf-8",
                       ".md": "text/plain; charset=utf-8", ".toml": "text/plain; charset=utf-8"}
RUN_ACTIONS = ("start", "cancel", "resume", "delete_outputs", "activate")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "progress", "eta", "dataset", "base_model", "method", "result", "evaluation",
                    "updated_at"]
    list_filter = ["status", "method"]
    search_fields = ["name"]
    actions = ["start_runs", "cancel_runs", "resume_runs", "delete_outputs", "activate_results", "evaluate_checkpoints",
               "compare_runs"]
    readonly_fields = ["live", "result_model", "error", "out_dir", "created_at", "updated_at", "started_at",
                       "finished_at", "evaluations_summary"]
    fieldsets = [
        (None, {"fields": ["name", "dataset", "base_model", "method", "preset", *CONFIG_FIELDSETS["Run"]]}),
        ("Progress", {"fields": ["live"]}),
        *((title, {"fields": list(names)}) for title, names in CONFIG_FIELDSETS.items() if title != "Run"),
        ("Extra settings", {"fields": ["extra_settings"]}),
        ("Evaluation", {"fields": ["evaluations_summary"]}),
        ("Record", {"classes": ["collapse"], "fields": ["result_model", "error", "out_dir", "created_at",
                                                        "updated_at", "started_at", "finished_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["name"] if obj else [])

    def get_form(self, request, obj=None, **kwargs):
        from training.run_form import TrainingRunForm  # imports DreamBooth (torch): only when a run form is shown

        return super().get_form(request, obj, form=TrainingRunForm, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing to show before the run exists
            return [fs for fs in self.fieldsets if fs[0] not in ("Progress", "Record", "Evaluation")]
        return self.fieldsets

    @admin.display(description="progress")
    def progress(self, run: TrainingRun) -> str:
        return f"{run.step}/{run.max_steps} ({run.progress_percent}%)" if run.max_steps else "—"

    @admin.display(description="ETA")
    def eta(self, run: TrainingRun) -> str:
        return run.eta_text()

    @admin.display(description="model")
    def result(self, run: TrainingRun) -> str:
        if run.result_model is None:
            return "—"
        return f"{run.result_model.name} ({'active' if run.result_model.is_active else 'inactive'})"

    @admin.display(description="live status")
    def live(self, run: TrainingRun):
        if run.pk is None:
            return "—"
        return render_to_string("training/run_live.html", {
            "run": run, "status_url": reverse("admin:training_trainingrun_status", args=[run.pk]),
            "buttons": [(a, label, reverse("admin:training_trainingrun_do", args=[run.pk, a])) for a, label in (
                ("start", "Start"), ("cancel", "Cancel"), ("resume", "Resume"), ("activate", "Activate result"),
                ("delete_outputs", "Delete outputs"))],
            "data": _status_data(run),
        })

    # -- actions -------------------------------------------------------------------------------------------
    def _each(self, request, queryset, verb: str, fn) -> None:
        for run in queryset:
            try:
                result = fn(run)
            except runs.RunRefused as exc:
                self.message_user(request, str(exc), messages.WARNING)
            except ValidationError as exc:
                self.message_user(request, f"{run.name}: {'; '.join(exc.messages)}", messages.ERROR)
            else:
                if result is False:
                    self.message_user(request, f"{run.name} is {run.status}: nothing to {verb}.", messages.WARNING)
                else:
                    self.message_user(request, f"{run.name}: {verb} — now {run.status}.")

    @admin.action(description="Start selected runs (queue them on the 'training' queue)")
    def start_runs(self, request, queryset):
        self._each(request, queryset, "start", runs.start)

    @admin.action(description="Cancel selected runs (a running one saves a checkpoint and stops)")
    def cancel_runs(self, request, queryset):
        self._each(request, queryset, "cancel", runs.cancel)

    @admin.action(description="Resume selected runs from their last checkpoint")
    def resume_runs(self, request, queryset):
        self._each(request, queryset, "resume", runs.resume)

    @admin.action(description="Delete the output files of selected runs (back to draft)")
    def delete_outputs(self, request, queryset):
        self._each(request, queryset, "delete outputs", runs.delete_outputs)

    @admin.action(description="Activate the registered model of selected runs (users can pick it)")
    def activate_results(self, request, queryset):
        self._each(request, queryset, "activate result", runs.activate_result)

    @admin.action(description="Evaluate selected runs (all checkpoints; jobs on the 'generation' queue)")
    def evaluate_checkpoints(self, request, queryset):
        for run in queryset.select_related("base_model", "dataset"):
            try:
                queued = run_evaluations.evaluate_run(run, "all")
            except run_evaluations.EvaluationRefused as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                checkpoints = sum(1 for e in queued if e.training_run_id)
                self.message_user(request, f"{run.name}: {checkpoints} checkpoint evaluation(s) queued"
                                           + (" and the base model's" if len(queued) > checkpoints else "")
                                           + ("" if queued else " (every checkpoint is already evaluated)") + ".")

    @admin.action(description="Compare selected runs (evaluation report)")
    def compare_runs(self, request, queryset):
        names = ",".join(queryset.order_by("name").values_list("name", flat=True))
        return redirect(reverse("admin:training_trainingrun_compare") + f"?runs={names}")

    @admin.display(description="evaluations")
    def evaluations_summary(self, run: TrainingRun):
        for pending in run.evaluations.filter(status__in=run_evaluations.PENDING):
            run_evaluations.reconcile(pending)
        return render_to_string("training/admin/run_evaluations.html", {
            "run": run, "evaluations": run.evaluations.order_by("step", "created_at")})

    @admin.display(description="evaluation")
    def evaluation(self, run: TrainingRun) -> str:
        count = run.evaluations.count()
        if not count:
            return "—"
        label = f"{run.recommended_checkpoint or 'report'} ({count})"
        return format_html('<a href="{}">{}</a>', reverse("admin:training_trainingrun_report", args=[run.pk]), label)

    ACTIONS = {"start": start_runs, "cancel": cancel_runs, "resume": resume_runs, "delete_outputs": delete_outputs,
               "activate": activate_results}

    # -- views ---------------------------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            runs.reconcile(run)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        obj.remove_folder()

    def delete_queryset(self, request, queryset):
        doomed = list(queryset)
        super().delete_queryset(request, queryset)
        for run in doomed:
            run.remove_folder()

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/status.json", wrap(self.status_view), name="training_trainingrun_status"),
            path("<int:pk>/do/<str:action>/", wrap(self.do_view), name="training_trainingrun_do"),
            path("<int:pk>/file/<path:rel>", wrap(self.run_file_view), name="training_trainingrun_file"),
            path("<int:pk>/report/", wrap(self.report_view), name="training_trainingrun_report"),
            path("compare/", wrap(self.compare_view), name="training_trainingrun_compare"),
        ] + super().get_urls()

    def report_view(self, request, pk: int):
        """The run's evaluation report (staff); ?download=1 gives the same page as one self-contained file."""
        run = self._run_or_404(request, pk)
        download = request.GET.get("download") == "1"
        top = "" if download else _report_nav(request, f"{run.name}-report.html")
        return _html_response(run_evaluations.run_report_html(run, extra_top=top), f"{run.name}-report.html" if download else None)

    def compare_view(self, request):
        """?runs=a,b,c: the runs side by side, each by its recommended checkpoint; ?download=1 as a file."""
        names = [n.strip() for n in request.GET.get("runs", "").split(",") if n.strip()]
        found = {r.name: r for r in TrainingRun.objects.filter(name__in=names).select_related("base_model", "dataset")}
        missing = [n for n in names if n not in found]
        if not names or missing or not all(self.has_view_permission(request, r) for r in found.values()):
            raise Http404(f"no such training run(s): {', '.join(missing) or '(none given)'}")
        download = request.GET.get("download") == "1"
        top = "" if download else _report_nav(request, "comparison.html")
        page = run_evaluations.comparison_html([found[n] for n in names], extra_top=top)
        return _html_response(page, "comparison.html" if download else None)

    def _run_or_404(self, request, pk, change=False) -> TrainingRun:
        run = TrainingRun.objects.select_related("result_model", "dataset", "base_model").filter(pk=pk).first()
        allowed = run is not None and (self.has_change_permission(request, run) if change
                                       else self.has_view_permission(request, run))
        if not allowed:
            raise Http404("no such training run")
        return run

    def status_view(self, request, pk: int):
        """JSON for the change page's poll: status, step k/N, ETA, losses, files, log tail."""
        run = runs.reconcile(self._run_or_404(request, pk))
        response = JsonResponse(_status_data(run))
        response["Cache-Control"] = "no-store"
        return response

    def do_view(self, request, pk: int, action: str):
        """The change page's buttons: run one admin action on this run (POST only)."""
        run = self._run_or_404(request, pk, change=True)
        if request.method != "POST" or action not in self.ACTIONS:
            raise Http404("no such action")
        self.ACTIONS[action](self, request, TrainingRun.objects.filter(pk=run.pk))
        return redirect(reverse("admin:training_trainingrun_change", args=[run.pk]))

    def run_file_view(self, request, pk: int, rel: str):
        """A file of the run's folder (loss.png, validation grids, metrics.csv, train.log, README.md)."""
        return serve_file(self._run_or_404(request, pk).out_path, rel, RUN_SERVED_SUFFIXES, "private, no-cache")


def _status_data(run: TrainingRun) -> dict:
    def url(rel: str) -> str:
        return reverse("admin:training_trainingrun_file", args=[run.pk, rel])

    out = run.out_path
    version = int(run.updated_at.timestamp()) if run.updated_at else 0
    grids = sorted((out / "validation").glob("step-*.png")) if (out / "validation").is_dir() else []
    return {
        "id": run.pk, "name": run.name, "status": run.status, "step": run.step, "max_steps": run.max_steps,
        "percent": run.progress_percent, "eta": run.eta_text(), "eta_seconds": run.eta_seconds,
        "losses": {k: v for k, v in (run.last_losses or {}).items()}, "error": run.error,
        "cancel_requested": run.cancel_requested, "loss_points": run.loss_points(),
        "loss_png": url("loss.png") + f"?v={version}" if (out / "loss.png").is_file() else "",
        "grids": [{"name": g.stem, "label": "step " + (g.stem.removeprefix("step-").lstrip("0") or "0"), "url": url(f"validation/{g.name}")}
                  for g in grids[-6:]],
        "log_tail": run.log_tail(),
        "result_model": ({"name": run.result_model.name, "is_active": run.result_model.is_active}
                         if run.result_model_id and run.result_model else None),
        "actions": {action: run.allows(action) for action in RUN_ACTIONS},
    }


def _report_nav(request, filename: str) -> str:
    query = request.GET.copy()
    query["download"] = "1"
    return render_to_string("training/admin/report_nav.html", {"download_query": query.urlencode(), "filename": filename})


def _html_response(page: str, attachment: str | None):
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-cache"
    if attachment:
        response["Content-Disposition"] = f'attachment; filename="{attachment}"'
    return response
