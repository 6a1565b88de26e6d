"""Creative controls on real (tiny and shipped mini-world) models: img2img, inpainting, hires fix, prompt
weights, variations, live progress. Expected values come from the inputs (the init picture, the mask), never
from the code under test."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from generator.engine.generate import generate
from generator.engine.infotext import parse_infotext
from generator.engine.params import GenerationParams

PROMPT = "retro anime style, a girl with a red hat"


def small(**overrides) -> GenerationParams:
    base = dict(prompt=PROMPT, negative_prompt="blurry", seed=11, steps=4, width=64, height=64, scheduler="dpmpp_2m")
    return GenerationParams(**{**base, **overrides})


def pixels(result, i=0) -> np.ndarray:
    return np.asarray(result.pictures[i].image).astype(np.int16)


@pytest.fixture(scope="module")
def miniworld():
    from generator.engine.loading import load_pipeline
    from training.miniworld.shipped import BASE

    return load_pipeline(str(BASE), device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def tiny_inpainting(tmp_path_factory):
    from generator.engine.loading import load_pipeline
    from generator.engine.tiny import save_tiny_model

    path = save_tiny_model("sd1", tmp_path_factory.mktemp("inpaint") / "sd1-inpaint", inpainting=True)
    return load_pipeline(str(path), device="cpu", dtype=torch.float32)


def test_img2img_low_strength_stays_close_and_strength_1_does_not(miniworld):
    init = generate(miniworld, small(prompt="a girl with long red hair, at the beach", steps=12)).pictures[0].image
    reference = np.asarray(init).astype(np.int16)
    low = generate(miniworld, small(init_image=init, strength=0.15, steps=12, seed=99))
    full = generate(miniworld, small(init_image=init, strength=1.0, steps=12, seed=99))
    low_distance = np.abs(pixels(low) - reference).mean()
    full_distance = np.abs(pixels(full) - reference).mean()
    assert low_distance < 12, low_distance  # of 255: the same picture, lightly re-drawn
    assert full_distance > 2 * low_distance and full_distance > 20, (low_distance, full_distance)
    assert "Denoising strength: 0.15" in low.pictures[0].infotext


def test_init_picture_of_another_shape_is_cropped_and_resized(tiny_sd1):
    wide = Image.new("RGB", (200, 100), (200, 30, 30))
    result = generate(tiny_sd1, small(init_image=wide, strength=0.5))
    assert result.pictures[0].image.size == (64, 64)


def _mask(size=64, box=(20, 20, 44, 44)) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


@pytest.mark.parametrize("which", ["tiny_sd1", "tiny_inpainting"])
def test_inpainting_keeps_every_pixel_outside_the_blurred_mask(request, which):
    model = request.getfixturevalue(which)
    rng = np.random.default_rng(3)
    init = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    result = generate(model, small(init_image=init, mask_image=_mask(), mask_blur=4, strength=1.0))
    out, original = pixels(result), np.asarray(init).astype(np.int16)
    outside = np.ones((64, 64), bool)
    outside[20 - 12:44 + 13, 20 - 12:44 + 13] = False  # a Gaussian of radius 4 reaches < 3 sigma = 12 px
    assert np.array_equal(out[outside], original[outside])
    assert np.abs(out[24:41, 24:41] - original[24:41, 24:41]).mean() > 10  # repainted inside
    assert "Mask blur: 4" in result.pictures[0].infotext


@pytest.mark.parametrize("upscaler", ["Lanczos", "Latent"])
def test_hires_scale_2_doubles_the_size(tiny_sd1, upscaler):
    steps = []
    params = small(hires_scale=2, hires_steps=4, hires_strength=0.5, hires_upscaler=upscaler)
    result = generate(tiny_sd1, params, on_step=lambda k, n: steps.append((k, n)))
    assert result.pictures[0].image.size == (128, 128)
    assert steps == [(k, 6) for k in range(1, 7)]  # 4 base steps + int(4 * 0.5) hires steps
    info = parse_infotext(result.pictures[0].infotext)
    assert (info["Size"], info["Hires upscale"], info["Hires upscaler"], info["Denoising strength"]) == \
        ("64x64", "2", upscaler, "0.5")


def test_weight_1_is_the_plain_prompt_pixel_for_pixel_and_1_5_differs(tiny_sd1):
    plain = generate(tiny_sd1, small(prompt="a girl, red hat"))
    same = generate(tiny_sd1, small(prompt="a girl, (red hat:1.0)"))
    heavier = generate(tiny_sd1, small(prompt="a girl, (red hat:1.5)"))
    assert np.array_equal(pixels(plain), pixels(same))
    assert not np.array_equal(pixels(plain), pixels(heavier))


def test_variation_strength_0_is_the_seed_and_1_is_the_variation_seed(tiny_sd1):
    seed_picture = generate(tiny_sd1, small(seed=11))
    other_picture = generate(tiny_sd1, small(seed=500))
    none = generate(tiny_sd1, small(seed=11, variation_seed=500, variation_strength=0.0))
    full = generate(tiny_sd1, small(seed=11, variation_seed=500, variation_strength=1.0))
    half = generate(tiny_sd1, small(seed=11, variation_seed=500, variation_strength=0.3, num_images=2))
    assert np.array_equal(pixels(none), pixels(seed_picture))
    assert np.array_equal(pixels(full), pixels(other_picture))
    assert not np.array_equal(pixels(half), pixels(seed_picture))
    assert [(p.seed, p.variation_seed) for p in half.pictures] == [(11, 500), (11, 501)]
    info = parse_infotext(half.pictures[1].infotext)
    assert (info["Seed"], info["Variation seed"], info["Variation seed strength"]) == ("11", "501", "0.3")


def test_progress_counts_image_k_of_n_and_previews_every_two_steps(tiny_sd1):
    seen = []
    generate(tiny_sd1, small(steps=4, num_images=2), on_progress=seen.append)
    assert [(p.image, p.images, p.step, p.steps, p.done, p.total) for p in seen] == \
        [(k, 2, s, 4, (k - 1) * 4 + s, 8) for k in (1, 2) for s in (1, 2, 3, 4)]
    assert [p.step for p in seen if p.preview is not None] == [2, 4, 2, 4]
    assert seen[-1].preview.size == (32, 32)  # latent size of the tiny model (VAE factor 2)


def test_preview_of_the_last_step_resembles_the_final_picture(miniworld):
    seen = []
    result = generate(miniworld, small(prompt="a girl with long red hair, at the beach", steps=12),
                      on_progress=seen.append)
    final = np.asarray(result.pictures[0].image.resize((16, 16), Image.Resampling.BOX)).astype(float)
    preview = np.asarray(seen[-1].preview).astype(float)  # 16 x 16: the model's latent size
    flat = np.abs(final - final.mean((0, 1))).mean()  # what a one-colour guess would be off by
    assert np.abs(preview - final).mean() < 0.8 * flat
    early = [p for p in seen if p.preview is not None][0]
    assert early.step == 2 and np.abs(np.asarray(early.preview).astype(float) - final).mean() < flat
