"""Our sampling loop is the stock diffusers pipeline's, pixel for pixel (txt2img, same noise, same embeddings)."""
import numpy as np
import pytest
import torch

from generator.engine.generate import generate, with_scheduler
from generator.engine.noise import seeded_noise
from generator.engine.params import GenerationParams
from generator.engine.prompts import prompt_inputs
from generator.engine.schedulers import make_scheduler


@pytest.mark.parametrize("kind,scheduler", [("sd1", "pndm"), ("sd1", "euler_a"), ("sd2", "dpmpp_2m"), ("sdxl", "euler")])
def test_txt2img_equals_the_stock_pipeline(request, kind, scheduler):
    model = request.getfixturevalue(f"tiny_{kind}")
    params = GenerationParams(prompt="retro anime style, a girl", negative_prompt="blurry", seed=5, steps=3,
                              width=64, height=64, scheduler=scheduler, guidance_scale=6.0)
    ours = np.asarray(generate(model, params).pictures[0].image)
    pipe = with_scheduler(model.pipeline, make_scheduler(scheduler, model.pipeline.scheduler.config))
    kwargs = prompt_inputs(pipe, params.prompt, params.negative_prompt, model.architecture, "cpu").kwargs
    shape = (1, pipe.unet.config.in_channels, 64 // pipe.vae_scale_factor, 64 // pipe.vae_scale_factor)
    generator = torch.Generator("cpu").manual_seed(5)
    noise = torch.randn(shape, generator=generator)
    assert torch.equal(noise, seeded_noise(5, shape, "cpu", torch.float32))
    with torch.inference_mode():
        theirs = pipe(**kwargs, num_inference_steps=3, guidance_scale=6.0, width=64, height=64, latents=noise,
                      generator=generator).images[0]
    assert np.array_equal(ours, np.asarray(theirs))
