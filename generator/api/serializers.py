"""Serializers of the integration API: request validation (types only) and response shapes.

Range checks (steps, sizes, seed, scheduler, ...) are not repeated here: they live in
`GenerationParams.validate` and `services.submit_generation`, the code path the website uses too,
so both refuse the same input with the same message. Serializers only check types and reject
what could never reach that code safely (wrong JSON types, NUL/surrogate characters, non-finite
numbers).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField

from generator.api.fields import (
    FiniteFloatField,
    NoBlankQueryMixin,
    QueryBooleanField,
    RejectUnknownFieldsMixin,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from generator import inputs, progress
from generator.api.creative import (
    CreativeFieldsSerializer,
    JobCreativeSerializer,
    decode_pictures,
    one_line_lora_errors,
)
from generator.engine.params import SCHEDULER_NAMES, GenerationParams
from generator.models import AIModel, GeneratedImage, GenerationJob
from generator.services import default_model, queue_position, site_limits

_DEFAULTS = GenerationParams(prompt="x")
PROMPT_MAX_LENGTH = 4000  # far above any model's token window; stops megabyte prompts reaching the DB


# --------------------------------------------------------------------------- generations


class GenerationCreateSerializer(RejectUnknownFieldsMixin, CreativeFieldsSerializer):
    """What a client may send to start a generation. Every field but `prompt` has the website's default.

    The bounds are this site's limits. With a fixed seed, seed + num_images - 1 must also stay below 2**32.
    """

    # The bounds reach the schema through generator.api.schema.GenerationCreateExtension (from settings);
    # submit_generation enforces them, with the website's messages.

    prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, trim_whitespace=False,
                                   help_text="What to draw, e.g. 'retro anime style, a girl with a hat'.")
    negative_prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, required=False, allow_blank=True,
                                            trim_whitespace=False, default=_DEFAULTS.negative_prompt)
    seed = StrictIntegerField(required=False, default=_DEFAULTS.seed,
                                    help_text="-1 for a random seed, else 0 to 4294967295; image i uses seed + i.")
    steps = StrictIntegerField(required=False, help_text=(
        "Denoising steps (1 to the site's maximum, 100 by default). Default: the chosen model's "
        f"(`default_steps` in GET /api/models/), else {_DEFAULTS.steps}."))
    guidance_scale = FiniteFloatField(required=False, help_text=(
        "Classifier-free guidance (CFG) scale, 0 to 30. Default: the chosen model's (`default_guidance_scale` in "
        f"GET /api/models/), else {_DEFAULTS.guidance_scale:g}."))
    width = StrictIntegerField(required=False, help_text=(
        "Multiple of 8, 64 to the site's maximum (1024 by default). Default: the chosen model's native size "
        "(`native_size` in GET /api/models/: 64 for the mini-world models, 512 for SD 1.x, 768 for SD 2.x)."))
    height = StrictIntegerField(required=False, help_text=(
        "Multiple of 8, 64 to the site's maximum (1024 by default). Default: the chosen model's native size."))
    num_images = StrictIntegerField(required=False, default=_DEFAULTS.num_images,
                                          help_text="Images in this job (1 to the site's maximum, 4 by default).")
    scheduler = serializers.ChoiceField(choices=SCHEDULER_NAMES, required=False, default=_DEFAULTS.scheduler)
    model = StrictCharField(max_length=100, required=False, allow_blank=True, allow_null=True, default=None,
                                  help_text="Model name from GET /api/models/; the default model when left out.")

    def to_internal_value(self, data):
        """Every bad field at once: type errors, unknown keys and GenerationParams' range checks together.

        A missing width/height, steps or guidance_scale is the chosen (or default) model's, as on the website."""
        try:
            values, errors = super().to_internal_value(data), {}
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict) or not isinstance(data, dict):
                raise
            errors, values = self._field_by_field(data, exc.detail)
            if "loras" in errors:
                errors["loras"] = one_line_lora_errors(errors["loras"])
        model, limits = chosen_model(values.get("model") or None), site_limits()
        for name, value in (model or AIModel()).generation_defaults(limits).items():
            values.setdefault(name, value)
        request = self.context.get("request")
        values["init_image_source"] = decode_pictures(values, errors, getattr(request, "user", None), limits)
        given = {name: value for name, value in values.items() if name not in ("model", "init_image_source")}
        params = GenerationParams(**{**_DEFAULTS.as_dict(), **given})
        checks = {**params.errors(limits), **(inputs.request_errors(model, params) if model else {})}
        for name, messages in checks.items():
            if name in given and name not in errors:
                errors[name] = messages
        if errors:
            raise serializers.ValidationError(errors)
        return values

    def _field_by_field(self, data: dict, failed: dict) -> tuple[dict, dict]:
        """(errors, values) validating each field alone, when the first pass stopped early (e.g. an unknown key)."""
        errors, values = dict(failed), {}
        for name, field in self.fields.items():
            if name in errors:
                continue
            try:
                values[name] = field.run_validation(field.get_value(data))
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except SkipField:
                continue
        return errors, values

    def to_params(self) -> tuple[GenerationParams, str | None, GeneratedImage | None]:
        """(params, model name, the remixed image or None)."""
        data = dict(self.validated_data)
        model = data.pop("model", None) or None
        source = data.pop("init_image_source", None)
        return GenerationParams(**data), model, source


