"""Pictures users hand in (img2img init pictures, inpainting masks), decoded safely: PIL only, no torch, so
the web process can refuse a bad picture at submit time with one line naming the field.

Refused: anything but PNG, JPEG or WebP; more bytes than `Limits.max_upload_bytes`; more pixels than
`Limits.max_upload_pixels` (checked from the header, before any pixel is decoded: a decompression bomb
never gets its gigabytes); truncated or damaged files. Accepted pictures come back as RGB (init) or L (mask).
"""
import base64
import binascii
import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .params import Limits, ParamError

FORMATS = ("PNG", "JPEG", "WEBP")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*?;base64,(.*)$", re.S)
_FIX = "send a PNG, JPEG or WebP picture"


def decode_base64(text: str, field: str) -> bytes:
    """The bytes of a base64 string or of a `data:image/...;base64,` URL; ParamError naming `field` otherwise."""
    match = _DATA_URL.match(text.strip())
    if match:
        mime = (match.group(1) or "").lower()
        if mime and not mime.startswith("image/"):
            raise ParamError(field, f"is a data URL of {mime}, not a picture; {_FIX} (data:image/png;base64,...)")
        text = match.group(3)
    elif text.strip().startswith("data:"):
        raise ParamError(field, "is a data URL without ';base64,'; send data:image/png;base64,<base64 bytes>")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ParamError(field, f"is not valid base64; {_FIX} as a base64 string or a data:image/png;base64,... URL") \
            from None


def read_picture(data: bytes, field: str, limits: Limits = Limits()) -> Image.Image:
    """The decoded picture: RGB, or L (grey) when `field` is "mask_image". ParamError (one line) when refused."""
    mib = limits.max_upload_bytes / 2**20
    if len(data) > limits.max_upload_bytes:
        raise ParamError(field, f"the picture is {len(data) / 2**20:.1f} MiB, above the {mib:g} MiB upload limit; "
                                "send a smaller picture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise ParamError(field, f"is a {image.format} file; {_FIX}")
            pixels = image.width * image.height
            if pixels > limits.max_upload_pixels:
                raise ParamError(field, f"is {image.width}x{image.height} pixels, above the upload limit of "
                                        f"{limits.max_upload_pixels:,} pixels; send a smaller picture")
            image.load()
    except ParamError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ParamError(field, "claims more pixels than any picture we accept (a decompression bomb); "
                                "send a real, smaller picture") from None
    except UnidentifiedImageError:
        raise ParamError(field, f"is not a picture; {_FIX}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ParamError(field, f"is truncated or damaged ({' '.join(str(exc).split())[:80]}); {_FIX}") from None
    image = ImageOps.exif_transpose(image)  # a phone's JPEG the right way up
    if field == "mask_image":
        return image.convert("L")  # white = repaint; alpha is ignored
    if "A" in image.getbands() or image.mode == "P":
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def to_png(image: Image.Image) -> bytes:
    """Lossless PNG bytes of a decoded picture (what the job stores and the worker reads back)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
