"""Picture operations of img2img and inpainting, done as AUTOMATIC1111 does them (PIL, no torch).

* crop_and_resize: A1111's resize mode "Crop and resize": scale the picture to cover the job's size,
  keeping its aspect ratio, then cut the overflow equally from both sides.
* blurred_mask: the mask (white = repaint) resized the same way and Gaussian-blurred by mask_blur px,
  so the repainted region fades into the original instead of ending at a hard seam.
* composite: A1111's "mask overlay": the original pasted back over the result through the blurred
  mask, so every pixel the blurred mask leaves at 0 is exactly the original's.
"""
from PIL import Image, ImageFilter

RESAMPLE = Image.Resampling.LANCZOS


def crop_and_resize(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` scaled to cover width x height (aspect kept) and centre-cropped to exactly that size."""
    if image.size == (width, height):
        return image.copy()
    ratio = max(width / image.width, height / image.height)
    scaled_w, scaled_h = max(width, round(image.width * ratio)), max(height, round(image.height * ratio))
    scaled = image.resize((scaled_w, scaled_h), RESAMPLE)
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def blurred_mask(mask: Image.Image, width: int, height: int, blur: int) -> Image.Image:
    """The "L" mask at width x height (crop and resize like the picture), Gaussian-blurred by `blur` px."""
    mask = crop_and_resize(mask.convert("L"), width, height)
    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur > 0 else mask


def composite(result: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """`result` where the mask is white, `original` where it is black, blended in between (mask overlay)."""
    return Image.composite(result.convert("RGB"), original.convert("RGB"), mask.convert("L"))
