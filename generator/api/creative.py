"""The creative controls in the API (issue 13): img2img / inpainting pictures, hires fix, LoRAs, variations,
translation — request fields, picture decoding, and their echo in the job's `parameters`.

Pictures come as base64 strings or `data:image/...;base64,` URLs (`init_image`, `mask_image`), or as
`init_image_id`: one of your images or a published one (anything else is a 404, as for GET). They are decoded
by generator.inputs (the website's code path) into what GenerationParams holds; ranges are checked there.
"""
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from generator import inputs
from generator.api.fields import FiniteFloatField, RejectUnknownFieldsMixin, StrictCharField, StrictIntegerField
from generator.engine.param_checks import TRANSLATIONS
from generator.engine.params import GenerationParams, ParamError

_DEFAULTS = GenerationParams(prompt="x")
# base64 of the largest upload, with room for a data: URL prefix (the byte limit itself is checked on decode).
PICTURE_MAX_LENGTH = 64 * 1024 * 1024
PICTURE_HELP = ("A PNG, JPEG or WebP picture as a base64 string or a data URL (`data:image/png;base64,...`), "
                "at most the site's upload limit (10 MiB and 4096x4096 pixels by default).")


class LoraChoiceSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    name = StrictCharField(min_length=1, max_length=100,
                           help_text="A registered LoRA (GET /api/models/, kind `lora`) made for the chosen model's "
                                     "architecture.")
    scale = FiniteFloatField(required=False, default=1.0, help_text="Weight of the LoRA, -2 to 2 (1 = as trained).")


class CreativeFieldsSerializer(serializers.Serializer):
    """The issue-13 request fields; GenerationCreateSerializer inherits them (names as in GenerationParams)."""

    init_image = StrictCharField(required=False, allow_null=True, default=None, min_length=1,
                                 max_length=PICTURE_MAX_LENGTH,
                                 help_text="Image to image: the starting picture. " + PICTURE_HELP +
                                           " It is cropped and resized to width x height (A1111's crop and resize).")
    init_image_id = serializers.UUIDField(required=False, allow_null=True, default=None, help_text=(
        "Remix: the id of one of your images or of a published one, used as init_image (give one of the two). "
        "Another user's private image answers 404."))
    strength = FiniteFloatField(required=False, default=_DEFAULTS.strength, help_text=(
        "How much of the init picture is repainted: above 0 up to 1 (A1111 `Denoising strength`)."))
    mask_image = StrictCharField(required=False, allow_null=True, default=None, min_length=1,
                                 max_length=PICTURE_MAX_LENGTH,
                                 help_text="Inpainting mask over the init picture, white = repaint, black = keep "
                                           "(same shape as the init picture). " + PICTURE_HELP)
    mask_blur = StrictIntegerField(required=False, default=_DEFAULTS.mask_blur,
                                   help_text="Feathering of the mask's edge in pixels (A1111 `Mask blur`).")
    hires_scale = FiniteFloatField(required=False, default=_DEFAULTS.hires_scale, help_text=(
        "Hires fix: 1 = off; above 1 draws at width x height, upscales by this factor and repaints at the final "
        "size, which must fit the size limit (A1111 `Hires upscale`)."))
    hires_steps = StrictIntegerField(required=False, default=_DEFAULTS.hires_steps,
                                     help_text="Steps of the hires pass; 0 = as many as `steps` (A1111 `Hires steps`).")
    hires_strength = FiniteFloatField(required=False, default=_DEFAULTS.hires_strength,
                                      help_text="Denoising strength of the hires pass, above 0 up to 1.")
    # A string checked by GenerationParams against the site's upscalers (registry names, like `model`, are no
    # schema enum), so an unknown name is one message naming the valid ones, as on the website.
    hires_upscaler = StrictCharField(min_length=1, max_length=100, required=False,
                                     default=_DEFAULTS.hires_upscaler, help_text=(
        "Upscaler of the hires pass: `Lanczos` (on pixels), `Latent` (on latents), or the name of an upscaler model "
        "this site registered (GET /api/models/, kind `upscaler`; ESRGAN family). Written in the PNG as A1111's "
        "`Hires upscaler`; an unknown name is a 400 listing the valid ones."))
    loras = LoraChoiceSerializer(many=True, required=False, default=list, help_text=(
        "LoRAs mixed onto the model, each `{\"name\": ..., \"scale\": ...}`, at most 5, each name once."))
    variation_seed = StrictIntegerField(required=False, default=_DEFAULTS.variation_seed, help_text=(
        "Variations: the second seed, -1 = random (A1111 `Variation seed`)."))
    variation_strength = FiniteFloatField(required=False, default=_DEFAULTS.variation_strength, help_text=(
        "0 = the seed's picture exactly, 1 = the variation seed's; 0.1-0.3 gives a variation of the same picture."))
    translate = serializers.ChoiceField(choices=TRANSLATIONS, required=False, default=_DEFAULTS.translate,
                                        allow_blank=True, help_text=(
        "`id` translates an Indonesian prompt to English before drawing; empty = off. Refused (400) while the "
        "site has no translation model (RETROPORTAL_TRANSLATE_MODEL)."))


