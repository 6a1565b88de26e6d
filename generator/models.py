"""Model registry, generation jobs, generated images and prompt history.

These are thin records over the Django-free engine in `generator.engine`: the engine loads
pipelines and makes images; these rows remember who asked for what and where the result is.
"""
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, SearchVectorField
from django.db import connections, models
from django.db.models.functions import Coalesce
from django.urls import reverse

from generator.engine.params import SITE_DEFAULTS, Limits
from jobs import models as jobs

_SITE = SITE_DEFAULTS  # where a model sets none


def own_or_site(steps: int | None, guidance_scale: float | None) -> tuple[int, float]:
    """A model's own steps and CFG scale, else the site's: the one rule for the form, the API and the CLI (which
    also draws with models outside the registry: a path, the shipped fallback)."""
    return (_SITE.steps if steps is None else steps,
            _SITE.guidance_scale if guidance_scale is None else guidance_scale)


class AIModelQuerySet(models.QuerySet):
    def pipelines(self):
        """Entries that draw (base, fine-tuned, LoRA): what a model picker lists. An upscaler only enlarges."""
        return self.exclude(kind=AIModel.Kind.UPSCALER)

    def drawable(self):
        """Active entries that draw: what a generation may name (form, API, CLI, jobs)."""
        return self.pipelines().filter(is_active=True)

    def upscalers(self):
        """Active upscalers: the names `hires_upscaler` accepts beside Lanczos and Latent."""
        return self.filter(kind=AIModel.Kind.UPSCALER, is_active=True).order_by("name")


