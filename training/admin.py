"""Datasets in the Django admin: upload pictures or zips, watch the preparation, read its summary.

Prepared files are served by a staff-only view inside this admin (media has no public URL).
"""
from django import forms
from django.contrib import admin, messages
from django.http import FileResponse, Http404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from training import services
from training.models import Dataset, DatasetImage, Evaluation, EvaluationImage, PromptSuite, Sweep

SERVED_SUFFIXES = {".png": "image/png", ".json": "application/json", ".txt": "text/plain; charset=utf-8"}


class MultipleFileInput(forms.ClearableFileInput):
    """A file input that lets the browser pick several files (Django docs, 'Uploading multiple files')."""

    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class DatasetAdminForm(forms.ModelForm):
    upload = MultipleFileField(
        required=False,
        help_text="Pictures (png, jpg, webp, bmp, gif, tiff) with optional same-name .txt captions, or .zip archives.",
    )
    prepare_now = forms.BooleanField(
        required=False, initial=True, help_text="Prepare (again) after saving: needed after uploads or setting changes."
    )

    class Meta:
        model = Dataset
        fields = ["name", "instance_prompt", "class_prompt", "resolution", "mode", "min_size"]

    def clean_upload(self):
        files = self.cleaned_data.get("upload") or []
        if not files and self.instance.pk is None:
            raise forms.ValidationError("Upload at least one picture or a zip archive.")
        try:
            services.check_uploads(files)
        except services.UploadRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return files