def one_line_lora_errors(detail) -> list[str]:
    """DRF's nested errors of `loras` ([{"scale": [...]}, {}], or a list of strings) as one line per problem."""
    if not isinstance(detail, list):
        return [str(detail)]
    lines = []
    for index, item in enumerate(detail, 1):
        if isinstance(item, dict):
            lines += [f"LoRA {index}, {key}: {' '.join(str(m) for m in messages)}" for key, messages in item.items()]
        elif item:
            lines.append(str(item))
    return lines or ["is not a list of {\"name\": ..., \"scale\": ...}"]


def decode_pictures(values: dict, errors: dict, user, limits):
    """Replace the pictures' text (or init_image_id) in `values` by decoded pictures; returns the remixed image.

    Errors go into `errors` under the field's name; another user's private init_image_id raises NotFound."""
    source = None
    image_id = values.pop("init_image_id", None)
    if image_id is not None and values.get("init_image") is not None:
        errors.setdefault("init_image_id", ["give init_image or init_image_id, not both"])
    elif image_id is not None:
        try:
            source = inputs.source_image(user, image_id)
            values["init_image"] = inputs.picture_from_image(source, limits)
        except inputs.SourceImageNotFound as exc:
            raise NotFound(exc.message) from None
        except ParamError as exc:
            errors.setdefault(exc.field, [exc.message])
    for field in inputs.PICTURE_FIELDS:
        text = values.get(field)
        if isinstance(text, str):
            try:
                values[field] = inputs.picture_from_text(text, field, limits)
            except ParamError as exc:
                errors.setdefault(field, [exc.message])
                values.pop(field)
    return source


class JobCreativeSerializer(serializers.Serializer):
    """The creative controls as a job stored them (echoed in the job's `parameters`)."""

    init_image_id = serializers.UUIDField(source="init_image_source_id", allow_null=True, help_text=(
        "The image this job remixes, if any (null after that image was deleted, or for an uploaded picture)."))
    has_init_image = serializers.SerializerMethodField(help_text="True for image to image / inpainting.")
    has_mask_image = serializers.SerializerMethodField(help_text="True for inpainting.")
    strength = serializers.FloatField()
    mask_blur = serializers.IntegerField()
    hires_scale = serializers.FloatField()
    hires_steps = serializers.IntegerField()
    hires_strength = serializers.FloatField()
    hires_upscaler = serializers.CharField()
    loras = LoraChoiceSerializer(many=True)
    variation_seed = serializers.IntegerField()
    variation_strength = serializers.FloatField()
    translate = serializers.CharField(allow_blank=True)
    translated_prompt = serializers.CharField(allow_blank=True, help_text="The English prompt drawn (translate=id).")
    translated_negative_prompt = serializers.CharField(allow_blank=True)

    def get_has_init_image(self, job) -> bool:
        return bool(job.init_image)

    def get_has_mask_image(self, job) -> bool:
        return bool(job.mask_image)