class AIModel(models.Model):
    """A Stable Diffusion model users can pick (a hub id, a diffusers folder or a single file), or an
    upscaler model (ESRGAN family, one file) for the hires fix."""

    class Kind(models.TextChoices):
        BASE = "base", "base model"
        FINETUNED = "finetuned", "fine-tuned"
        LORA = "lora", "LoRA on a base model"
        UPSCALER = "upscaler", "upscaler for the hires fix (ESRGAN family)"

    name = models.SlugField(max_length=100, unique=True, help_text="Short name used in forms, API and commands.")
    source = models.CharField(
        max_length=500, help_text="Hub id (org/repo), a local diffusers folder, or a local .safetensors file "
                                  "(an upscaler: its .safetensors file)."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BASE)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
        help_text="The base model a fine-tune or LoRA was made from.",
    )
    lora_scale = models.FloatField(default=1.0, help_text="Scale applied to a LoRA model's weights.")
    architecture = models.CharField(max_length=16, blank=True, help_text="sd1, sd2, sd2-v or sdxl (detected); "
                                    "an upscaler's architecture as spandrel names it, e.g. ESRGAN.")
    upscale_factor = models.PositiveSmallIntegerField(
        default=0, help_text="Upscaler only: how many times it enlarges a picture (detected: 2, 4)."
    )
    native_size = models.PositiveIntegerField(
        default=512, help_text="Side the model was trained at (detected); the generate form starts there."
    )
    default_steps = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=f"Steps the generate form, API and CLI start at for this model; empty: the "
                                         f"site's {_SITE.steps}. Distilled models (Turbo, Lightning, LCM) want 4–8.")
    default_guidance_scale = models.FloatField(
        null=True, blank=True, verbose_name="default CFG scale",
        help_text=f"CFG scale the generate form, API and CLI start at for this model; empty: the site's "
                  f"{_SITE.guidance_scale:g}. Distilled models want 1–2.")
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Listed in the users' model picker.")
    is_default = models.BooleanField(default=False)
    downloadable = models.BooleanField(
        default=False, help_text="LoRA only: offer its .safetensors file (kohya format) on the model's public page."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AIModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_model")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        """Every bad default at once, each with a value the site accepts."""
        limits, errors = Limits(**settings.RETROPORTAL_LIMITS), {}
        if self.default_steps is not None and not 1 <= self.default_steps <= limits.max_steps:
            errors["default_steps"] = f"{self.default_steps} is out of range; use 1 to {limits.max_steps}, e.g. 20"
        if self.default_guidance_scale is not None and not 0 <= self.default_guidance_scale <= limits.max_guidance:
            errors["default_guidance_scale"] = (f"{self.default_guidance_scale:g} is out of range; use 0 to "
                                                f"{limits.max_guidance:g}, e.g. 7")
        if errors:
            raise ValidationError(errors)

    def generation_defaults(self, limits: Limits) -> dict:
        """What a request naming this model gets for the fields it leaves out: the model's native size (within
        `limits`), its steps and CFG scale, else the site's (GenerationParams). One rule for form, API and CLI."""
        side = limits.side_within(self.native_size)
        steps, guidance_scale = own_or_site(self.default_steps, self.default_guidance_scale)
        return {"width": side, "height": side, "steps": steps, "guidance_scale": guidance_scale}

    @property
    def base_architecture(self) -> str:
        """The architecture this entry draws with, which a LoRA mixed onto it must match: a LoRA or fine-tune
        draws on its parent's weights (its own detected architecture when the parent's is unknown)."""
        return (self.parent.architecture if self.parent is not None else "") or self.architecture

    def pipeline_spec(self) -> tuple[str, str | None, float]:
        """(base source, LoRA source or None, LoRA scale): what a worker loads to draw with this model.

        A LoRA entry is drawn on its parent's weights; base and fine-tuned models are complete pipelines.
        """
        if self.kind == self.Kind.UPSCALER:
            raise ValueError(f"{self.name} is an upscaler, not a model to draw with; use it as hires_upscaler")
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
    # Creative controls (issue 13), named as GenerationParams' fields; pictures are files, decoded by the worker.
    init_image = models.FileField(upload_to="inputs/%Y/%m/", blank=True, help_text="img2img/inpainting source (PNG).")
    mask_image = models.FileField(upload_to="inputs/%Y/%m/", blank=True, help_text="Inpainting mask, white = repaint.")
    init_image_source = models.ForeignKey(
        "GeneratedImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="remixes",
        help_text="The gallery picture this job remixes (its bytes are copied into init_image).",
    )
    strength = models.FloatField(default=0.75, help_text="img2img denoising strength (A1111 'Denoising strength').")
    mask_blur = models.PositiveIntegerField(default=4)
    hires_scale = models.FloatField(default=1.0)
    hires_steps = models.PositiveIntegerField(default=0, help_text="0 = as many as steps.")
    hires_strength = models.FloatField(default=0.5)
    hires_upscaler = models.CharField(max_length=100, default="Lanczos")
    loras = models.JSONField(default=list, blank=True, help_text='[{"name": registry LoRA, "scale": -2..2}]')
    variation_seed = models.BigIntegerField(default=-1)
    variation_strength = models.FloatField(default=0.0)
    translate = models.CharField(max_length=8, blank=True, help_text="'id' translates the prompt to English first.")
    translated_prompt = models.TextField(blank=True, help_text="The English prompt the model saw (translate=id).")
    translated_negative_prompt = models.TextField(blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    warnings = models.TextField(blank=True, help_text="Engine warnings, e.g. prompt tokens beyond the model's limit.")
    # Live progress of the image being drawn: image k of N, step s of S, and a cheap latent preview (PNG).
    progress_image = models.PositiveIntegerField(default=0)
    progress_images = models.PositiveIntegerField(default=0)
    progress_image_step = models.PositiveIntegerField(default=0)
    progress_image_steps = models.PositiveIntegerField(default=0)
    preview_png = models.BinaryField(null=True, blank=True, editable=False)
    preview_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.user} · {self.prompt[:40]} ({self.status})"

    def get_absolute_url(self):
        return reverse("job-detail", args=[self.pk])

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATES

    def images_in_order(self) -> list:
        """The job's pictures in index order (seed, seed + 1, ...), from the prefetch cache when there is one.

        Sorted here, not by the prefetch's ORDER BY alone: a row refreshed from the database (jobs.core.reconcile
        does, when a worker finished while the row was read) has lost its prefetch, and the pictures' default
        ordering is newest first."""
        return sorted(self.images.all(), key=lambda image: image.index)