def chosen_model(model_name: str | None) -> AIModel | None:
    """The named active model, else (no name) the default one; None when there is none (submit says why)."""
    return AIModel.objects.drawable().filter(name=model_name).first() if model_name \
        else default_model()



class ProgressSerializer(serializers.Serializer):
    step = serializers.IntegerField(help_text="Denoising steps done so far over all images of the job.")
    total = serializers.IntegerField(help_text="Total denoising steps of the job (0 until the worker starts it).")
    percent = serializers.IntegerField(min_value=0, max_value=100)
    image = serializers.IntegerField(help_text="The image being drawn, 1-based (image k of `images`); 0 before.")
    images = serializers.IntegerField(help_text="Images in the job (N).")
    image_step = serializers.IntegerField(help_text="Steps done on the current image (s of `image_steps`).")
    image_steps = serializers.IntegerField(help_text="Steps of one image (img2img and hires counted; S).")
    eta_seconds = serializers.IntegerField(allow_null=True, help_text=(
        "Estimated seconds left while running (time per step so far x steps left); null otherwise."))


class JobParametersSerializer(JobCreativeSerializer):
    """The request as the job stored it, creative controls included."""

    prompt = serializers.CharField()
    negative_prompt = serializers.CharField(allow_blank=True)
    seed = serializers.IntegerField(help_text="As requested: -1 means random; each image records the seed used.")
    steps = serializers.IntegerField()
    guidance_scale = serializers.FloatField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    num_images = serializers.IntegerField()
    scheduler = serializers.CharField()
    model = serializers.CharField(source="model.name")


class AbsoluteFileUrlField(serializers.Field):
    """Absolute URL of an image's PNG (the permission-checked file view); send the same credentials to fetch it."""

    def __init__(self, **kwargs):
        kwargs["source"] = "*"
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, image):
        url = image.get_file_url()
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


extend_schema_field(OpenApiTypes.URI)(AbsoluteFileUrlField)


class JobImageSerializer(serializers.ModelSerializer):
    url = AbsoluteFileUrlField(help_text="Absolute URL of the PNG; fetch it with the same Authorization header.")

    class Meta:
        model = GeneratedImage
        fields = ["id", "url", "index", "seed", "clip_score", "clip_error", "is_public"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=GenerationJob.Status.choices, read_only=True)
    progress = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="1-based position among all queued jobs while queued, else null."
    )
    preview_url = serializers.SerializerMethodField(help_text=(
        "While running: absolute URL of a small PNG preview of the image being drawn (updated every few steps; "
        "fetch it with the same Authorization header); null otherwise."))
    parameters = JobParametersSerializer(source="*", read_only=True)
    images = JobImageSerializer(source="images_in_order", many=True, read_only=True)

    class Meta:
        model = GenerationJob
        fields = [
            "id", "status", "progress", "preview_url", "queue_position", "created_at", "started_at", "finished_at",
            "parameters", "error", "warnings", "cancel_requested", "images",
        ]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, job) -> dict:
        return progress.progress_info(job)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_preview_url(self, job) -> str | None:
        url = progress.preview_url(job)
        request = self.context.get("request")
        return request.build_absolute_uri(url) if url and request is not None else url

    def get_queue_position(self, job) -> int | None:
        return queue_position(job)


# --------------------------------------------------------------------------- images


class ImageSerializer(serializers.ModelSerializer):
    url = AbsoluteFileUrlField(help_text="Absolute URL of the PNG; fetch it with the same Authorization header.")
    job = serializers.UUIDField(source="job_id", read_only=True)
    prompt = serializers.CharField(source="job.prompt", read_only=True)
    negative_prompt = serializers.CharField(source="job.negative_prompt", read_only=True)
    model = serializers.CharField(source="job.model.name", read_only=True)
    parameters = serializers.CharField(
        read_only=True, help_text="AUTOMATIC1111-style infotext, also in the PNG's 'parameters' tEXt chunk."
    )
    is_owner = serializers.SerializerMethodField(help_text="True when the image is yours (you may PATCH/DELETE it).")

    class Meta:
        model = GeneratedImage
        fields = [
            "id", "url", "job", "index", "prompt", "negative_prompt", "parameters", "seed", "width", "height",
            "model", "clip_score", "clip_model", "clip_error", "is_public", "is_owner", "created_at",
        ]
        read_only_fields = fields  # PATCH goes through ImagePatchSerializer

    def get_is_owner(self, image) -> bool:
        request = self.context.get("request")
        return bool(request is not None and request.user.is_authenticated and image.owner_id == request.user.pk)


class ImagePatchSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """PATCH body: only `is_public` may change; any other key is refused (not silently ignored).

    An empty body changes nothing (and answers the image), as PATCH semantics allow.
    """

    is_public = StrictBooleanField(required=False, help_text="Publish the image to everyone's ?public=true listing, or unpublish it.")


class ImageFilterSerializer(NoBlankQueryMixin, serializers.Serializer):
    """Query parameters of GET /api/images/."""

    ORDERINGS = ("created_at", "-created_at", "clip_score", "-clip_score")
    SORTS = ("new", "clip", "likes")

    public = QueryBooleanField(
        required=False, default=False,
        help_text="true: everyone's published images (the public gallery); false (default): your own images.",
    )
    model = serializers.CharField(required=False, max_length=100, help_text="Only images made with this model (name).")
    created_after = serializers.DateField(required=False, help_text="Only images created on or after this date (YYYY-MM-DD, UTC).")
    created_before = serializers.DateField(required=False, help_text="Only images created on or before this date (YYYY-MM-DD, UTC).")
    min_clip_score = FiniteFloatField(required=False, accept_strings=True, help_text="Only images whose CLIP score is at least this.")
    ordering = serializers.ChoiceField(
        choices=ORDERINGS, required=False, default="-created_at",
        help_text="Sort order; images without a CLIP score come last for either clip_score order.",
    )
    search = StrictCharField(
        required=False, max_length=200,
        help_text="Words of the prompt (PostgreSQL full-text search: English stems, \"phrase\", -not, or); "
                  "best match first unless `sort` is given.",
    )
    sort = serializers.ChoiceField(
        choices=("new", "clip", "likes"), required=False,
        help_text="new: newest first; clip: best CLIP score first; likes: most liked first. Overrides `ordering`.",
    )


class JobFilterSerializer(NoBlankQueryMixin, serializers.Serializer):
    """Query parameters of GET /api/generations/."""

    status = serializers.ChoiceField(choices=GenerationJob.Status.choices, required=False,
                                     help_text="Only jobs in this state.")


# --------------------------------------------------------------------------- models


class AIModelSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    is_default = serializers.SerializerMethodField(help_text="Used when a generation request names no model.")
    default_steps = serializers.SerializerMethodField(
        help_text="Steps a generation request with this model but without `steps` gets (the model's, else the site's).")
    default_guidance_scale = serializers.SerializerMethodField(
        help_text="CFG scale a generation request with this model but without `guidance_scale` gets (the model's, "
                  "else the site's).")

    class Meta:
        model = AIModel
        fields = ["name", "kind", "architecture", "native_size", "default_steps", "default_guidance_scale",
                  "upscale_factor", "parent", "description", "is_default", "created_at"]
        read_only_fields = fields
        extra_kwargs = {"native_size": {"help_text": "Side in pixels the model was trained at; a generation request "
                                                     "without width/height draws at this size."},
                        "upscale_factor": {"help_text": "Kind `upscaler` only: how many times it enlarges (2, 4); "
                                                        "0 for models that draw."}}

    def get_default_steps(self, model) -> int:
        return self._defaults(model)["steps"]

    def get_default_guidance_scale(self, model) -> float:
        return self._defaults(model)["guidance_scale"]

    def _defaults(self, model) -> dict:
        if "limits" not in self.context:
            self.context["limits"] = site_limits()
        return model.generation_defaults(self.context["limits"])

    def get_is_default(self, model) -> bool:
        if "default_model_pk" not in self.context:
            default = default_model()
            self.context["default_model_pk"] = default.pk if default else None
        return model.pk == self.context["default_model_pk"]


# --------------------------------------------------------------------------- error bodies (schema only)


class ErrorSerializer(serializers.Serializer):
    """Body of 401/403/404/409/429 (and other non-field) errors."""

    detail = serializers.CharField(help_text="What went wrong, in words.")


class ValidationErrorSerializer(serializers.Serializer):
    """Body of a 400: field name -> list of messages; `detail` alone when the body as a whole is unreadable.

    Its OpenAPI schema is written by `generator.api.schema.ValidationErrorExtension` (free-form keys).
    """
