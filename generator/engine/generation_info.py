"""What one picture's infotext says about the creative controls, with AUTOMATIC1111's own keys.

A1111 (and Civitai, Fooocus, ComfyUI importers) read these keys back: `Denoising strength`, `Mask blur`,
`Hires upscale`, `Hires steps`, `Hires upscaler`, `Variation seed`, `Variation seed strength`,
`Lora hashes`, and `<lora:NAME:SCALE>` in the prompt. Each key appears only when its control is on, as
A1111 writes them. Translation has no A1111 key: the prompt line is the English text the model saw,
and `Original prompt`/`Translate` record what the user typed.
"""
from dataclasses import dataclass, field


@dataclass
class LoraInfo:
    alias: str  # A1111's name for the file (hashes.a1111_lora_name)
    hash: str
    scale: float


@dataclass
class Translation:
    prompt: str
    negative_prompt: str
    source_language: str = "id"


@dataclass
class PictureInfo:
    """Everything beyond the base infotext fields, for one picture."""

    loras: list[LoraInfo] = field(default_factory=list)
    variation_seed: int | None = None
    translation: Translation | None = None


def lora_tags(loras: list[LoraInfo]) -> str:
    return " ".join(f"<lora:{lora.alias}:{lora.scale:g}>" for lora in loras)


def prompt_line(prompt: str, loras: list[LoraInfo]) -> str:
    """The prompt as A1111 writes it: the LoRA tags that activate the same LoRAs there appended."""
    return " ".join(filter(None, [prompt, lora_tags(loras)]))


def extra_fields(params, info: PictureInfo, original_prompt: str, original_negative: str) -> dict:
    """A1111 keys (ordered as A1111 writes them) for the controls `params` turns on."""
    extra: dict = {}
    if params.init_image is not None:
        extra["Denoising strength"] = f"{params.strength:g}"
        if params.mask_image is not None:
            extra["Mask blur"] = params.mask_blur
    if info.variation_seed is not None and params.variation_strength > 0:
        extra["Variation seed"] = info.variation_seed
        extra["Variation seed strength"] = f"{params.variation_strength:g}"
    if params.is_hires:
        if params.init_image is None:
            extra["Denoising strength"] = f"{params.hires_strength:g}"
        else:
            extra["Hires denoising strength"] = f"{params.hires_strength:g}"
        extra["Hires upscale"] = f"{params.hires_scale:g}"
        if params.hires_steps:
            extra["Hires steps"] = params.hires_steps
        extra["Hires upscaler"] = params.hires_upscaler
    if info.loras:
        extra["Lora hashes"] = ", ".join(f"{lora.alias}: {lora.hash}" for lora in info.loras)
    if info.translation is not None:
        extra["Translate"] = f"{info.translation.source_language}-en"
        extra["Original prompt"] = original_prompt
        if original_negative:
            extra["Original negative prompt"] = original_negative
    return extra
