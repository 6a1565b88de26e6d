"""Decoding an uploaded file into a clean 8-bit RGB picture, or a one-line reason why not.

Every file is decoded completely (`load()`), so a truncated JPEG is caught here rather than as a
grey band in a training image. This only works while PIL's LOAD_TRUNCATED_IMAGES is off, which
`require_strict_decoding` checks before a preparation starts.
"""
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Containers we accept (the JPEG plugin also opens MPO, a camera JPEG with a preview frame).
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF", "TIFF")
WHITE = (255, 255, 255)
Image.init()  # register every plugin: `formats=` only finds plugins already loaded


class RejectedImage(Exception):
    """The file is not a usable picture; the message is the reason shown to the admin."""


@dataclass
class Decoded:
    """A decoded picture in 8-bit RGB with what was done to get there."""

    image: Image.Image
    format: str
    mode: str
    notes: list[str] = field(default_factory=list)
    exif_rotated: bool = False


def require_strict_decoding() -> None:
    """Refuse to run when some import switched on PIL's silent acceptance of truncated files."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is switched on by some module; truncated pictures "
            "would be padded with grey instead of rejected. Switch it off before preparing datasets."
        )


def decode(data: bytes, max_pixels: int) -> Decoded:
    """Decode `data` fully, apply its EXIF orientation and convert it to 8-bit RGB."""
    if not data:
        raise RejectedImage("empty file (0 bytes)")
    image = _open(data, max_pixels)
    notes = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"first of {frames} frames used")
    source_format, source_mode = image.format or "?", image.mode
    image, rotated = _orient(image, notes)
    return Decoded(_to_rgb(image), source_format, source_mode, notes, rotated)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise RejectedImage("not a picture in an accepted format (png, jpg, webp, bmp, gif, tiff)") from None
    except Image.DecompressionBombError:
        raise RejectedImage("too many pixels (decompression bomb guard)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise RejectedImage(f"cannot read the file header ({_short(exc)})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise RejectedImage(f"{width}x{height} has more than {max_pixels:,} pixels")
    if width < 1 or height < 1:
        raise RejectedImage(f"invalid size {width}x{height}")
    try:
        image.load()
    except Image.DecompressionBombError:
        raise RejectedImage("too many pixels (decompression bomb guard)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise RejectedImage(f"cannot decode: truncated or corrupt ({_short(exc)})") from None
    return image


def _orient(image: Image.Image, notes: list[str]) -> tuple[Image.Image, bool]:
    """Turn the pixels the way the EXIF orientation tag says (phones store pictures sideways)."""
    try:
        orientation = image.getexif().get(0x0112, 1)
        oriented = ImageOps.exif_transpose(image)
    except Exception as exc:  # a broken EXIF block must not lose an otherwise good picture
        notes.append(f"EXIF orientation ignored ({_short(exc)})")
        return image, False
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
        return oriented, True
    return oriented, False


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any pixel mode to 8-bit RGB; transparency is composited on white, deep images scaled to 8 bits."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _deep_grey_to_rgb(image)
    if mode == "F":
        raise RejectedImage("floating-point pixels are not supported; export as 8- or 16-bit")
    if mode == "P" and "transparency" in image.info or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten_on_white(image.convert("RGBA"))
    if mode == "RGB":
        return image
    return image.convert("RGB")


def _deep_grey_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer, taken as 16-bit data as PNG and TIFF store it) grey to 8 bits."""
    values = np.asarray(image).astype(np.int64)
    grey = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
