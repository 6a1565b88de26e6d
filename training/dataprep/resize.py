"""Bringing a picture to the training size: square centre crop, or the nearest aspect bucket.

Both modes scale with Lanczos (the sharpest of PIL's filters for downscaling line art) so that the
picture just covers the target, then centre-crop the remainder: nothing is stretched or padded.
"""
import math
from functools import lru_cache

from PIL import Image

BUCKET_STEP = 64  # SD latents are 1/8 of the pixels and UNet blocks halve three times more
BUCKET_MIN_SIDE = 256
BUCKET_MAX_SIDE = 2048


def bucket_grid(resolution: int) -> tuple[int, int, int]:
    """(step, min side, max side) of the buckets: kohya's 64 / 256 / 2048 from 256 px up; below, the same shape
    scaled down (64 px, the mini-world base: steps of 8 from 32 to 256), so small models get buckets too."""
    if resolution >= BUCKET_MIN_SIDE:
        return BUCKET_STEP, BUCKET_MIN_SIDE, BUCKET_MAX_SIDE
    step = max(8, resolution // 8 // 8 * 8)
    return step, resolution // 2 // step * step, 4 * resolution


@lru_cache(maxsize=None)
def buckets(resolution: int) -> tuple[tuple[int, int], ...]:
    """Sizes (w, h) on bucket_grid(resolution) with w*h <= resolution^2, as kohya does.

    For each width only the tallest height that fits the pixel budget is kept, so every bucket
    holds about as many pixels as the square one.
    """
    step, min_side, max_side = bucket_grid(resolution)
    max_area = resolution * resolution
    sizes = set()
    for width in range(min_side, max_side + 1, step):
        height = min(max_side, (max_area // width) // step * step)
        if height >= min_side:
            sizes.add((width, height))
            sizes.add((height, width))
    return tuple(sorted(sizes))


def nearest_bucket(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest (in log space, so 2:1 and 1:2 are equally far from 1:1).

    Ties go to the larger bucket, then the wider one, so the choice never depends on set order.
    """
    aspect = math.log(width / height)
    return min(buckets(resolution), key=lambda b: (abs(math.log(b[0] / b[1]) - aspect), -b[0] * b[1], -b[0]))


def cover_and_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale so the picture covers width x height, then cut the overflow evenly from both sides."""
    scale = max(width / image.width, height / image.height)
    scaled_w = max(width, round(image.width * scale))
    scaled_h = max(height, round(image.height * scale))
    if (scaled_w, scaled_h) != image.size:
        image = image.resize((scaled_w, scaled_h), Image.Resampling.LANCZOS)
    left = (scaled_w - width) // 2
    top = (scaled_h - height) // 2
    return image.crop((left, top, left + width, top + height))


def target_size(width: int, height: int, resolution: int, mode: str) -> tuple[int, int]:
    """The output size of a width x height picture in `mode` ("crop" or "bucket")."""
    if mode == "bucket":
        return nearest_bucket(width, height, resolution)
    return resolution, resolution
