"""Validation grids: labels beside the pictures (never drawn on them) and long prompts wrapped, not cut."""
import numpy as np
from PIL import Image

from training.dreambooth.validation import grid

LONG = "sks girl, retro anime style, red hair, round glasses, sailor uniform, at the seaside"


def test_labels_leave_every_picture_untouched_and_long_prompts_wrap():
    rng = np.random.default_rng(0)
    images = [[Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")) for _ in range(2)] for _ in range(2)]
    short = grid(images, ["a girl", "a boy"], [7, 8], "step 200")
    sheet = grid(images, [LONG, "a boy"], [7, 8], "step 200")
    assert sheet.width == short.width == 2 * 96
    assert sheet.height > short.height  # the long prompt took more lines instead of being cut at the sheet's edge
    found = 0
    pixels = np.asarray(sheet)
    for row in images:
        for j, image in enumerate(row):
            cell = np.asarray(image)
            tops = [y for y in range(sheet.height - 63) if np.array_equal(pixels[y, j * 96], cell[0, 0])
                    and np.array_equal(pixels[y:y + 64, j * 96:j * 96 + 64], cell)]
            found += len(tops) == 1
    assert found == 4  # every picture is on the sheet exactly as rendered: no seed label drawn over it
