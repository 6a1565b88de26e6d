"""What an evaluation generates and measures: one dataclass with one set of defaults, used by
`manage.py evaluate`, the admin's 'evaluate' action, the Evaluation row's `settings` JSON and `evaluate()`.

Sizes, CLIP and DINO left at None are decided where the knowledge is: the base model's native size,
RETROPORTAL_CLIP_MODEL and RETROPORTAL_DINO_MODEL (`resolved`). Django-free.
"""
import dataclasses
from dataclasses import dataclass

NEAR_COPY_THRESHOLD = 0.9  # max similarity to a training picture from which a picture is a near copy (metrics.py)
OFF = ("", "none", "off")  # dino_model values that switch DINO off (memorization is then measured with CLIP)


class EvalConfigError(ValueError):
    """An unknown or out-of-range evaluation setting; the message names it."""


@dataclass(frozen=True)
class EvalConfig:
    images_per_prompt: int = 2
    steps: int = 25
    width: int | None = None  # None: the model's native size
    height: int | None = None
    seed: int = 1234  # image j of every prompt uses seed + j
    guidance_scale: float = 7.0
    scheduler: str = "dpmpp_2m"
    negative_prompt: str = ""
    prompt_keys: list[str] | None = None  # None: every concept of the suite
    languages: list[str] | None = None  # None: every language of the suite
    clip_model: str | None = None  # open_clip spec; None: RETROPORTAL_CLIP_MODEL
    dino_model: str | None = None  # hub id or folder; None: RETROPORTAL_DINO_MODEL; 'none' switches DINO off
    near_copy_threshold: float = NEAR_COPY_THRESHOLD
    references: str | None = None  # the training (reference) pictures' folder

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def updated(self, values: dict | None, source: str = "evaluation") -> "EvalConfig":
        """A copy with `values` applied (None values keep the current one); unknown keys are refused by name."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(self.names()))
        if unknown:
            valid = ", ".join(n for n in self.names() if n != "references")
            raise EvalConfigError(f"{source}: unknown evaluation setting(s) {', '.join(unknown)}; valid: {valid}")
        for key in ("prompt_keys", "languages"):
            if isinstance(values.get(key), str):
                values[key] = [k.strip() for k in values[key].split(",") if k.strip()] or None
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_dict(cls, values: dict | None, source: str = "evaluation") -> "EvalConfig":
        return cls().updated(values, source)

    def resolved(self, native_size: int | None, clip_model: str, dino_model: str | None) -> "EvalConfig":
        """Every None decided: sizes from the model, CLIP/DINO from the site's settings; then validated."""
        dino = self.dino_model if self.dino_model is not None else dino_model
        config = dataclasses.replace(
            self, width=int(self.width or native_size or 512), height=int(self.height or native_size or 512),
            clip_model=self.clip_model or clip_model,
            dino_model=None if dino is None or str(dino).strip().lower() in OFF else str(dino))
        config.validate()
        return config

    def validate(self) -> None:
        for key in ("images_per_prompt", "steps"):
            if int(getattr(self, key)) < 1:
                raise EvalConfigError(f"{key.replace('_', '-')}: must be at least 1")
        if not 0 <= self.seed < 2**32 - self.images_per_prompt:
            raise EvalConfigError(f"seed: {self.seed}: use 0 to {2**32 - self.images_per_prompt - 1} "
                                  "(evaluations need fixed seeds)")
        if not -1.0 <= self.near_copy_threshold <= 1.0:
            raise EvalConfigError(f"near-copy-threshold: {self.near_copy_threshold} is not a cosine in [-1, 1]")

    def as_dict(self) -> dict:
        """What the Evaluation row stores (JSON): every setting, with lists as lists."""
        return dataclasses.asdict(self)
