"""Pictures for the creative-control tests (issue 13): real PNG/JPEG/WebP bytes, masks, base64 and data URLs,
and the bad inputs a user may send (not a picture, a decompression bomb, an oversized file)."""
import base64
import io
import struct
import zlib

from PIL import Image


def gradient(width=64, height=64, mode="RGB") -> Image.Image:
    """A picture with structure (a gradient and a dark square), so img2img closeness is measurable."""
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), 128)
                   for y in range(height) for x in range(width)])
    square = Image.new("RGB", (width // 4, height // 4), (20, 20, 20))
    image.paste(square, (width // 8, height // 8))
    return image.convert(mode)


def encode(image: Image.Image, fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def mask(width=64, height=64, box=(16, 16, 48, 48)) -> Image.Image:
    """White (repaint) inside `box`, black elsewhere."""
    image = Image.new("L", (width, height), 0)
    image.paste(255, box)
    return image


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64,{b64(data)}"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def bomb_png(side=40_000) -> bytes:
    """A valid-looking PNG header claiming side x side pixels (1.6 G pixels) with almost no data: decoding it
    would need gigabytes; a reader must refuse it from the header alone."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * side
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * 2, 9))
            + _chunk(b"IEND", b""))


def noise_png(width=64, height=64, seed=0) -> bytes:
    """A PNG that does not compress (for the upload-size limit)."""
    import random

    rng = random.Random(seed)
    return encode(Image.frombytes("RGB", (width, height), bytes(rng.randrange(256) for _ in range(width * height * 3))))
