"""Datasets for DreamBooth fine-tuning: uploaded originals, their prepared form and its manifest.

Files live under MEDIA_ROOT/datasets/<name>/: `originals/` holds the upload exactly as received (never
modified), `prepared/` the output of `training.dataprep` (images/, manifest.json, contact_sheet.png),
which is replaced as a whole each time the dataset is prepared.
"""
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from training.dataprep import CONTACT_SHEET_NAME, IMAGES_DIR, MANIFEST_NAME, PrepConfig


def validate_resolution(value: int) -> None:
    if value % 64:
        raise ValidationError(f"{value} is not a multiple of 64 (Stable Diffusion works in 64-pixel steps).")


class Dataset(models.Model):
    class Mode(models.TextChoices):
        CROP = "crop", "square centre crop"
        BUCKET = "bucket", "aspect buckets (keep aspect ratio)"

    class Status(models.TextChoices):
        UPLOADED = "uploaded"
        PREPARING = "preparing"
        READY = "ready"
        FAILED = "failed"

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
        default=512, validators=[MinValueValidator(256), MaxValueValidator(2048), validate_resolution]
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.CROP)
    min_size = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1)],
        help_text="Pictures whose short side is smaller are rejected (never silently upscaled that far).",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    kept_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    caption_count = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(null=True, blank=True, help_text="Copy of prepared/manifest.json (or of the failed attempt).")
    error = models.TextField(blank=True)
    rq_job_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    prepared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def root(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "datasets" / self.name

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
