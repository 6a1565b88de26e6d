"""Every knob of a DreamBooth run, in one typed dataclass, validated before any model is loaded.

`load_config(toml_path, cli_overrides)` merges a TOML file and command-line flags (flags win). TOML
keys are the flag names with underscores (`--batch-size` -> `batch_size`). Unknown keys and bad
values raise ConfigError naming the key, so a typo never silently trains with a default.
"""
import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from generator.engine.export import EXPORT_DTYPES
from generator.engine.files import write_atomic

METHODS = ("full", "lora")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "linear")
MIXED_PRECISION = ("no", "fp16", "bf16")
# Settings that may differ between a run and its resumption (they do not change the trained weights
# up to the step where the run stopped).
RESUMABLE_CHANGES = frozenset(
    {"resume", "max_steps", "checkpoint_steps", "checkpoints_total_limit", "validation_steps",
     "validation_prompts", "validation_inference_steps", "output_name", "training_comment", "export_single_file",
     "export_dtype", "log_every", "compile"}
)


class ConfigError(ValueError):
    """A setting is unknown or out of range. `field` names it (like ParamError; None when the message lists
    several unknown ones) and `message` says what is wrong; str() is 'field: message'."""

    def __init__(self, field: str | None, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass
class TrainConfig:
    base_model: str  # diffusers pipeline folder (SD 1.x / 2.x)
    dataset: str  # prepared folder: images + same-stem .txt captions (+ optional manifest.json)
    out: str
    instance_prompt: str
    method: str = "lora"  # full | lora
    rank: int = 4
    alpha: float | None = None  # LoRA alpha; None = rank (scale 1)
    resolution: int = 512
    bucket_step: int = 64  # bucket sides are multiples of this (64 for SD: latents / 8, UNet / 8)
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_steps: int = 400
    checkpoint_steps: int = 100  # 0 = only at cancellation
    checkpoints_total_limit: int = 2  # keep the last K checkpoints
    validation_steps: int = 0  # 0 = only the final grid
    validation_prompts: list[str] = field(default_factory=list)  # default: [instance_prompt]
    validation_inference_steps: int = 25
    learning_rate: float = 1e-4
    text_encoder_lr: float | None = None  # None = learning_rate
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    seed: int = 0
    train_text_encoder: bool = False
    stop_text_encoder_after: int | None = None  # optimizer steps; None = train it to the end
    with_prior_preservation: bool = False
    class_prompt: str = ""
    class_data_dir: str | None = None  # None = a cache folder per (base model, class prompt)
    num_class_images: int = 100
    class_inference_steps: int = 25
    prior_loss_weight: float = 1.0
    # Each comma-separated tag of a caption (instance and class pictures) is left out of a step's prompt with
    # this probability (kohya's caption_tag_dropout_rate); a tag holding the instance or class prompt never is.
    # The model also trains on shorter prompts than its captions (on the mini-world's sentence captions it did not
    # help: docs/miniworld/bench.md, "v7 retro recipe, continued").
    caption_tag_dropout: float = 0.0
    # Each step's caption is replaced by the empty prompt with this probability (kohya's caption_dropout_rate),
    # so the fine-tune also learns the unconditional prediction that classifier-free guidance subtracts.
    caption_dropout: float = 0.0
    l2sp_weight: float = 0.0  # λ·Σ‖θ−θ₀‖² toward the pretrained weights (Li et al., ICML 2018)
    l2_weight: float = 0.0  # λ·Σ‖θ‖² toward zero
    adam_weight_decay: float = 1e-2
    snr_gamma: float | None = None  # min-SNR-γ weighting (Hang et al., 2023); 5.0 is the paper's value
    noise_offset: float = 0.0
    use_ema: bool = False
    ema_decay: float = 0.9999
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    channels_last: bool = False  # UNet activations in NHWC (faster convolutions on some GPUs)
    compile: bool = False  # torch.compile the UNet (slow first steps, faster after; off by default)
    log_every: int = 10  # metrics sync, TensorBoard, penalties every N steps (the CSV keeps every step's loss)
    use_8bit_adam: bool = False
    cache_latents: bool = True  # encode each picture with the VAE once (no augmentation re-encodes)
    cache_text_embeddings: bool = True  # encode each prompt once while the text encoder is frozen (and the
    # prompts fixed: off with caption_tag_dropout, whose variants would fill memory, as in kohya)
    resume: bool = False
    output_name: str = "dreambooth"
    training_comment: str = ""
    export_single_file: bool = False  # full SD 1.x runs: also <output_name>.safetensors for A1111/ComfyUI
    export_dtype: str = "fp16"  # that file's precision: fp16 (SD 1.5: 2 GB) or fp32 (4.3 GB)

    def __post_init__(self):
        self.validate()

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    @property
    def te_lr(self) -> float:
        return self.learning_rate if self.text_encoder_lr is None else self.text_encoder_lr

    @property
    def prompts_for_validation(self) -> list[str]:
        return list(self.validation_prompts) or [self.instance_prompt]

    def validate(self) -> None:
        for name in ("base_model", "dataset", "out", "instance_prompt"):
            if not str(getattr(self, name)).strip():
                raise ConfigError(name, "required, got an empty value")
        _choice("method", self.method, METHODS)
        _choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _choice("export_dtype", self.export_dtype, EXPORT_DTYPES)
        for name in ("rank", "batch_size", "gradient_accumulation_steps", "max_steps", "checkpoints_total_limit",
                     "num_class_images", "validation_inference_steps", "class_inference_steps", "bucket_step",
                     "log_every"):
            _at_least(name, getattr(self, name), 1)
        for name in ("checkpoint_steps", "validation_steps", "lr_warmup_steps", "l2sp_weight", "l2_weight",
                     "adam_weight_decay", "noise_offset", "prior_loss_weight", "max_grad_norm"):
            _at_least(name, getattr(self, name), 0)
        if self.export_single_file and self.method != "full":
            raise ConfigError("export_single_file", "only full fine-tunes make a whole model; "
                              "LoRA runs already write lora_kohya.safetensors for A1111/ComfyUI")
        if self.resolution < 8 or self.resolution % 8:
            raise ConfigError("resolution", f"{self.resolution} is not a multiple of 8 (>= 8)")
        if self.resolution % self.bucket_step:
            raise ConfigError("bucket_step", f"{self.bucket_step} does not divide resolution {self.resolution}")
        for name in ("learning_rate", "text_encoder_lr", "alpha", "snr_gamma"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(name, f"expected a positive number, got {value}")
        for name in ("caption_tag_dropout", "caption_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(name, f"expected a share in [0, 1) (e.g. 0.1), got {getattr(self, name)}")
        if not 0 < self.ema_decay < 1:
            raise ConfigError("ema_decay", f"expected a number in (0, 1), got {self.ema_decay}")
        if self.stop_text_encoder_after is not None:
            _at_least("stop_text_encoder_after", self.stop_text_encoder_after, 0)
            if not self.train_text_encoder:
                raise ConfigError("stop_text_encoder_after", "set, but train_text_encoder is off")
        if self.with_prior_preservation:
            self._validate_prior()

    def _validate_prior(self) -> None:
        if not self.class_prompt.strip():
            raise ConfigError("class_prompt", "required with with_prior_preservation (e.g. 'an anime girl')")
        if _norm(self.class_prompt) == _norm(self.instance_prompt):
            raise ConfigError("class_prompt", "equal to instance_prompt; prior preservation needs the generic class "
                "(e.g. 'an anime girl') while the instance prompt names the concept ('an sks anime girl')"
            )


def _norm(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(choices)}")


def _at_least(name: str, value, low) -> None:
    if value < low:
        raise ConfigError(name, f"expected >= {low}, got {value}")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _coerce(name: str, value):
    """Convert a TOML or CLI value to the field's type, or raise ConfigError naming the field."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise ConfigError(name, "a value is required")
    try:
        return _coerce_to(base, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, f"bad value {value!r} ({exc})") from None


def _coerce_to(base, value):
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise TypeError("expected true or false")
    if base in (int, float):
        if isinstance(value, bool):
            raise TypeError(f"expected {base.__name__}, got a boolean")
        number = base(value)
        if base is int and isinstance(value, float) and number != value:
            raise TypeError("expected an integer")
        return number
    if typing.get_origin(base) is list:
        items = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(item, str) for item in items):
            raise TypeError("expected a list of strings")
        return items
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def load_config(toml_path: str | os.PathLike | None = None, cli_overrides: dict | None = None,
                preset: str | None = None, defaults: dict | None = None) -> TrainConfig:
    """Defaults (e.g. the base model's resolution) + preset + TOML file + flags -> a validated TrainConfig.
    Later sources win; None-valued flags are ignored."""
    from .presets import preset_settings

    try:
        values: dict = {**(defaults or {}), **preset_settings(preset)}
    except ValueError as exc:
        raise ConfigError("preset", str(exc)) from None
    if toml_path is not None:
        try:
            with open(toml_path, "rb") as f:
                values.update(tomllib.load(f))
        except FileNotFoundError:
            raise ConfigError("config", f"{toml_path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{toml_path} is not valid TOML ({exc})") from None
    values.update({k: v for k, v in (cli_overrides or {}).items() if v is not None})
    values = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(None, f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    missing = [n for n, f in FIELDS.items() if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and n not in values]
    if missing:
        raise ConfigError(missing[0], "required")
    return TrainConfig(**{name: _coerce(name, value) for name, value in values.items()})


def config_dict(cfg: TrainConfig) -> dict:
    """The config as TOML-able data (TOML has no null: None-valued settings are left out)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if v is not None}


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as TOML atomically (temp file + rename)."""
    import tomli_w

    return write_atomic(path, tomli_w.dumps(config_dict(cfg)))


def check_resume_compatible(cfg: TrainConfig, saved_path: str | os.PathLike) -> None:
    """Refuse to resume a run whose weight-shaping settings changed since it was started."""
    with open(saved_path, "rb") as f:
        saved = tomllib.load(f)
    current = config_dict(cfg)
    changed = sorted(k for k in set(saved) | set(current) if k not in RESUMABLE_CHANGES
                     and saved.get(k) != current.get(k))
    if changed:
        raise ConfigError("resume", f"{', '.join(changed)} differ from the run in {cfg.out} "
            f"(saved {', '.join(f'{k}={saved.get(k)!r}' for k in changed)}); use the same settings or a new --out"
        )
