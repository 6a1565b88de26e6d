"""The knobs of a dataset preparation, in one typed, validated dataclass.

Everything that changes the prepared output lives here and is written into the manifest, so a
prepared folder always says how it was made.
"""
from dataclasses import asdict, dataclass
from enum import Enum


class Mode(str, Enum):
    """How pictures are brought to the training resolution."""

    CROP = "crop"  # square resolution x resolution, centre-cropped (classic DreamBooth)
    BUCKET = "bucket"  # aspect kept: nearest bucket of about resolution^2 pixels (kohya/SDXL style)


MIN_RESOLUTION, MAX_RESOLUTION = 64, 2048  # 64: the shipped mini-world base; SD works in multiples of 8 pixels


class ConfigError(ValueError):
    """A preparation setting is out of range; the message names the setting."""


@dataclass(frozen=True)
class PrepConfig:
    """Settings of one preparation.

    near_duplicate_distance: Hamming distance on the 64-bit dHash at or below which two pictures
    count as the same picture (6 of 64 survives re-encoding, resizing and light retouching, while
    different drawings of the same character sit well above 10).
    workers: threads used to decode, resize and encode; 1 runs serially. Output never depends on it.
    """

    resolution: int = 512
    mode: Mode = Mode.CROP
    min_size: int = 256  # shorter pictures are refused; between min_size and resolution they are upscaled (noted)
    instance_prompt: str = ""
    class_prompt: str = ""
    near_duplicate_distance: int = 6
    max_pixels: int = 80_000_000
    max_file_bytes: int = 200 * 1024 * 1024
    workers: int = 1

    def __post_init__(self):
        object.__setattr__(self, "mode", Mode(self.mode))
        self.validate()

    def validate(self) -> None:
        if not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION or self.resolution % 8:
            raise ConfigError(f"resolution {self.resolution}: expected a multiple of 8 between {MIN_RESOLUTION} and "
                              f"{MAX_RESOLUTION} (the base model's native size: 64 for the mini-world base, 512 "
                              f"for SD 1.x), e.g. {max(MIN_RESOLUTION, min(self.resolution, MAX_RESOLUTION)) // 8 * 8}")
        if self.min_size < 1:
            raise ConfigError(f"min-size {self.min_size}: expected a positive number of pixels")
        if not 0 <= self.near_duplicate_distance <= 32:
            raise ConfigError(f"near-duplicate distance {self.near_duplicate_distance}: expected 0..32 bits")
        if self.workers < 1:
            raise ConfigError(f"workers {self.workers}: expected at least 1")

    def output_settings(self) -> dict:
        """The settings that shape the output (written to the manifest; `workers` is left out)."""
        data = asdict(self)
        data["mode"] = self.mode.value
        data.pop("workers")
        return data
