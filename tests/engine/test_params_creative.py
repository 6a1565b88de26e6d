"""GenerationParams' creative controls: every bad field at once with a valid fix, and the job-row shape."""
from PIL import Image

from generator.engine.params import GenerationParams, Limits, LoraChoice

RGB = Image.new("RGB", (64, 64))


def test_every_bad_creative_field_is_named_with_a_fix_that_itself_passes():
    params = GenerationParams(prompt="a girl", width=512, height=512, strength=0, mask_image=Image.new("L", (8, 8)),
                              mask_blur=99, hires_scale=3, hires_steps=500, hires_strength=1.5, hires_upscaler="ESRGAN",
                              loras=[{"name": "a", "scale": 3}, {"name": "a", "scale": 1}], variation_seed=-2,
                              variation_strength=1.5, translate="fr")
    errors = params.errors()
    assert set(errors) == {"strength", "mask_image", "mask_blur", "hires_scale", "hires_steps", "hires_strength",
                           "hires_upscaler", "loras", "variation_seed", "variation_strength", "translate"}
    assert "use at most 2" in errors["hires_scale"][0]  # 512 * 2 = 1024, the largest that fits
    assert GenerationParams(prompt="a girl", width=512, height=512, hires_scale=2).errors() == {}
    assert "needs init_image" in errors["mask_image"][0]
    assert len(errors["loras"]) == 2  # scale out of range and listed twice


def test_mask_of_another_shape_is_refused_and_same_shape_passes():
    wide = GenerationParams(prompt="x", width=64, height=64, init_image=RGB, mask_image=Image.new("L", (128, 64)))
    assert "paint the mask over the picture" in wide.errors()["mask_image"][0]
    assert GenerationParams(prompt="x", width=64, height=64, init_image=RGB,
                            mask_image=Image.new("L", (128, 128))).errors() == {}


def test_as_dict_is_the_job_row_and_round_trips():
    params = GenerationParams(prompt="x", init_image=RGB, loras=[LoraChoice("retro", 0.5, source="/secret/path")])
    row = params.as_dict()
    assert "init_image" not in row and "mask_image" not in row
    assert row["loras"] == [{"name": "retro", "scale": 0.5}]  # the registry path never reaches the row
    again = GenerationParams(**row)
    assert again.loras == (LoraChoice("retro", 0.5),) and again.init_image is None


def test_step_counts_follow_img2img_and_hires():
    assert GenerationParams(prompt="x", steps=20).steps_per_image() == 20
    assert GenerationParams(prompt="x", steps=20, init_image=RGB, strength=0.5).steps_per_image() == 10
    hires = GenerationParams(prompt="x", steps=20, width=64, height=64, hires_scale=2, hires_strength=0.5, num_images=3)
    assert hires.final_size == (128, 128)
    assert hires.steps_per_image() == 20 + 10 and hires.total_steps() == 90
    assert GenerationParams(prompt="x", steps=20, hires_scale=2, hires_steps=8, hires_strength=0.5,
                            width=64, height=64).hires_pass_steps() == 4


def test_limits_apply_to_the_final_size():
    small = Limits(max_width=256, max_height=256)
    assert "use at most 2" in GenerationParams(prompt="x", width=128, height=128, hires_scale=4).errors(small)["hires_scale"][0]
    assert GenerationParams(prompt="x", width=128, height=128, hires_scale=2).errors(small) == {}