class DatasetImageInline(admin.TabularInline):
    model = DatasetImage
    extra = 0
    can_delete = False
    fields = ["thumbnail", "output_name", "source_name", "caption", "width", "height", "bucket"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="picture")
    def thumbnail(self, image: DatasetImage):
        url = reverse("admin:training_dataset_file", args=[image.dataset_id, image.output_name])
        return format_html('<img src="{}" alt="{}" style="max-width:96px;max-height:96px">', url, image.output_name)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetAdminForm
    inlines = [DatasetImageInline]
    list_display = ["name", "status", "progress", "kept_count", "duplicate_count", "rejected_count",
                    "skipped_count", "resolution", "mode", "updated_at"]
    list_filter = ["status", "mode"]
    search_fields = ["name", "instance_prompt"]
    readonly_fields = ["summary", "progress", "created_at", "updated_at", "prepared_at"]
    actions = ["prepare_again"]
    fieldsets = [
        (None, {"fields": ["name", "instance_prompt", "class_prompt", "upload", "prepare_now"]}),
        ("Preparation", {"fields": ["resolution", "mode", "min_size"]}),
        ("Result", {"fields": ["summary", "progress", "created_at", "updated_at", "prepared_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["name"] if obj else [])  # the name is the folder: fixed once created

    @admin.display(description="progress")
    def progress(self, dataset: Dataset) -> str:
        return f"{dataset.progress_done}/{dataset.progress_total}" if dataset.progress_total else "—"

    @admin.display(description="summary")
    def summary(self, dataset: Dataset):
        if dataset.pk is None:
            return "Saved datasets are prepared on the 'training' queue; the result appears here."
        records = (dataset.manifest or {}).get("records", [])
        ready = dataset.status == Dataset.Status.DONE and dataset.contact_sheet_path.is_file()
        return render_to_string("training/dataset_summary.html", {
            "dataset": dataset,
            "counts": list(dataset.counts().items()),
            "left_out": [r for r in records if r["status"] in ("rejected", "skipped", "duplicate")],
            "contact_sheet_url": self._file_url(dataset, "contact_sheet.png") if ready else "",
            "manifest_url": self._file_url(dataset, "manifest.json") if ready else "",
        })

    def _file_url(self, dataset: Dataset, rel: str) -> str:
        version = int(dataset.prepared_at.timestamp()) if dataset.prepared_at else 0
        return reverse("admin:training_dataset_file", args=[dataset.pk, rel]) + f"?v={version}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        dataset = self.get_object(request, object_id)
        if dataset is not None:
            services.reconcile(dataset)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        files = form.cleaned_data.get("upload") or []
        try:
            stored = services.add_uploads(obj, files)
        except services.UploadRefused as exc:
            Dataset.objects.filter(pk=obj.pk).update(status=Dataset.Status.FAILED, error=str(exc))
            self.message_user(request, f"Upload refused: {exc}", messages.ERROR)
            return
        if stored:
            self.message_user(request, f"{len(stored)} files stored in the originals of {obj.name}.")
        if form.cleaned_data.get("prepare_now") or stored:
            self._enqueue(request, obj)

    def _enqueue(self, request, dataset: Dataset) -> None:
        if services.enqueue_preparation(dataset):
            self.message_user(request, f"{dataset.name}: preparation queued on the 'training' queue.")
        else:
            self.message_user(request, f"{dataset.name} is already being prepared.", messages.WARNING)

    @admin.action(description="Prepare selected datasets again")
    def prepare_again(self, request, queryset):
        for dataset in queryset:
            self._enqueue(request, dataset)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        obj.remove_folder()

    def delete_queryset(self, request, queryset):
        datasets = list(queryset)
        super().delete_queryset(request, queryset)
        for dataset in datasets:
            dataset.remove_folder()

    def get_urls(self):
        file_view = self.admin_site.admin_view(self.file_view)
        return [
            path("<int:pk>/file/<path:rel>", file_view, name="training_dataset_file"),
        ] + super().get_urls()

    def file_view(self, request, pk: int, rel: str):
        """A prepared file (contact sheet, manifest, picture, caption) for staff allowed to view datasets."""
        dataset = Dataset.objects.filter(pk=pk).first()
        if dataset is None or not self.has_view_permission(request, dataset):
            raise Http404("no such dataset")
        prepared = dataset.prepared_dir.resolve()
        target = (prepared / rel).resolve()
        if not target.is_relative_to(prepared) or not target.is_file() or target.suffix.lower() not in SERVED_SUFFIXES:
            raise Http404("no such file")
        response = FileResponse(open(target, "rb"), content_type=SERVED_SUFFIXES[target.suffix.lower()])
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=60"
        return response


# ---------------------------------------------------------------------------------------------------------
# DreamBooth training runs

import csv  # noqa: E402
import tomllib  # noqa: E402

from django.http import JsonResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402

from generator.models import AIModel  # noqa: E402
from training import runs  # noqa: E402
from training.models import TrainingRun, config_error_field  # noqa: E402

RUN_SERVED_SUFFIXES = {**SERVED_SUFFIXES, ".csv": "text/csv; charset=utf-8", ".log": "text/plain; charset=utf-8",
                       ".md": "text/plain; charset=utf-8", ".toml": "text/plain; charset=utf-8"}
LOG_TAIL_LINES = 40
PLOT_POINTS = 400


def _defaults() -> dict:
    import dataclasses

    from training.dreambooth.config import FIELDS

    return {n: f.default for n, f in FIELDS.items()
            if f.default is not dataclasses.MISSING}


class TrainingRunForm(forms.ModelForm):
    """The common TrainConfig settings as fields, the rest as TOML; TrainConfig's messages land on the field."""

    instance_prompt = forms.CharField(required=False, max_length=300,
                                      help_text="Blank: the dataset's instance prompt.")
    rank = forms.IntegerField(required=False, help_text="LoRA rank (ignored for a full fine-tune).")
    resolution = forms.IntegerField(required=False, help_text="Training side in pixels (multiple of 8).")
    max_steps = forms.IntegerField(required=False)
    learning_rate = forms.FloatField(required=False)
    batch_size = forms.IntegerField(required=False)
    gradient_accumulation_steps = forms.IntegerField(required=False)
    checkpoint_steps = forms.IntegerField(required=False, help_text="0: only when cancelled and at the end.")
    validation_steps = forms.IntegerField(required=False, help_text="0: only the final validation grid.")
    seed = forms.IntegerField(required=False)
    train_text_encoder = forms.BooleanField(
        required=False, help_text="LoRA (or full fine-tune) of the text encoder too.")
    with_prior_preservation = forms.BooleanField(required=False)
    class_prompt = forms.CharField(required=False, max_length=300, help_text="Blank: the dataset's class prompt.")
    num_class_images = forms.IntegerField(required=False)
    prior_loss_weight = forms.FloatField(required=False)
    l2sp_weight = forms.FloatField(required=False, help_text="Pull toward the pretrained weights (L2-SP).")
    l2_weight = forms.FloatField(required=False, help_text="Plain L2 toward zero (for comparison).")
    extra_settings = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "style": "font-family: monospace"}),
        label="Extra settings (TOML)",
        help_text="Any other TrainConfig setting, e.g. <code>lr_scheduler = \"cosine\"</code>, "
                  "<code>validation_prompts = [\"sks girl, red hat\"]</code>, <code>mixed_precision = \"bf16\"</code>.",
    )

    CONFIG_FIELDS = ("instance_prompt", "rank", "resolution", "max_steps", "learning_rate", "batch_size",
                     "gradient_accumulation_steps", "checkpoint_steps", "validation_steps", "seed",
                     "train_text_encoder", "with_prior_preservation", "class_prompt", "num_class_images",
                     "prior_loss_weight", "l2sp_weight", "l2_weight")

    class Meta:
        model = TrainingRun
        fields = ["name", "dataset", "base_model", "method"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "dataset" in self.fields:
            self.fields["dataset"].queryset = Dataset.objects.filter(status=Dataset.Status.DONE)
            self.fields["dataset"].help_text = "A prepared (ready) dataset."
        if "base_model" in self.fields:
            self.fields["base_model"].queryset = AIModel.objects.exclude(kind=AIModel.Kind.LORA)
            self.fields["base_model"].help_text = "A local diffusers folder (SD 1.x / 2.x)."
        defaults, config = _defaults(), dict(self.instance.config or {})
        for name in self.CONFIG_FIELDS:
            value = config.pop(name, defaults.get(name))
            self.fields[name].initial = value if value != "" or name not in ("instance_prompt", "class_prompt") else ""
        if config:
            import tomli_w

            self.fields["extra_settings"].initial = tomli_w.dumps(config)
        if self.instance.pk and self.instance.is_active:
            for field in self.fields.values():
                field.disabled = True

    def clean(self):
        cleaned = super().clean()
        config = {}
        for name in self.CONFIG_FIELDS:
            value = cleaned.get(name)
            if name in self.errors or value is None or value == "":
                continue
            config[name] = value
        if config.get("with_prior_preservation") and not config.get("class_prompt") and cleaned.get("dataset"):
            if cleaned["dataset"].class_prompt:
                config["class_prompt"] = cleaned["dataset"].class_prompt
        extra = self._extra(cleaned.get("extra_settings") or "")
        if extra is None:
            return cleaned
        for key in extra:
            if key in self.CONFIG_FIELDS or key == "method":
                self.add_error("extra_settings", f"{key}: set it with its own field above, not here")
                return cleaned
        config.update(extra)
        if self.errors or not cleaned.get("dataset") or not cleaned.get("base_model"):
            return cleaned
        self.instance.config = config
        self.instance.method = cleaned.get("method") or self.instance.method
        self.instance.dataset, self.instance.base_model = cleaned["dataset"], cleaned["base_model"]
        self.instance._config_validated = True
        try:
            self.instance.validate_config()
        except forms.ValidationError as exc:
            message = exc.message_dict["config"][0]
            field = config_error_field(message)
            if field in self.CONFIG_FIELDS or field in ("method", "dataset", "base_model"):
                self.add_error(field, message)
            elif field in extra or field == "config":
                self.add_error("extra_settings", message)
            else:
                self.add_error(None, message)
        return cleaned

    def _extra(self, text: str) -> dict | None:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.add_error("extra_settings", f"not valid TOML: {exc}")
            return None


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    form = TrainingRunForm
    list_display = ["name", "status", "progress", "eta", "dataset", "base_model", "method", "result", "evaluation",
                    "updated_at"]
    list_filter = ["status", "method"]
    search_fields = ["name"]
    actions = ["start_runs", "cancel_runs", "resume_runs", "delete_outputs", "activate_results", "evaluate_checkpoints",
               "compare_runs"]
    readonly_fields = ["live", "result_model", "error", "out_dir", "created_at", "updated_at", "started_at",
                       "finished_at", "evaluations_summary"]
    fieldsets = [
        (None, {"fields": ["name", "dataset", "base_model", "method", "instance_prompt"]}),
        ("Progress", {"fields": ["live"]}),
        ("Training", {"fields": ["rank", "resolution", "max_steps", "learning_rate", "batch_size",
                                 "gradient_accumulation_steps", "checkpoint_steps", "validation_steps", "seed",
                                 "train_text_encoder"]}),
        ("Prior preservation and regularization", {"fields": ["with_prior_preservation", "class_prompt",
                                                              "num_class_images", "prior_loss_weight",
                                                              "l2sp_weight", "l2_weight"]}),
        ("Extra settings", {"fields": ["extra_settings"]}),
        ("Evaluation", {"fields": ["evaluations_summary"]}),
        ("Record", {"classes": ["collapse"], "fields": ["result_model", "error", "out_dir", "created_at",
                                                        "updated_at", "started_at", "finished_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["name"] if obj else [])

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing to show before the run exists
            return [fs for fs in self.fieldsets if fs[0] not in ("Progress", "Record", "Evaluation")]
        return self.fieldsets

    @admin.display(description="progress")
    def progress(self, run: TrainingRun) -> str:
        return f"{run.step}/{run.max_steps} ({run.progress_percent}%)" if run.max_steps else "—"

    @admin.display(description="ETA")
    def eta(self, run: TrainingRun) -> str:
        return _eta_text(run)

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
            except forms.ValidationError as exc:
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
        from training import evaluations

        for run in queryset.select_related("base_model", "dataset"):
            try:
                queued = evaluations.evaluate_run(run, "all")
            except evaluations.EvaluationRefused as exc:
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
        from django.utils.html import format_html_join

        from training import evaluations

        for pending in run.evaluations.filter(status__in=evaluations.PENDING):
            evaluations.reconcile(pending)
        rows = [(reverse("admin:training_evaluation_change", args=[e.pk]), e.checkpoint or e.name, e.status,
                 f"{e.progress_done}/{e.progress_total}" if e.progress_total else "—",
                 f"{e.overall['clip_t']:.4f}" if e.overall and e.overall.get("clip_t") is not None else "—", e.error)
                for e in run.evaluations.order_by("step", "created_at")]
        if not rows:
            return "None yet: use the action 'Evaluate selected runs' (or manage.py evaluate --run NAME)."
        verdict = (format_html("<p><b>Recommended: {}</b> — {}</p>", run.recommended_checkpoint or "none",
                               run.recommendation_reason) if run.recommendation_reason else "")
        return format_html(
            '{}<table><tr><th>checkpoint</th><th>status</th><th>progress</th><th>CLIP-T</th><th>error</th></tr>{}</table>'
            '<p><a href="{}">evaluation report</a></p>', verdict,
            format_html_join("", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', rows),
            reverse("admin:training_trainingrun_report", args=[run.pk]))

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
        from training import evaluations

        run = self._run_or_404(request, pk)
        download = request.GET.get("download") == "1"
        top = "" if download else _report_nav(request, f"{run.name}-report.html")
        return _html_response(evaluations.run_report_html(run, extra_top=top), f"{run.name}-report.html" if download else None)

    def compare_view(self, request):
        """?runs=a,b,c: the runs side by side, each by its recommended checkpoint; ?download=1 as a file."""
        from training import evaluations

        names = [n.strip() for n in request.GET.get("runs", "").split(",") if n.strip()]
        found = {r.name: r for r in TrainingRun.objects.filter(name__in=names).select_related("base_model", "dataset")}
        missing = [n for n in names if n not in found]
        if not names or missing or not all(self.has_view_permission(request, r) for r in found.values()):
            raise Http404(f"no such training run(s): {', '.join(missing) or '(none given)'}")
        download = request.GET.get("download") == "1"
        top = "" if download else _report_nav(request, "comparison.html")
        page = evaluations.comparison_html([found[n] for n in names], extra_top=top)
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
        run = self._run_or_404(request, pk)
        out = run.out_path.resolve()
        target = (out / rel).resolve()
        suffix = target.suffix.lower()
        if not target.is_relative_to(out) or not target.is_file() or suffix not in RUN_SERVED_SUFFIXES:
            raise Http404("no such file")
        response = FileResponse(open(target, "rb"), content_type=RUN_SERVED_SUFFIXES[suffix])
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-cache"
        return response


def _eta_text(run: TrainingRun) -> str:
    if run.status != TrainingRun.Status.RUNNING or run.eta_seconds is None:
        return "—"
    seconds = int(round(run.eta_seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s")


def _losses(run: TrainingRun) -> list[list[float]]:
    """[[step, loss], ...] from metrics.csv, thinned to at most PLOT_POINTS points (the last one kept)."""
    path = run.out_path / "metrics.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [[int(r["step"]), float(r["loss"])] for r in csv.DictReader(fh) if r.get("step") and r.get("loss")]
    except (OSError, ValueError, KeyError):
        return []
    if len(rows) > PLOT_POINTS:
        stride = -(-len(rows) // PLOT_POINTS)
        rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return rows


def _log_tail(run: TrainingRun) -> str:
    try:
        with open(run.log_path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


def _status_data(run: TrainingRun) -> dict:
    def url(rel: str) -> str:
        return reverse("admin:training_trainingrun_file", args=[run.pk, rel])

    out = run.out_path
    version = int(run.updated_at.timestamp()) if run.updated_at else 0
    grids = sorted((out / "validation").glob("step-*.png")) if (out / "validation").is_dir() else []
    return {
        "id": run.pk, "name": run.name, "status": run.status, "step": run.step, "max_steps": run.max_steps,
        "percent": run.progress_percent, "eta": _eta_text(run), "eta_seconds": run.eta_seconds,
        "losses": {k: v for k, v in (run.last_losses or {}).items()}, "error": run.error,
        "cancel_requested": run.cancel_requested, "loss_points": _losses(run),
        "loss_png": url("loss.png") + f"?v={version}" if (out / "loss.png").is_file() else "",
        "grids": [{"name": g.stem, "url": url(f"validation/{g.name}")} for g in grids[-6:]],
        "log_tail": _log_tail(run),
        "result_model": ({"name": run.result_model.name, "is_active": run.result_model.is_active}
                         if run.result_model_id and run.result_model else None),
        "actions": {action: run.allows(action) for action in ("start", "cancel", "resume", "delete_outputs", "activate")},
    }


def _report_nav(request, filename: str) -> str:
    from django.utils.html import escape

    query = request.GET.copy()
    query["download"] = "1"
    return (f'<p class=note><a href="{escape(reverse("admin:training_trainingrun_changelist"))}">training runs</a> · '
            f'<a href="?{escape(query.urlencode())}">download {escape(filename)}</a> (one self-contained file)</p>')


def _html_response(page: str, attachment: str | None):
    from django.http import HttpResponse

    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-cache"
    if attachment:
        response["Content-Disposition"] = f'attachment; filename="{attachment}"'
    return response


# ---------------------------------------------------------------------------------------------------------
# Evaluations and prompt suites


@admin.register(PromptSuite)
class PromptSuiteAdmin(admin.ModelAdmin):
    list_display = ["name", "prompts", "updated_at"]
    search_fields = ["name"]

    @admin.display(description="prompts")
    def prompts(self, suite: PromptSuite) -> str:
        try:
            parsed = suite.parse()
        except forms.ValidationError:
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
        from training import evaluations

        evaluations.reconcile_pending()  # a dead worker's evaluation shows as failed, with the reason
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


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    """Paste a sweep TOML (as for `manage.py sweep`); the 'continue' action starts, resumes or skips its runs
    and evaluates the finished ones. Run it again as runs finish; the overview links to the comparison."""

    list_display = ["name", "state", "updated_at"]
    actions = ["continue_sweeps"]
    readonly_fields = ["overview"]

    def get_fields(self, request, obj=None):
        return ["name", "spec"] + (["overview"] if obj else [])

    def _runs(self, sweep: Sweep):
        parsed = sweep.parse()
        found = {r.name: r for r in TrainingRun.objects.filter(name__in=[s.name for s in parsed.runs])}
        return parsed, [(spec, found.get(spec.name)) for spec in parsed.runs]

    @admin.display(description="runs")
    def state(self, sweep: Sweep) -> str:
        try:
            _, pairs = self._runs(sweep)
        except forms.ValidationError as exc:
            return "; ".join(exc.messages)
        counts = {}
        for _, run in pairs:
            status = run.status if run else "not started"
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))

    @admin.display(description="overview")
    def overview(self, sweep: Sweep):
        from django.utils.html import format_html_join

        from training import evaluations

        parsed, pairs = self._runs(sweep)
        rows = []
        for spec, run in pairs:
            chosen = evaluations.chosen_evaluation(run) if run else None
            m = (chosen.overall or {}) if chosen else {}
            rows.append((spec.name, " ".join(f"{k}={v}" for k, v in spec.values.items()), run.status if run else "—",
                         run.recommended_checkpoint if run else "",
                         *(f"{m[k]:.4f}" if m.get(k) is not None else "—" for k in ("clip_t", "clip_i", "near_copy_rate"))))
        names = ",".join(name for name, *_ in rows)
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html(
            '<table><tr><th>run</th><th>grid</th><th>status</th><th>recommended</th><th>CLIP-T</th><th>CLIP-I</th>'
            '<th>near copies</th></tr>{}</table><p><a href="{}?runs={}">comparison page</a> (evaluated runs)</p>',
            body, reverse("admin:training_trainingrun_compare"), names)

    @admin.action(description="Continue selected sweeps (start/resume runs, evaluate finished ones)")
    def continue_sweeps(self, request, queryset):
        from training import sweeps

        for sweep in queryset:
            lines = []
            try:
                parsed = sweep.parse()
                sweep_runs = sweeps.launch(parsed, lines.append)
                sweeps.evaluate_all(parsed, sweep_runs, lines.append)
            except (forms.ValidationError, runs.RunRefused) as exc:
                self.message_user(request, f"{sweep.name}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{sweep.name}: " + "; ".join(lines))
