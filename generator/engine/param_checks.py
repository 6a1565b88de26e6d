"""Validation of the creative controls (img2img, inpainting, hires fix, LoRAs, variations, translation).

A leaf module (params.py imports it, not the other way) so that file stays readable; GenerationParams.errors() merges these messages
with its own. Every message says what is wrong and gives a value that would itself pass.
"""
# A1111's names for the hires upscalers that need no model; upscaler models add theirs (Limits.upscalers).
HIRES_UPSCALERS = ("Lanczos", "Latent")
TRANSLATIONS = ("", "id")  # "" = off; "id" = Bahasa Indonesia -> English
SEED_RANGE = 2**32
LORA_SCALE = 2.0  # |scale| bound, as the A1111/Civitai sliders go
ASPECT_TOLERANCE = 0.02


def hires_side(side: int, scale: float) -> int:
    """Final side of a hires-fixed picture: side × scale rounded to a multiple of 8 (as A1111)."""
    return int(round(side * scale / 8)) * 8


def _num(value) -> str:
    """7.0 -> '7', 0.75 -> '0.75': numbers in messages as the user typed them."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _aspect(image) -> float:
    return image.width / image.height


def _strength(value: float, field: str) -> str | None:
    if not 0 < value <= 1:
        return f"{_num(value)} is out of range; use a number above 0 and at most 1, e.g. 0.75"
    return None


def creative_errors(p, limits) -> dict[str, list[str]]:
    """field -> messages for the creative fields of GenerationParams `p` under Limits `limits`."""
    errors: dict[str, list[str]] = {}

    def bad(field: str, message: str | None) -> None:
        if message:
            errors.setdefault(field, []).append(message)

    bad("strength", _strength(p.strength, "strength"))
    if p.mask_image is not None and p.init_image is None:
        bad("mask_image", "needs init_image (the picture to repaint); give both, or leave the mask out")
    if p.mask_image is not None and p.init_image is not None:
        if abs(_aspect(p.mask_image) / _aspect(p.init_image) - 1) > ASPECT_TOLERANCE:
            bad("mask_image", f"is {p.mask_image.width}x{p.mask_image.height} but init_image is "
                              f"{p.init_image.width}x{p.init_image.height}; paint the mask over the picture itself "
                              "(same shape)")
    if not 0 <= p.mask_blur <= limits.max_mask_blur:
        bad("mask_blur", f"{p.mask_blur} is out of range; use 0 to {limits.max_mask_blur} pixels, e.g. 4")

    if not 1 <= p.hires_scale <= limits.max_hires_scale:
        bad("hires_scale", f"{_num(p.hires_scale)} is out of range; use 1 (off) to {limits.max_hires_scale:g}, e.g. 2")
    elif p.is_hires:  # off (1): width/height themselves are checked, with their own messages
        width, height = p.final_size
        if width > limits.max_width or height > limits.max_height:
            fits = min(limits.max_width / p.width, limits.max_height / p.height)
            fits = max(1.0, int(fits * 100) / 100)
            bad("hires_scale", f"{p.hires_scale:g} makes {width}x{height}, above the {limits.max_width}x"
                               f"{limits.max_height} limit; use at most {fits:g}")
        elif hires_side(p.width, p.hires_scale) <= p.width:
            bad("hires_scale", f"{p.hires_scale:g} does not enlarge {p.width}x{p.height}; use 1 (off) or at least 1.25")
    if not 0 <= p.hires_steps <= limits.max_steps:
        bad("hires_steps", f"{p.hires_steps} is out of range; use 0 (same as steps) to {limits.max_steps}")
    bad("hires_strength", _strength(p.hires_strength, "hires_strength"))
    upscalers = HIRES_UPSCALERS + tuple(limits.upscalers)
    if p.hires_upscaler not in upscalers:
        bad("hires_upscaler", f"unknown upscaler {p.hires_upscaler!r}; valid: {', '.join(upscalers)}")

    if len(p.loras) > limits.max_loras:
        bad("loras", f"{len(p.loras)} LoRAs given; use at most {limits.max_loras}")
    seen = set()
    for lora in p.loras:
        if not lora.name or not str(lora.name).strip():
            bad("loras", "a LoRA without a name; give each one a registered LoRA name")
        elif lora.name in seen:
            bad("loras", f"LoRA {lora.name!r} is listed twice; list it once with the sum of the scales")
        seen.add(lora.name)
        if not isinstance(lora.scale, (int, float)) or not -LORA_SCALE <= lora.scale <= LORA_SCALE:
            bad("loras", f"LoRA {lora.name!r} has scale {_num(lora.scale)}; use -{LORA_SCALE:g} to {LORA_SCALE:g}, e.g. 0.8")

    if not -1 <= p.variation_seed < SEED_RANGE:
        bad("variation_seed", f"{p.variation_seed} is out of range; use -1 (random) or 0 to {SEED_RANGE - 1}")
    elif p.variation_seed >= 0 and p.variation_seed + max(p.num_images, 1) - 1 >= SEED_RANGE:
        bad("variation_seed", f"variation_seed + num_images - 1 must stay below {SEED_RANGE}; "
                              f"use at most {SEED_RANGE - max(p.num_images, 1)}")
    if not 0 <= p.variation_strength <= 1:
        bad("variation_strength", f"{_num(p.variation_strength)} is out of range; use 0 (off) to 1, e.g. 0.1")
    if p.translate not in TRANSLATIONS:
        bad("translate", f"unknown translation {p.translate!r}; use 'id' (Bahasa Indonesia to English) or '' (off)")
    return errors
