"""Generation parameters and their limits: one validated object shared by website, API, commands and workers.

Validation happens here, once, so every entry point refuses the same bad input with the same
message (which names the field, what is wrong and how to fix it).
"""
from dataclasses import dataclass, asdict

# Scheduler names users pick, mapped to diffusers classes in `generator.engine.schedulers`.
SCHEDULER_NAMES = ("pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "unipc")


class ParamError(ValueError):
    """A generation parameter is invalid. `field` names it (form/API field name)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Server-side bounds; the website, the API and the CLI all enforce the same ones."""

    max_width: int = 1024
    max_height: int = 1024
    max_steps: int = 100
    max_images: int = 4
    max_guidance: float = 30.0
    min_side: int = 64


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

    def validate(self, limits: Limits = Limits()) -> "GenerationParams":
        """Return self if every field is acceptable, else raise ParamError naming the first bad field."""
        if not self.prompt or not self.prompt.strip():
            raise ParamError("prompt", "is empty; describe the character you want, e.g. 'retro anime style, a girl with a hat'")
        if not -1 <= self.seed < 2**32:
            raise ParamError("seed", f"{self.seed} is out of range; use -1 (random) or 0 to {2**32 - 1}")
        if self.seed >= 0 and self.seed + self.num_images - 1 >= 2**32:
            raise ParamError("seed", f"seed + num_images - 1 must stay below {2**32}")
        if not 1 <= self.steps <= limits.max_steps:
            raise ParamError("steps", f"{self.steps} is out of range; use 1 to {limits.max_steps}")
        if not 0 <= self.guidance_scale <= limits.max_guidance:
            raise ParamError("guidance_scale", f"{self.guidance_scale} is out of range; use 0 to {limits.max_guidance}")
        for field, value, top in (("width", self.width, limits.max_width), ("height", self.height, limits.max_height)):
            if value % 8:
                raise ParamError(field, f"{value} is not a multiple of 8; use e.g. {max(8, value // 8 * 8)}")
            if not limits.min_side <= value <= top:
                raise ParamError(field, f"{value} is out of range; use {limits.min_side} to {top}")
        if not 1 <= self.num_images <= limits.max_images:
            raise ParamError("num_images", f"{self.num_images} is out of range; use 1 to {limits.max_images}")
        if self.scheduler not in SCHEDULER_NAMES:
            raise ParamError("scheduler", f"unknown scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULER_NAMES)}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)
