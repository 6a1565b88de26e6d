"""Datasets for DreamBooth fine-tuning: uploaded originals, their prepared form and its manifest.

Files live under MEDIA_ROOT/datasets/<name>/: `originals/` holds the upload exactly as received (never
modified), `prepared/` the output of `training.dataprep` (images/, manifest.json, contact_sheet.png),
which is replaced as a whole each time the dataset is prepared.
"""
import csv
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from jobs import models as jobs
from training.dataprep import CONTACT_SHEET_NAME, IMAGES_DIR, MANIFEST_NAME, PrepConfig


def remove_media_folder(path: Path, area: str) -> None:
    """Delete `path` if it lies strictly inside MEDIA_ROOT/<area>/: a row's own folder, never anything above."""
    root = (Path(settings.MEDIA_ROOT) / area).resolve()
    target = Path(path).resolve()
    if target.is_relative_to(root) and target != root:
        shutil.rmtree(target, ignore_errors=True)


def validate_resolution(value: int) -> None:
    if value % 8:
        raise ValidationError(f"{value} is not a multiple of 8 (Stable Diffusion latents are 1/8 of the pixels); "
                              f"use e.g. {max(64, value // 8 * 8)}.")


class Dataset(jobs.QueuedJob):
    """Pictures for fine-tuning and their preparation (a queued job on the 'training' queue). States and
    actions (docs/jobs.md): a preparation whose worker died ends failed; prepare it again."""

    class Mode(models.TextChoices):
        CROP = "crop", "square centre crop"
        BUCKET = "bucket", "aspect buckets (keep aspect ratio)"

    class Status(models.TextChoices):
        UPLOADED = jobs.UPLOADED
        QUEUED = jobs.QUEUED
        RUNNING = jobs.RUNNING, "Preparing"
        DONE = jobs.DONE, "Ready"
        FAILED = jobs.FAILED

    STATE_ACTIONS = {
        Status.UPLOADED: ("prepare",), Status.QUEUED: (), Status.RUNNING: (),
        Status.DONE: ("prepare", "train"), Status.FAILED: ("prepare",),
    }

    name = models.SlugField(
        max_length=100, unique=True, allow_unicode=True,
        help_text="Short name; also the folder under media/datasets/. Letters, digits, - and _.",
    )
    instance_prompt = models.CharField(
        max_length=300, help_text="Caption for pictures without a sidecar .txt, e.g. 'a picture of sks girl'."
    )
    class_prompt = models.CharField(
        max_length=300, blank=True, help_text="Prior-preservation prompt for the class, e.g. 'a picture of a girl'."
    )
    resolution = models.PositiveIntegerField(
        default=512, validators=[MinValueValidator(64), MaxValueValidator(2048), validate_resolution],
        help_text="Training size in pixels: the base model's native size (64 for the mini-world base, 512 for SD 1.x).",
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.CROP)
    min_size = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1)],
        help_text="Pictures whose short side is smaller are rejected (never silently upscaled that far).",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    kept_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    caption_count = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(null=True, blank=True, help_text="Copy of prepared/manifest.json (or of the failed attempt).")
    updated_at = models.DateTimeField(auto_now=True)
    prepared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def root(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "datasets" / self.name

    def remove_folder(self) -> None:
        remove_media_folder(self.root, "datasets")

    @property
    def originals_dir(self) -> Path:
        return self.root / "originals"

    @property
    def prepared_dir(self) -> Path:
        return self.root / "prepared"

    @property
    def images_dir(self) -> Path:
        """What training reads: NNNN.png pictures with NNNN.txt captions (manifest.json is one level up)."""
        return self.prepared_dir / IMAGES_DIR

    @property
    def contact_sheet_path(self) -> Path:
        return self.prepared_dir / CONTACT_SHEET_NAME

    @property
    def manifest_path(self) -> Path:
        return self.prepared_dir / MANIFEST_NAME

    def prep_config(self, workers: int = 1) -> PrepConfig:
        return PrepConfig(
            resolution=self.resolution, mode=self.mode, min_size=self.min_size,
            instance_prompt=self.instance_prompt, class_prompt=self.class_prompt, workers=workers,
        )

    def counts(self) -> dict[str, int]:
        return {
            "kept": self.kept_count, "duplicate": self.duplicate_count, "rejected": self.rejected_count,
            "skipped": self.skipped_count, "caption": self.caption_count,
        }

    def set_counts(self, counts: dict[str, int]) -> None:
        for status in ("kept", "duplicate", "rejected", "skipped", "caption"):
            setattr(self, f"{status}_count", counts.get(status, 0))


class DatasetImage(models.Model):
    """One prepared training picture (a 'kept' manifest record), for training code and the admin."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    output_name = models.CharField(max_length=100, help_text="Path inside prepared/, e.g. images/0000.png.")
    source_name = models.CharField(max_length=1000, help_text="Path inside originals/.")
    caption = models.TextField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bucket = models.CharField(max_length=16, blank=True, help_text="WxH in bucket mode.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the original file.")

    class Meta:
        ordering = ["dataset", "output_name"]
        constraints = [models.UniqueConstraint(fields=["dataset", "output_name"], name="unique_dataset_output")]

    def __str__(self):
        return f"{self.dataset.name}/{self.output_name}"


# ---------------------------------------------------------------------------------------------------------
# DreamBooth training runs (a thin record over training.dreambooth; the 'training' queue runs them)

# TrainConfig settings the run row supplies itself (paths) or the queue decides (resume): never in `config`.
RUN_MANAGED_SETTINGS = ("base_model", "dataset", "out", "resume")


def base_native_size(base=None) -> int:
    """The side a dataset or run for `base` (a registered AIModel) trains at: its native size (64 for the mini-world
    base); without one, the default model's; 512 when no model is known. Defaults follow the model, so the
    dataset command and the run form read it here."""
    if base is None:
        from generator.services import default_model

        base = default_model()
    return base.native_size if base is not None else 512


class TrainingRun(jobs.QueuedJob):
    """One DreamBooth fine-tuning run: its settings (`config`, validated by TrainConfig) and its live state.

    States and actions (docs/jobs.md): a run whose worker died ends interrupted, resumable from its last checkpoint.
    Files: MEDIA_ROOT/training_runs/<id>/ (what `training.dreambooth.train` writes: config.toml, metrics.csv,
    loss.png, validation/, checkpoint-N/, the weights, README.md and train.log)."""

    class Method(models.TextChoices):
        LORA = "lora", "LoRA (small adapter on the base model)"
        FULL = "full", "full UNet fine-tune"

    class Status(models.TextChoices):
        DRAFT = jobs.DRAFT
        QUEUED = jobs.QUEUED
        RUNNING = jobs.RUNNING
        DONE = jobs.DONE
        FAILED = jobs.FAILED
        CANCELLED = jobs.CANCELLED
        INTERRUPTED = jobs.INTERRUPTED

    STOPPED = ("resume", "delete_outputs", "evaluate")
    STATE_ACTIONS = {
        Status.DRAFT: ("start",), Status.QUEUED: ("cancel",), Status.RUNNING: ("cancel",),
        Status.DONE: ("activate", "delete_outputs", "evaluate"),
        Status.FAILED: STOPPED, Status.CANCELLED: STOPPED, Status.INTERRUPTED: STOPPED,
    }
    ACTIVE_STATES = jobs.ACTIVE

    name = models.SlugField(max_length=100, unique=True, help_text="Short name; also the registered model's name.")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_runs")
    base_model = models.ForeignKey("generator.AIModel", on_delete=models.PROTECT, related_name="training_runs")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.LORA)
    preset = models.CharField(max_length=40, blank=True, help_text="The preset its settings started from; the "
                              "registered model takes its recommended steps and CFG scale.")
    config = models.JSONField(
        default=dict, blank=True,
        help_text="Every other TrainConfig setting (training.dreambooth.config), validated by TrainConfig on save.",
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    step = models.PositiveIntegerField(default=0)
    max_steps = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True, help_text="Estimated seconds left (from this session's rate).")
    last_losses = models.JSONField(default=dict, blank=True, help_text="The loss terms of the last step.")
    out_dir = models.CharField(max_length=500, blank=True, help_text="MEDIA_ROOT/training_runs/<id>/")
    resume_requested = models.BooleanField(default=False, help_text="The queued job continues from the last checkpoint.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress written by the worker.")
    result_model = models.ForeignKey(
        "generator.AIModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_by_runs",
        help_text="The model registered from this run (inactive until an admin activates it).",
    )
    recommended_checkpoint = models.CharField(
        max_length=100, blank=True, help_text="recommend_checkpoint's choice once every checkpoint is evaluated.")
    recommendation_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    def allows(self, action: str) -> bool:
        """The state table, and 'activate' only while the registered model is there and still inactive."""
        if action == "activate" and not (self.result_model_id and not self.result_model.is_active):
            return False
        return super().allows(action)

    # -- settings ------------------------------------------------------------------------------------------
    def settings_values(self) -> dict:
        """TrainConfig values without the managed paths: `config` plus method (the row's column wins); the resolution
        defaults to the base model's native size, the instance prompt to the dataset's."""
        values = {k: v for k, v in (self.config or {}).items() if k not in RUN_MANAGED_SETTINGS}
        values["method"] = self.method
        if "resolution" not in values and self.base_model_id:
            values["resolution"] = base_native_size(self.base_model)
        if not str(values.get("instance_prompt") or "").strip() and self.dataset_id:
            values["instance_prompt"] = self.dataset.instance_prompt
        return values

    def train_config(self, resume: bool = False):
        """The TrainConfig this run trains with; raises training.dreambooth.ConfigError naming the setting."""
        from training.dreambooth import load_config

        values = self.settings_values()
        values.update(
            base_model=self.base_model.source if self.base_model_id else "",
            dataset=str(self.dataset.prepared_dir) if self.dataset_id else "",
            out=str(self.out_path) if self.pk else str(Path(settings.MEDIA_ROOT) / "training_runs" / "new"),
            resume=resume,
        )
        return load_config(None, values)

    def clean(self):
        super().clean()
        if not getattr(self, "_config_validated", False):  # the admin form validates field by field itself
            self.validate_config(field=None)

    def validate_config(self, field: str | None = "config"):
        """The TrainConfig of this row, or ValidationError with TrainConfig's one-line message."""
        from training.dreambooth import ConfigError

        managed = sorted(k for k in (self.config or {}) if k in RUN_MANAGED_SETTINGS)
        if managed:
            message = f"{', '.join(managed)}: set by the run itself (the base model, dataset and output folder)"
            raise ValidationError({field: message} if field else message)
        try:
            return self.train_config()
        except ConfigError as exc:
            raise ValidationError({field: str(exc)} if field else str(exc)) from None

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields") is None:  # a full save: the settings must make a valid TrainConfig
            cfg = self.validate_config()
            if self.status in (self.Status.DRAFT,):
                self.max_steps = cfg.max_steps
        super().save(*args, **kwargs)
        if not self.out_dir:
            self.out_dir = str(Path(settings.MEDIA_ROOT) / "training_runs" / str(self.pk))
            TrainingRun.objects.filter(pk=self.pk).update(out_dir=self.out_dir)

    # -- files ---------------------------------------------------------------------------------------------
    @property
    def out_path(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path(settings.MEDIA_ROOT) / "training_runs" / str(self.pk)

    @property
    def log_path(self) -> Path:
        return self.out_path / "train.log"

    def remove_folder(self) -> None:
        remove_media_folder(self.out_path, "training_runs")

    @property
    def progress_percent(self) -> int:
        return int(100 * self.step / self.max_steps) if self.max_steps else 0

    def eta_text(self) -> str:
        """'1h 05m', '3m 20s' or '12s' while running with an estimate; '—' otherwise."""
        if self.status != self.Status.RUNNING or self.eta_seconds is None:
            return "—"
        hours, rest = divmod(int(round(self.eta_seconds)), 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s")

    def loss_points(self, max_points: int = 400) -> list[list[float]]:
        """[[step, loss], ...] from metrics.csv, thinned to at most `max_points` (the last one kept)."""
        try:
            with open(self.out_path / "metrics.csv", newline="", encoding="utf-8") as fh:
                rows = [[int(r["step"]), float(r["loss"])] for r in csv.DictReader(fh) if r.get("step") and r.get("loss")]
        except (OSError, ValueError, KeyError):
            return []
        if len(rows) > max_points:
            stride = -(-len(rows) // max_points)
            rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
        return rows

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of train.log (read from its last 16 KiB)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------------------
# Evaluations of checkpoints and base models (training.evaluation; training.run_evaluations queues them on the
# 'generation' queue, training.tasks.run_evaluation_job runs them).

def validate_suite_text(text: str, name: str = "suite"):
    """The parsed Suite, or ValidationError with prompt_suite's message naming the line and key."""
    from training.evaluation.prompt_suite import SuiteError, parse_suite

    try:
        return parse_suite(text or "", source=name or "suite")
    except SuiteError as exc:
        raise ValidationError({"text": str(exc)}) from None


class PromptSuite(models.Model):
    """An evaluation prompt suite (YAML, training/evaluation/prompt_suite.py format), editable in the admin."""

    DEFAULT_NAME = "retro_default"

    name = models.SlugField(max_length=100, unique=True)
    text = models.TextField(help_text="YAML: name, version, languages, prompts (key, held_out, attributes, one text "
                                      "per language). Validated on save; errors name the line and key.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def parse(self):
        return validate_suite_text(self.text, self.name)

    def clean(self):
        super().clean()
        self.parse()

    def save(self, *args, **kwargs):
        self.parse()  # never store a suite the worker cannot read
        super().save(*args, **kwargs)

    @classmethod
    def default(cls) -> "PromptSuite":
        """The shipped retro suite, created from suites/retro_default.yaml on first use."""
        from training.evaluation.prompt_suite import DEFAULT_SUITE

        suite = cls.objects.filter(name=cls.DEFAULT_NAME).first()
        if suite is None:
            suite, _ = cls.objects.get_or_create(
                name=cls.DEFAULT_NAME, defaults={"text": DEFAULT_SUITE.read_text(encoding="utf-8")})
        return suite


class Evaluation(jobs.QueuedJob):
    """One evaluation of a checkpoint of a training run (or of a registered model, e.g. the base model).

    States and actions (docs/jobs.md): an evaluation whose worker died ends failed; evaluating the run
    again queues that checkpoint anew."""

    class Status(models.TextChoices):
        QUEUED = jobs.QUEUED
        RUNNING = jobs.RUNNING
        DONE = jobs.DONE
        FAILED = jobs.FAILED

    STATE_ACTIONS = {Status.QUEUED: (), Status.RUNNING: (), Status.DONE: ("report",), Status.FAILED: ()}

    training_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="evaluations")
    model = models.ForeignKey("generator.AIModel", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="evaluations", help_text="A registered model evaluated as is (e.g. the base).")
    name = models.CharField(max_length=200, help_text="Display name: run/checkpoint-N or the model's name.")
    checkpoint = models.CharField(max_length=100, blank=True, help_text="checkpoint-N, 'final' or blank for a model.")
    step = models.PositiveIntegerField(null=True, blank=True)
    lora_path = models.CharField(max_length=500, blank=True, help_text="The LoRA file evaluated (exported checkpoint).")
    suite = models.ForeignKey(PromptSuite, null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations")
    settings = models.JSONField(default=dict, blank=True, help_text="images_per_prompt, steps, size, seed, encoders …")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    overall = models.JSONField(null=True, blank=True)
    by_prompt = models.JSONField(null=True, blank=True)
    by_language = models.JSONField(null=True, blank=True)
    by_split = models.JSONField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    out_dir = models.CharField(max_length=500, blank=True, help_text="MEDIA_ROOT/evaluations/<id>/")
    report_file = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["training_run_id", "step", "created_at"]

    def __str__(self):
        return self.name

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path(settings.MEDIA_ROOT) / "evaluations" / str(self.pk)

    @property
    def progress_percent(self) -> int:
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    def config(self):
        """The EvalConfig this evaluation generates and measures with (its `settings`, resolved when queued)."""
        from training.evaluation.config import EvalConfig

        return EvalConfig.from_dict(self.settings)

    def result(self):
        """The EvaluationResult (metrics.json in the output folder)."""
        from training.evaluation.evaluate import EvaluationResult

        return EvaluationResult.load(self.out_path)


def _remove_evaluation_folder(sender, instance: Evaluation, **kwargs) -> None:
    """An evaluation's pictures, exported LoRA and report go with its row (also when its run is deleted)."""
    remove_media_folder(instance.out_path, "evaluations")


models.signals.post_delete.connect(_remove_evaluation_folder, sender=Evaluation,
                                   dispatch_uid="training.remove_evaluation_folder")


class EvaluationImage(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="images")
    prompt_id = models.CharField(max_length=100)
    language = models.CharField(max_length=16)
    seed = models.BigIntegerField()
    clip_t = models.FloatField()
    max_train_sim = models.FloatField()
    near_copy = models.BooleanField(default=False)
    file = models.CharField(max_length=300, blank=True, help_text="Relative to the evaluation's folder.")

    class Meta:
        ordering = ["evaluation", "prompt_id", "seed"]

    def __str__(self):
        return f"{self.evaluation}: {self.prompt_id} seed {self.seed}"


class Sweep(models.Model):
    """A grid of training runs described in TOML (training.sweeps); 'continue' starts, resumes or skips its
    runs and evaluates the finished ones — the admin's form of `manage.py sweep`. The TOML is validated by
    the admin's form (training.forms.SweepForm): reading it looks up models and datasets."""

    name = models.SlugField(max_length=60, unique=True, help_text="Run names start with it (the TOML's 'name' wins).")
    spec = models.TextField(help_text="TOML: base_model, dataset, [base] TrainConfig keys, [grid] lists "
                                      "(dataset_size, regularization, any TrainConfig key), [evaluation] settings.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name
