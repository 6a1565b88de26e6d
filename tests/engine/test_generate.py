import numpy as np
import pytest

from generator.engine.generate import GenerationCancelled, generate
from generator.engine.infotext import parse_infotext, read_png_parameters
from generator.engine.params import SCHEDULER_NAMES, GenerationParams, ParamError

PROMPT = "retro anime style, a man with glasses"


def small(**overrides) -> GenerationParams:
    base = dict(prompt=PROMPT, negative_prompt="blurry", seed=7, steps=2, width=64, height=64, scheduler="dpmpp_2m")
    return GenerationParams(**{**base, **overrides})


def pixels(picture) -> np.ndarray:
    return np.asarray(picture.image)


def test_same_seed_twice_gives_identical_pixels_and_seed_plus_i(tiny_sd1):
    first = generate(tiny_sd1, small(num_images=2, steps=4))
    second = generate(tiny_sd1, small(num_images=2, steps=4))
    alone = generate(tiny_sd1, small(seed=8, num_images=1, steps=4))
    assert [p.seed for p in first.pictures] == [7, 8] and first.seed == 7
    for a, b in zip(first.pictures, second.pictures):
        assert np.array_equal(pixels(a), pixels(b))
    assert np.array_equal(pixels(first.pictures[1]), pixels(alone.pictures[0]))
    assert not np.array_equal(pixels(first.pictures[0]), pixels(first.pictures[1]))


def test_infotext_and_png_chunk(tiny_sd1):
    picture = generate(tiny_sd1, small(steps=4, guidance_scale=7.5)).pictures[0]
    assert picture.infotext.split("\n")[-1] == (
        f"Steps: 4, Sampler: DPM++ 2M, Schedule type: Uniform, CFG scale: 7.5, Seed: 7, Size: 64x64, "
        f"Model hash: {tiny_sd1.model_hash}, Model: {tiny_sd1.name}"
    )
    assert read_png_parameters(picture.png) == picture.infotext
    assert parse_infotext(picture.infotext)["Negative prompt"] == "blurry"
    assert picture.image.size == (64, 64)


def test_random_seed_is_chosen_and_recorded(tiny_sd1):
    result = generate(tiny_sd1, small(seed=-1, num_images=2))
    assert 0 <= result.seed < 2**32 - 1
    assert [p.seed for p in result.pictures] == [result.seed, result.seed + 1]
    assert f"Seed: {result.seed}," in result.pictures[0].infotext


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_every_scheduler_runs_two_steps_without_touching_the_cached_pipeline(tiny_sd2, scheduler):
    before = type(tiny_sd2.pipeline.scheduler)
    steps = []
    result = generate(tiny_sd2, small(scheduler=scheduler), on_step=lambda k, n: steps.append((k, n)))
    assert steps == [(1, 2), (2, 2)]
    assert type(tiny_sd2.pipeline.scheduler) is before
    assert np.isfinite(pixels(result.pictures[0])).all()


def test_sdxl_generates(tiny_sdxl):
    result = generate(tiny_sdxl, small(num_images=1))
    assert result.pictures[0].image.size == (64, 64)
    assert result.warnings == []


def test_progress_counts_over_all_images(tiny_sd1):
    steps = []
    generate(tiny_sd1, small(steps=3, num_images=2, scheduler="pndm"), on_step=lambda k, n: steps.append((k, n)))
    assert steps == [(k, 6) for k in range(1, 7)]


def test_cancel_stops_early(tiny_sd1):
    steps = []
    with pytest.raises(GenerationCancelled):
        generate(
            tiny_sd1, small(steps=4, num_images=2),
            on_step=lambda k, n: steps.append(k), should_cancel=lambda: len(steps) >= 2,
        )
    assert steps == [1, 2]
    assert len(generate(tiny_sd1, small()).pictures) == 1  # the model is still usable afterwards


def test_params_are_validated_before_anything_runs(tiny_sd1):
    called = []
    with pytest.raises(ParamError) as info:
        generate(tiny_sd1, small(width=65), on_step=lambda k, n: called.append(k))
    assert info.value.field == "width" and called == []


def test_negative_prompt_ignored_without_guidance_is_reported(tiny_sd1):
    result = generate(tiny_sd1, small(guidance_scale=1.0))
    assert any("negative prompt has no effect" in w for w in result.warnings)
