"""Messy uploads made on the spot with PIL: every format, mode and defect the preparation must handle."""
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

RED = (255, 0, 0)


def textured(width: int, height: int, seed: int) -> Image.Image:
    """A picture with large blobs (so perceptual hashes differ per seed) and fine grain (real JPEG sizes)."""
    rng = np.random.default_rng(seed)
    blobs = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    grain = rng.integers(-12, 13, (height, width, 3))
    pixels = np.clip(np.asarray(blobs, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    """800x400 stored sideways with orientation 6; the red marker sits top-centre of the stored pixels,
    so once turned upright (400x800) it is at the middle of the right edge."""
    stored = Image.new("RGB", (800, 400), (30, 60, 200))
    stored.paste(textured(800, 400, 99).point(lambda v: v // 3), (0, 0))
    stored.paste(Image.new("RGB", (100, 60), RED), (350, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def rgba_png() -> bytes:
    image = textured(600, 600, 5).convert("RGBA")
    alpha = Image.new("L", (600, 600), 0)
    alpha.paste(255, (100, 100, 500, 500))
    image.putalpha(alpha)
    return encode(image, "PNG")


def deep_png() -> bytes:
    ramp = (np.linspace(0, 65535, 600 * 600).reshape(600, 600)).astype(np.uint16)
    ramp = ramp ^ (np.random.default_rng(7).integers(0, 4096, (600, 600)).astype(np.uint16))
    image = Image.fromarray(ramp.astype(np.int32), "I").convert("I;16")
    return encode(image, "PNG")


def animated_gif() -> bytes:
    frames = [textured(400, 400, 11).convert("P"), textured(400, 400, 12).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def messy_files() -> dict[str, bytes]:
    """Relative path -> bytes, with the status each one must end in given by EXPECTED."""
    plain = encode(textured(800, 600, 1), "JPEG", quality=90)
    near = Image.open(io.BytesIO(plain)).resize((600, 450), Image.Resampling.LANCZOS)
    truncated = encode(textured(700, 500, 2), "JPEG", quality=90)
    return {
        "photos/plain.jpg": plain,
        "photos/plain copy.jpg": plain,
        "photos/plain smaller.png": encode(near, "PNG"),
        "png/rgb.png": encode(textured(700, 500, 3), "PNG"),
        "png/rgba.png": rgba_png(),
        "png/palette.png": encode(textured(512, 512, 4).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png/grey.png": encode(textured(600, 400, 6).convert("L"), "PNG"),
        "png/deep 16-bit.png": deep_png(),
        "pic.webp": encode(textured(640, 640, 8), "WEBP", quality=90),
        "cmyk.jpg": encode(textured(600, 600, 9).convert("CMYK"), "JPEG", quality=90),
        "exif/rotated.jpg": exif_rotated_jpeg(),
        "anim.gif": animated_gif(),
        "misc/old.bmp": encode(textured(500, 400, 13), "BMP"),
        "misc/scan.tiff": encode(textured(500, 700, 14), "TIFF"),
        "名前 with spaces/キャラ 1.png": encode(textured(520, 700, 15), "PNG"),
        "名前 with spaces/キャラ 1.txt": "レトロ anime girl, cel shading\n".encode(),
        "broken/truncated.jpg": truncated[: len(truncated) // 2],
        "broken/not a picture.jpg": b"hello, I am text\n",
        "broken/empty.jpg": b"",
        "tiny.png": encode(textured(100, 120, 16), "PNG"),
        "notes.md": b"# scanned from a 1989 artbook\n",
        "orphan.txt": b"a caption without a picture\n",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
    }


EXPECTED = {
    "kept": 13,
    "duplicate": 2,
    "rejected": 4,
    "skipped": 3,
    "caption": 1,
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def zip_bytes(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for rel, data in files.items():
            archive.writestr(rel, data)
    return buffer.getvalue()
