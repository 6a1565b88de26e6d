"""Generation parameters and their limits: one validated object shared by website, API, commands and workers.

Validation happens here, once, so every entry point refuses the same bad input with the same
message (which names the field, what is wrong and how to fix it). The creative controls of issue 13
(img2img, inpainting, hires fix, LoRA mixing, variations, translation) are fields here too, checked
in `param_checks`; their A1111 infotext keys are written by `generation_info`.

Pictures (`init_image`, `mask_image`) arrive decoded (PIL images made by `pictures.read_picture`):
the engine never opens a path or URL a user typed.
"""
from dataclasses import dataclass, fields, replace

from PIL import Image

from .param_checks import HIRES_UPSCALERS, SEED_RANGE, TRANSLATIONS, creative_errors, hires_side

# Scheduler names users pick, mapped to diffusers classes in `generator.engine.schedulers`.
SCHEDULER_NAMES = ("pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "unipc")
PICTURE_FIELDS = ("init_image", "mask_image")


class ParamError(ValueError):
    """Generation parameters are invalid. `errors` maps every bad field (form/API name) to its messages;
    `field` and `message` are the first one, for callers that show one line."""

    def __init__(self, field: str, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors = errors or {field: [message]}

    @classmethod
    def from_errors(cls, errors: dict[str, list[str]]) -> "ParamError":
        field, messages = next(iter(errors.items()))
        error = cls(field, messages[0], errors)
        error.args = ("; ".join(f"{name}: {m}" for name, ms in errors.items() for m in ms),)
        return error


@dataclass(frozen=True)
class Limits:
    """Server-side bounds; the website, the API and the CLI all enforce the same ones."""

    max_width: int = 1024
    max_height: int = 1024
    max_steps: int = 100
    max_images: int = 4
    max_guidance: float = 30.0
    min_side: int = 64
    max_hires_scale: float = 4.0
    max_loras: int = 5
    max_mask_blur: int = 64
    max_upload_bytes: int = 10 * 1024 * 1024
    max_upload_pixels: int = 4096 * 4096
    # Upscaler models this site has (registry names, beside Lanczos and Latent): the one list `hires_upscaler`
    # is checked against. The Django layer fills it from the registry; the engine knows no registry.
    upscalers: tuple[str, ...] = ()

    def side_within(self, side: int, top: int | None = None) -> int:
        """`side` moved inside [min_side, top] (default max_width) and down to a multiple of 8."""
        top = self.max_width if top is None else top
        side = max(self.min_side, min(side, top)) // 8 * 8
        return side if side >= self.min_side else side + 8


@dataclass(frozen=True)
class LoraChoice:
    """One LoRA mixed into a generation: a registry `name` at `scale` (-2..2).

    `source` (file or folder) is filled by the worker or the CLI from the registry, never from a
    user's request; `base_architecture` is the architecture the LoRA was trained on, when known.
    """

    name: str
    scale: float = 1.0
    source: str = ""
    base_architecture: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "scale": self.scale}


def _lora(value) -> LoraChoice:
    if isinstance(value, LoraChoice):
        return value
    if isinstance(value, dict):
        return LoraChoice(**value)
    raise TypeError(f"a LoRA is {{'name': ..., 'scale': ...}}, not {value!r}")


@dataclass(frozen=True)
class GenerationParams:
    prompt: str
    negative_prompt: str = ""
    seed: int = -1  # -1 = pick a random seed; image i of a job uses seed + i
    steps: int = 20
    guidance_scale: float = 7.0
    width: int = 512
    height: int = 512
    num_images: int = 1
    scheduler: str = "dpmpp_2m"
    # img2img / inpainting
    init_image: Image.Image | None = None
    strength: float = 0.75
    mask_image: Image.Image | None = None
    mask_blur: int = 4
    # hires fix: width x height is the base pass, width*hires_scale the final picture
    hires_scale: float = 1.0
    hires_steps: int = 0  # 0 = as many as `steps` (A1111)
    hires_strength: float = 0.5
    hires_upscaler: str = "Lanczos"
    loras: tuple[LoraChoice, ...] = ()
    variation_seed: int = -1  # -1 = random when variation_strength > 0; image i uses variation_seed + i
    variation_strength: float = 0.0
    translate: str = ""

    def __post_init__(self):
        # Accept the JSON shape ([{"name", "scale"}]) and lists: the object stays hashable and frozen.
        object.__setattr__(self, "loras", tuple(_lora(value) for value in (self.loras or ())))

    # -- derived numbers -------------------------------------------------------------------------------
    @property
    def is_img2img(self) -> bool:
        return self.init_image is not None

    @property
    def is_hires(self) -> bool:
        return self.hires_scale > 1

    @property
    def final_size(self) -> tuple[int, int]:
        """(width, height) of the pictures this job returns (after the hires pass, if any)."""
        if not self.is_hires:
            return self.width, self.height
        return hires_side(self.width, self.hires_scale), hires_side(self.height, self.hires_scale)

    def base_steps(self) -> int:
        """Denoising steps of the first pass: img2img runs int(steps * strength), as diffusers and A1111 do."""
        if self.is_img2img:
            return max(1, min(int(self.steps * self.strength), self.steps))
        return self.steps

    def hires_pass_steps(self) -> int:
        """Steps the hires img2img pass runs (hires_steps or steps, times hires_strength); 0 without hires."""
        if not self.is_hires:
            return 0
        requested = self.hires_steps or self.steps
        return max(1, min(int(requested * self.hires_strength), requested))

    def steps_per_image(self) -> int:
        return self.base_steps() + self.hires_pass_steps()

    def total_steps(self) -> int:
        """What a progress bar counts for the whole job: steps_per_image() × num_images."""
        return self.steps_per_image() * self.num_images

    # -- validation ------------------------------------------------------------------------------------
    def validate(self, limits: Limits = Limits()) -> "GenerationParams":
        """Return self if every field is acceptable, else raise ParamError listing every bad field."""
        errors = self.errors(limits)
        if errors:
            raise ParamError.from_errors(errors)
        return self

    def errors(self, limits: Limits = Limits()) -> dict[str, list[str]]:
        """field -> messages for every bad field; each says what is wrong and a fix that is itself valid."""
        errors: dict[str, list[str]] = {}

        def bad(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if not self.prompt or not self.prompt.strip():
            bad("prompt", "is empty; describe the character you want, e.g. 'retro anime style, a girl with a hat'")
        if not -1 <= self.seed < SEED_RANGE:
            bad("seed", f"{self.seed} is out of range; use -1 (random) or 0 to {SEED_RANGE - 1}")
        elif self.seed >= 0 and self.seed + max(self.num_images, 1) - 1 >= SEED_RANGE:
            bad("seed", f"seed + num_images - 1 must stay below {SEED_RANGE}; use at most {SEED_RANGE - max(self.num_images, 1)}")
        if not 1 <= self.steps <= limits.max_steps:
            bad("steps", f"{self.steps} is out of range; use 1 to {limits.max_steps}")
        if not 0 <= self.guidance_scale <= limits.max_guidance:
            bad("guidance_scale", f"{self.guidance_scale} is out of range; use 0 to {limits.max_guidance}")
        for field, value, top in (("width", self.width, limits.max_width), ("height", self.height, limits.max_height)):
            if not limits.min_side <= value <= top:
                bad(field, f"{value} is out of range; use a multiple of 8 from {limits.min_side} to {top}, "
                           f"e.g. {limits.side_within(value, top)}")
            elif value % 8:
                bad(field, f"{value} is not a multiple of 8; use e.g. {limits.side_within(value, top)}")
        if not 1 <= self.num_images <= limits.max_images:
            bad("num_images", f"{self.num_images} is out of range; use 1 to {limits.max_images}")
        if self.scheduler not in SCHEDULER_NAMES:
            bad("scheduler", f"unknown scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULER_NAMES)}")
        for field, messages in creative_errors(self, limits).items():
            for message in messages:
                bad(field, message)
        return errors

    # -- storage ---------------------------------------------------------------------------------------
    def as_dict(self) -> dict:
        """What a job row stores: every field but the pictures (stored as files), LoRAs as [{"name", "scale"}]."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PICTURE_FIELDS}
        data["loras"] = [lora.as_dict() for lora in self.loras]
        return data

    def with_pictures(self, init_image=None, mask_image=None) -> "GenerationParams":
        return replace(self, init_image=init_image, mask_image=mask_image)



SITE_DEFAULTS = GenerationParams(prompt="")  # the website's, API's and CLI's defaults where nothing else sets one
