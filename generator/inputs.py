"""What a user hands a generation besides numbers: pictures (uploads, base64 / data URLs, a remixed image)
and LoRA choices, turned into what GenerationParams holds, with one-line errors naming the field.

Shared by the website form and the API serializer, so both refuse the same input with the same message.
Pictures are decoded by the engine (`generator.engine.pictures`: PNG/JPEG/WebP only, size and pixel
limits, decompression bombs) and stored on the job by `store_pictures` under generated names: nothing a
user typed ever becomes a path.
"""
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import Q

from generator.engine import pictures
from generator.engine.param_checks import HIRES_UPSCALERS
from generator.engine.params import Limits, LoraChoice, ParamError
from generator.models import AIModel, GeneratedImage

PICTURE_FIELDS = ("init_image", "mask_image")
log = logging.getLogger(__name__)


class SourceImageNotFound(Exception):
    """init_image_id names no image the user may remix (none, or another user's private one): a 404."""

    field = "init_image_id"

    def __init__(self, image_id):
        super().__init__(f"No image {image_id} that you can remix (your own, or a published one).")
        self.message = str(self)


def remixable(user):
    """Images `user` may use as init_image_id: their own and published ones (never another user's private one,
    not even for staff, whose visible_to() sees everything for moderation)."""
    return GeneratedImage.objects.visible_to(user).filter(Q(owner=user) | Q(is_public=True))


def source_image(user, image_id) -> GeneratedImage:
    """The image `image_id` if `user` may remix it, else SourceImageNotFound (also for malformed ids)."""
    try:
        image = remixable(user).filter(pk=image_id).first()
    except (ValidationError, ValueError, TypeError):  # a malformed UUID
        image = None
    if image is None:
        raise SourceImageNotFound(image_id)
    return image


def picture_from_bytes(data: bytes, field: str, limits: Limits):
    """A decoded picture (RGB for init_image, L for mask_image) or ParamError naming `field`."""
    return pictures.read_picture(data, field, limits)


def picture_from_upload(upload, field: str, limits: Limits):
    """An uploaded file (Django UploadedFile): its size is checked before it is read into memory."""
    if upload.size is not None and upload.size > limits.max_upload_bytes:
        raise ParamError(field, f"the file is {upload.size / 2**20:.1f} MiB, above the "
                                f"{limits.max_upload_bytes / 2**20:g} MiB upload limit; send a smaller picture")
    upload.seek(0)
    return picture_from_bytes(upload.read(limits.max_upload_bytes + 1), field, limits)


def picture_from_text(text: str, field: str, limits: Limits):
    """A base64 string or a data:image/...;base64, URL (the JSON API's encoding)."""
    # base64 is 4/3 of the bytes: refuse a far too long string before decoding it.
    if len(text) > limits.max_upload_bytes * 4 // 3 + 200:
        raise ParamError(field, f"the picture is above the {limits.max_upload_bytes / 2**20:g} MiB upload limit; "
                                "send a smaller picture")
    return picture_from_bytes(pictures.decode_base64(text, field), field, limits)


def picture_from_image(image: GeneratedImage, limits: Limits):
    """The picture of a stored image (for init_image_id)."""
    try:
        with image.file.open("rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ValueError):
        raise ParamError("init_image_id", "that image's file is missing from storage; pick another image") from None
    return picture_from_bytes(data, "init_image_id", limits)


def lora_errors(model: AIModel | None, loras) -> list[str]:
    """Messages for LoRA choices that name no active registered LoRA or one made for another architecture."""
    names = [choice.name for choice in loras if getattr(choice, "name", None)]
    found = {m.name: m for m in AIModel.objects.filter(name__in=names, kind=AIModel.Kind.LORA, is_active=True)
             .select_related("parent")}
    messages = []
    wanted = model.base_architecture if model is not None else ""
    for name in dict.fromkeys(names):
        lora = found.get(name)
        if lora is None:
            known = ", ".join(AIModel.objects.filter(kind=AIModel.Kind.LORA, is_active=True)
                              .values_list("name", flat=True)) or "none registered"
            messages.append(f"unknown LoRA {name!r}; registered LoRAs: {known}")
            continue
        arch = lora.base_architecture
        if wanted and arch and arch != wanted:
            parent = f" (base {lora.parent.name!r})" if lora.parent is not None else ""
            messages.append(f"LoRA {name!r} is for {arch}{parent} but model {model.name!r} is {wanted}; "
                            f"pick a LoRA made for {wanted}")
    return messages


def lora_choices(value) -> tuple[list[LoraChoice], list[str]]:
    """([LoraChoice], errors) from the JSON shape [{"name": ..., "scale": ...}]; `source` is never user input."""
    if value in (None, ""):
        return [], []
    if not isinstance(value, list):
        return [], ['must be a list like [{"name": "retro-style", "scale": 0.8}]']
    choices, errors = [], []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "scale"} or not isinstance(item.get("name"), str):
            errors.append('each LoRA is {"name": <registered LoRA>, "scale": -2 to 2}, e.g. '
                          '{"name": "retro-style", "scale": 0.8}')
            continue
        scale = item.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale != scale:
            errors.append(f"LoRA {item['name']!r}: scale must be a number from -2 to 2, e.g. 0.8")
            continue
        choices.append(LoraChoice(name=item["name"], scale=float(scale)))
    return choices, errors


def upscaler_choices() -> list[tuple[str, str]]:
    """(value, label) of every hires upscaler: Lanczos, Latent, then each registered upscaler with its scale.
    The names are the ones site_limits() accepts (both read AIModel.objects.upscalers())."""
    return [(name, name) for name in HIRES_UPSCALERS] + [
        (m.name, f"{m.name} ({m.architecture} ×{m.upscale_factor})") for m in AIModel.objects.upscalers()]


def translate_errors(params) -> list[str]:
    if params.translate and not getattr(settings, "RETROPORTAL_TRANSLATE_MODEL", ""):
        return [TRANSLATION_OFF]
    return []


TRANSLATION_OFF = ("translation is off on this site: an admin sets RETROPORTAL_TRANSLATE_MODEL (e.g. "
                   "Helsinki-NLP/opus-mt-id-en) and restarts the worker; leave translate empty meanwhile")


def request_errors(model: AIModel | None, params) -> dict[str, list[str]]:
    """What GenerationParams cannot know: LoRAs exist and fit the model, translation is configured."""
    errors = {}
    if lora := lora_errors(model, params.loras):
        errors["loras"] = lora
    if translate := translate_errors(params):
        errors["translate"] = translate
    return errors


def delete_stored(job, names) -> None:
    storage = job._meta.get_field("init_image").storage
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            log.warning("could not remove %s after a failed submission", name, exc_info=True)


def store_pictures(job, params) -> list[str]:
    """Save params' pictures as PNGs in the job's file fields under random names; returns the stored names.

    Called inside the job's creating transaction; the caller deletes the returned names if it fails.
    """
    stored = []
    for field in PICTURE_FIELDS:
        picture = getattr(params, field)
        if picture is None:
            continue
        getattr(job, field).save(f"{secrets.token_hex(16)}.png", ContentFile(pictures.to_png(picture)), save=False)
        stored.append(getattr(job, field).name)
    return stored
