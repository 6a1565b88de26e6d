"""Model registry, generation jobs, generated images and prompt history.

These are thin records over the Django-free engine in `generator.engine`: the engine loads
pipelines and makes images; these rows remember who asked for what and where the result is.
"""
import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from jobs import models as jobs


class AIModel(models.Model):
    """A Stable Diffusion model users can pick: a hub id, a diffusers folder or a single file."""

    class Kind(models.TextChoices):
        BASE = "base", "base model"
        FINETUNED = "finetuned", "fine-tuned"
        LORA = "lora", "LoRA on a base model"

    name = models.SlugField(max_length=100, unique=True, help_text="Short name used in forms, API and commands.")
    source = models.CharField(
        max_length=500, help_text="Hub id (org/repo), a local diffusers folder, or a local .safetensors file."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BASE)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
        help_text="The base model a fine-tune or LoRA was made from.",
    )
    lora_scale = models.FloatField(default=1.0, help_text="Scale applied to a LoRA model's weights.")
    architecture = models.CharField(max_length=16, blank=True, help_text="sd1, sd2, sd2-v or sdxl (detected).")
    native_size = models.PositiveIntegerField(
        default=512, help_text="Side the model was trained at (detected); the generate form starts there."
    )
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Listed in the users' model picker.")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_model")
        ]

    def __str__(self):
        return self.name

    def pipeline_spec(self) -> tuple[str, str | None, float]:
        """(base source, LoRA source or None, LoRA scale): what a worker loads to draw with this model.

        A LoRA entry is drawn on its parent's weights; the other kinds are complete pipelines.
        """
        if self.kind != self.Kind.LORA:
            return self.source, None, 1.0
        if self.parent is None:
            raise ValueError(f"LoRA model {self.name} has no base model; set its parent in the admin")
        return self.parent.source, self.source, self.lora_scale


class GenerationJob(jobs.QueuedJob):
    """One request for pictures. States and actions (docs/jobs.md): a worker death or a lost queue entry
    while running ends it failed, with the reason; a queued job Redis lost is queued again."""

    class Status(models.TextChoices):
        QUEUED = jobs.QUEUED
        RUNNING = jobs.RUNNING
        DONE = jobs.DONE
        FAILED = jobs.FAILED
        CANCELLED = jobs.CANCELLED

    FINAL_STATES = (Status.DONE, Status.FAILED, Status.CANCELLED)
    STATE_ACTIONS = {
        Status.QUEUED: ("cancel",), Status.RUNNING: ("cancel",),
        Status.DONE: (), Status.FAILED: (), Status.CANCELLED: (),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generation_jobs")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="jobs")
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField(help_text="-1 asks for a random seed; the seed used is stored on each image.")
    steps = models.PositiveIntegerField()
    guidance_scale = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    num_images = models.PositiveIntegerField()
    scheduler = models.CharField(max_length=32)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    warnings = models.TextField(blank=True, help_text="Engine warnings, e.g. prompt tokens beyond the model's limit.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.user} · {self.prompt[:40]} ({self.status})"

    def get_absolute_url(self):
        return reverse("job-detail", args=[self.pk])

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATES


class ImageQuerySet(models.QuerySet):
    def visible_to(self, user):
        """What `user` may see: their own pictures and everyone's published ones (nothing when signed out)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(models.Q(owner=user) | models.Q(is_public=True))


class GeneratedImage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="images")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to="generations/%Y/%m/")
    index = models.PositiveIntegerField(help_text="Position within the job (image i used seed + i).")
    seed = models.BigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    parameters = models.TextField(help_text="A1111-style infotext, also stored in the PNG's 'parameters' chunk.")
    clip_score = models.FloatField(null=True, blank=True, help_text="Cosine of prompt and image CLIP embeddings.")
    clip_model = models.CharField(max_length=300, blank=True)
    clip_error = models.TextField(blank=True, help_text="Why no CLIP score was computed, if none was.")
    is_public = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "index"]

    def __str__(self):
        return f"{self.job.prompt[:40]} #{self.index}"

    def get_absolute_url(self):
        return reverse("image-detail", args=[self.pk])

    def get_file_url(self):
        return reverse("image-file", args=[self.pk])

    PIXEL_ART_MAX = 256  # px: pictures this small are shown enlarged, so with sharp pixels

    @property
    def pixelated(self) -> bool:
        """Enlarge with nearest-neighbour (CSS `image-rendering: pixelated`): a 64 px mini-world picture blurred
        to a 200 px thumbnail hides exactly the detail people look for."""
        return max(self.width or 0, self.height or 0) <= self.PIXEL_ART_MAX


class PromptHistory(models.Model):
    """One row per distinct prompt a user submitted; reused prompts move to the top."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompt_history")
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    last_job = models.ForeignKey(GenerationJob, null=True, blank=True, on_delete=models.SET_NULL)
    times_used = models.PositiveIntegerField(default=1)
    last_used_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-last_used_at"]
        verbose_name_plural = "prompt history"

    def __str__(self):
        return self.prompt[:60]
