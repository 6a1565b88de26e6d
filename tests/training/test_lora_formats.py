"""The kohya export is the same LoRA as the diffusers/peft export: loaded back, both give the same pictures."""
import numpy as np
import torch

from training.dreambooth import train


def _images(base, lora_dir=None, weight_name=None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if lora_dir is not None:
        pipe.load_lora_weights(str(lora_dir), weight_name=weight_name)
    out = pipe("sks girl", num_inference_steps=2, height=32, width=32, generator=torch.Generator().manual_seed(3),
               output_type="np")
    return out.images


def test_kohya_file_loads_to_the_same_images_as_peft_file(make_cfg, tiny_sd1):
    # alpha != rank, so a loader that ignored the stored alpha would give different pictures
    result = train(make_cfg(method="lora", rank=4, alpha=2, learning_rate=5e-2, validation_steps=0))
    base = _images(tiny_sd1)
    peft = _images(tiny_sd1, result.out, "pytorch_lora_weights.safetensors")
    kohya = _images(tiny_sd1, result.out, "lora_kohya.safetensors")
    assert not np.allclose(base, peft, atol=1e-4)  # the LoRA does something
    np.testing.assert_allclose(kohya, peft, atol=1e-5)
