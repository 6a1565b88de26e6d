"""Generation parameters and their limits: one validated object shared by website, API, commands and workers.

Validation happens here, once, so every entry point refuses the same bad input with the same
message (which names the field, what is wrong and how to fix it).
"""
from dataclasses import dataclass, asdict

# Scheduler names users pick, mapped to diffusers classes in `generator.engine.schedulers`.
SCHEDULER_NAMES = ("pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "unipc")


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

    def side_within(self, side: int, top: int | None = None) -> int:
        """`side` moved inside [min_side, top] (default max_width) and down to a multiple of 8."""
        top = self.max_width if top is None else top
        side = max(self.min_side, min(side, top)) // 8 * 8
        return side if side >= self.min_side else side + 8


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
        if not -1 <= self.seed < 2**32:
            bad("seed", f"{self.seed} is out of range; use -1 (random) or 0 to {2**32 - 1}")
        elif self.seed >= 0 and self.seed + max(self.num_images, 1) - 1 >= 2**32:
            bad("seed", f"seed + num_images - 1 must stay below {2**32}; use at most {2**32 - max(self.num_images, 1)}")
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
        return errors

    def as_dict(self) -> dict:
        return asdict(self)
