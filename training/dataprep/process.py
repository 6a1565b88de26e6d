"""Preparing one picture: read, decode, check, hash, resize, encode. Runs on pool threads.

Everything here is a pure function of (file bytes, settings), so the result is the same whichever
thread computes it and in whichever order: the pool cannot change the output.
"""
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import contact_sheet, dedup, resize
from .config import PrepConfig
from .decode import RejectedImage, decode

# PNG is lossless and, without a pnginfo/time chunk, byte-identical for identical pixels. zlib's
# Z_RLE strategy encodes 2-5x faster than the default one (encoding was most of the time per picture):
# about 20% larger files on flat cel art, smaller ones on grainy scans.
PNG_COMPRESS_LEVEL = 6
PNG_ZLIB_STRATEGY = 3  # zlib.Z_RLE


@dataclass
class Prepared:
    """The outcome for one picture file; `png_file` is empty when the picture was rejected."""

    rel: str
    sha256: str = ""
    bytes: int = 0
    reason: str = ""
    format: str = ""
    mode: str = ""
    source_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    bucket: tuple[int, int] | None = None
    upscaled: bool = False
    notes: list[str] = field(default_factory=list)
    pixel_sha256: str = ""
    dhash: int = 0
    png_file: str = ""  # the prepared picture, written to the path the caller gave
    thumb: tuple[tuple[int, int], bytes] | None = None  # thumbnail size and raw RGB pixels

    @property
    def ok(self) -> bool:
        return not self.reason


def prepare_file(root: str, rel: str, config: PrepConfig, output: str) -> Prepared:
    """Prepare the picture at root/rel into the PNG file `output` (written to disk, not kept in
    memory: a big set must not need all its pictures in RAM). Never raises for bad input: the reason
    is recorded instead."""
    result = Prepared(rel)
    try:
        data = _read(Path(root, rel), config, result)
        _prepare_pixels(data, config, result, output)
    except RejectedImage as exc:
        result.reason = str(exc)
        result.thumb = None
    return result


def _read(path: Path, config: PrepConfig, result: Prepared) -> bytes:
    size = path.stat().st_size
    result.bytes = size
    if size > config.max_file_bytes:
        raise RejectedImage(f"file of {size:,} bytes is larger than the {config.max_file_bytes:,}-byte limit")
    data = path.read_bytes()
    result.sha256 = hashlib.sha256(data).hexdigest()
    return data


def _prepare_pixels(data: bytes, config: PrepConfig, result: Prepared, output_file: str) -> None:
    decoded = decode(data, config.max_pixels)
    image = decoded.image
    result.format, result.mode, result.notes = decoded.format, decoded.mode, decoded.notes
    result.source_size = image.size
    short_side = min(image.size)
    if short_side < config.min_size:
        raise RejectedImage(
            f"too small: {image.width}x{image.height}, the short side is under the {config.min_size}-pixel minimum "
            "(a lower min-size lets it in, upscaled)"
        )
    result.pixel_sha256 = dedup.pixel_sha256(image)
    result.dhash = dedup.dhash(image)
    width, height = resize.target_size(image.width, image.height, config.resolution, config.mode.value)
    result.upscaled = width > image.width or height > image.height
    if config.mode.value == "bucket":
        result.bucket = (width, height)
    output = resize.cover_and_crop(image, width, height)
    result.output_size = output.size
    Path(output_file).write_bytes(encode_png(output))
    result.png_file = output_file
    thumb = contact_sheet.thumbnail(output)
    result.thumb = (thumb.size, thumb.tobytes())


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes with no metadata at all, so equal pixels give equal files."""
    clean = Image.frombytes("RGB", image.size, image.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_ZLIB_STRATEGY)
    return buffer.getvalue()