# Full-text search over prompts. PostgreSQL ships Snowball stemmers for English but none for Indonesian, so the
# stored vector holds the prompt twice: English-stemmed (girls -> girl) and `simple` (exact lower-cased words, which
# is what an Indonesian prompt like "rambut merah" is searched by). A query is matched against both.
SEARCH_CONFIGS = ("english", "simple")


def search_query(text: str) -> SearchQuery:
    """A web-search style query ("red hair" -girl, "exact phrase", a OR b) over every configuration."""
    query = None
    for config in SEARCH_CONFIGS:
        part = SearchQuery(text, config=config, search_type="websearch")
        query = part if query is None else query | part
    return query


class ImageQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The one visibility rule: what `user` may see anywhere (pages, search, profiles, collections, model
        pages, zips, media, API). Signed out: published pictures. Signed in: their own and published ones.
        Staff with the admin's view permission: everything (moderation). Narrow it further (public(), owner=)
        but never start from anything else."""
        public = models.Q(is_public=True)
        if not user.is_authenticated:
            return self.filter(public)
        if user.is_staff and user.has_perm("generator.view_generatedimage"):
            return self.all()
        return self.filter(public | models.Q(owner=user))

    def public(self):
        """Published pictures only (Explore, profiles, model pages): narrows visible_to, never replaces it."""
        return self.filter(is_public=True)

    def for_cards(self):
        """What a thumbnail card shows (prompt, model, owner) in the same query: no query per card. The search
        vector (a third of a row) is never shown, so it is not read."""
        return self.select_related("job", "job__model", "owner").defer("search_vector")

    def search(self, text: str):
        """Rows whose prompt matches `text` (GIN index on search_vector), annotated with `rank`."""
        if connections[self.db].vendor != "postgresql":  # the SQLite demo: plain substring match, no ranking
            return self.filter(job__prompt__icontains=text).annotate(rank=models.Value(0.0))
        query = search_query(text)
        return self.filter(search_vector=query).annotate(rank=SearchRank(models.F("search_vector"), query))

    def update_search_vectors(self):
        """Store each row's search vector from its job's prompt (one UPDATE for the whole queryset)."""
        if connections[self.db].vendor != "postgresql":
            return 0
        prompt = models.Subquery(GenerationJob.objects.filter(pk=models.OuterRef("job_id")).values("prompt")[:1])
        vector = None
        for weight, config in zip("AB", SEARCH_CONFIGS):
            part = SearchVector(Coalesce(prompt, models.Value(""), output_field=models.TextField()), config=config,
                                weight=weight)
            vector = part if vector is None else vector + part
        return self.update(search_vector=vector)


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
    like_count = models.PositiveIntegerField(default=0, editable=False, help_text="Likes (gallery.Like rows), "
                                             "kept in step with them in the transaction that adds or removes one.")
    search_vector = SearchVectorField(null=True, editable=False, help_text="The prompt, for full-text search "
                                      "(English-stemmed and simple); written by ImageQuerySet.update_search_vectors.")

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "index"]
        indexes = [
            GinIndex(fields=["search_vector"], name="image_search_gin"),
            models.Index(fields=["owner", "-created_at"], name="image_owner_new"),
            models.Index(fields=["is_public", "-created_at"], name="image_public_new"),
            models.Index(fields=["is_public", "-like_count", "-created_at"], name="image_public_likes"),
            models.Index(models.F("is_public"), models.F("clip_score").desc(nulls_last=True), name="image_public_clip"),
        ]

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
