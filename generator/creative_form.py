"""The creative controls of the generate form (issue 13): image to image and inpainting, hires fix, LoRAs,
variations, translation. Field names are GenerationParams' (and the API's); GenerateForm inherits them.

Pictures are uploads here (`init_image`, and `mask_image`, which the page's mask canvas fills with its PNG),
or `init_image_id` (set by "Remix" on an image page). They are decoded by generator.inputs, the code path
the API uses, so both refuse a bad picture with the same one-line message naming the field.
"""
import json

from django import forms
from django.conf import settings

from generator import inputs
from generator.engine.params import GenerationParams, ParamError

_DEFAULTS = GenerationParams(prompt="x")
CREATIVE_FIELDS = ("strength", "mask_blur", "hires_scale", "hires_steps", "hires_strength", "hires_upscaler",
                   "variation_seed", "variation_strength")
PICTURE_ACCEPT = "image/png,image/jpeg,image/webp"


class CreativeFields(forms.Form):
    # Every field is optional: left out, it keeps GenerationParams' default (as in the API).
    init_image = forms.FileField(
        required=False, label="Start from a picture", widget=forms.ClearableFileInput(attrs={"accept": PICTURE_ACCEPT}),
        help_text="PNG, JPEG or WebP; cropped and resized to the size above.",
    )
    init_image_id = forms.CharField(required=False, widget=forms.HiddenInput())
    strength = forms.FloatField(required=False, initial=_DEFAULTS.strength, label="Denoising strength",
                                help_text="How much is repainted: low keeps the picture, 1 repaints it all.")
    mask_image = forms.FileField(
        required=False, label="Mask (white = repaint)", widget=forms.ClearableFileInput(attrs={"accept": PICTURE_ACCEPT}),
        help_text="Paint it over the picture, or upload one of the picture's shape.",
    )
    mask_blur = forms.IntegerField(required=False, initial=_DEFAULTS.mask_blur, label="Mask blur (px)")
    hires_scale = forms.FloatField(required=False, initial=_DEFAULTS.hires_scale, label="Hires upscale",
                                   help_text="1 = off; 2 draws at the size above, then doubles it.")
    hires_steps = forms.IntegerField(required=False, initial=_DEFAULTS.hires_steps, help_text="0 = as many as steps.")
    hires_strength = forms.FloatField(required=False, initial=_DEFAULTS.hires_strength,
                                      label="Hires denoising strength")
    # A <select> of Lanczos, Latent and the registered upscalers (set per form, from the registry) on a plain
    # field: an unknown name gets GenerationParams' message, which lists the valid ones, as in the API.
    hires_upscaler = forms.CharField(required=False, initial=_DEFAULTS.hires_upscaler, widget=forms.Select(),
                                     help_text="Lanczos, Latent, or an upscaler model the admin registered.")
    loras = forms.CharField(required=False, widget=forms.HiddenInput())  # JSON, written by the LoRA picker
    variation_seed = forms.IntegerField(required=False, initial=_DEFAULTS.variation_seed,
                                        help_text="-1 picks a random one; image i uses variation seed + i.")
    variation_strength = forms.FloatField(required=False, initial=_DEFAULTS.variation_strength,
                                          help_text="0 = the seed's picture; 0.1–0.3 = a variation of it.")
    translate = forms.BooleanField(required=False, label="Prompt is in Bahasa Indonesia (translate to English)")

    creative_groups = {
        "img2img": ("init_image", "init_image_id", "strength", "mask_image", "mask_blur"),
        "hires": ("hires_scale", "hires_steps", "hires_strength", "hires_upscaler"),
        "variation": ("variation_seed", "variation_strength"),
    }

    def setup_creative(self, user, limits):
        self.user, self.limits = user, limits
        attrs = {
            "strength": {"min": 0.01, "max": 1, "step": 0.05},
            "mask_blur": {"min": 0, "max": limits.max_mask_blur},
            "hires_scale": {"min": 1, "max": limits.max_hires_scale, "step": 0.25},
            "hires_steps": {"min": 0, "max": limits.max_steps},
            "hires_strength": {"min": 0.01, "max": 1, "step": 0.05},
            "variation_seed": {"min": -1, "max": 2**32 - 1},
            "variation_strength": {"min": 0, "max": 1, "step": 0.05},
        }
        for name, extra in attrs.items():
            self.fields[name].widget.attrs.update(extra)
        self.fields["hires_upscaler"].widget.choices = inputs.upscaler_choices()
        self.translation_on = bool(getattr(settings, "RETROPORTAL_TRANSLATE_MODEL", ""))
        if not self.translation_on:
            self.fields["translate"].disabled = True
            self.fields["translate"].help_text = inputs.TRANSLATION_OFF.replace("; leave translate empty meanwhile", ".")
        else:
            self.fields["translate"].help_text = f"Translated with {settings.RETROPORTAL_TRANSLATE_MODEL} first."
        self.init_image_source = None

    def creative_values(self, data: dict) -> dict:
        """The creative GenerationParams fields from cleaned `data` (pictures decoded); errors are added to the form."""
        # Left out (an older form, a script): the GenerationParams default.
        values = {name: data[name] for name in CREATIVE_FIELDS if data.get(name) not in (None, "")}
        values["translate"] = "id" if data.get("translate") else ""
        values.update(self._pictures(data))
        choices = self._loras(data.get("loras") or "")
        if choices is not None:
            values["loras"] = choices
        return values

    def _pictures(self, data: dict) -> dict:
        values = {}
        image_id, upload = data.get("init_image_id"), data.get("init_image")
        if upload:
            values["init_image"] = self._decode(lambda: inputs.picture_from_upload(upload, "init_image", self.limits))
        elif image_id:
            try:
                self.init_image_source = inputs.source_image(self.user, image_id)
            except inputs.SourceImageNotFound as exc:
                self.add_error("init_image", exc.message)
            else:
                values["init_image"] = self._decode(
                    lambda: inputs.picture_from_image(self.init_image_source, self.limits), "init_image")
        if data.get("mask_image"):
            values["mask_image"] = self._decode(
                lambda: inputs.picture_from_upload(data["mask_image"], "mask_image", self.limits))
        return {name: value for name, value in values.items() if value is not None}

    def _decode(self, read, field=None):
        try:
            return read()
        except ParamError as exc:
            self.add_error(field or exc.field, exc.message)
            return None

    def _loras(self, text: str):
        try:
            value = json.loads(text) if text.strip() else []
        except ValueError:
            self.add_error("loras", 'is not a list like [{"name": "retro-style", "scale": 0.8}]')
            return None
        choices, errors = inputs.lora_choices(value)
        for message in errors:
            self.add_error("loras", message)
        return None if errors else choices

    def lora_rows(self) -> list[dict]:
        """The picker's rows as submitted (so a refused form shows the LoRAs the user had picked)."""
        try:
            value = json.loads(self["loras"].value() or "[]")
        except (TypeError, ValueError):
            return []
        return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []
