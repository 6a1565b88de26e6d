"""The kohya export is the same LoRA as the diffusers/peft export: loaded back, both give the same pictures."""
import hashlib
import json

import numpy as np
import torch
from safetensors import safe_open

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
    # diffusers <= 0.32 ignores lora_adapter_metadata (alpha defaults to rank): the PEFT file must say alpha = rank
    with safe_open(str(result.out / "pytorch_lora_weights.safetensors"), "pt") as f:
        adapter = json.loads(f.metadata()["lora_adapter_metadata"])
    assert adapter["unet.lora_alpha"] == adapter["unet.r"] == 4
    for name in ("pytorch_lora_weights.safetensors", "lora_kohya.safetensors"):
        assert (result.out / name).stat().st_mode & 0o777 == 0o644, name


def test_kohya_file_carries_kohya_hashes_and_modelspec(make_cfg):
    result = train(make_cfg(method="lora", output_name="retro-girl", validation_steps=0, caption_tag_dropout=0.2,
                          caption_dropout=0.1))
    path = result.out / "lora_kohya.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    data = path.read_bytes()
    after_header = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()
    assert meta["sshs_model_hash"] == after_header  # A1111's "Lora hashes" value is its first 12 digits
    assert len(meta["sshs_legacy_hash"]) == 8
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.sai_model_spec"] and meta["modelspec.implementation"] == "diffusers"
    assert meta["modelspec.title"] == "retro-girl" and meta["modelspec.resolution"] == "32x32"
    assert meta["modelspec.prediction_type"] == "epsilon" and meta["modelspec.date"]
    assert meta["ss_caption_tag_dropout_rate"] == "0.2"  # kohya's names for the settings
    assert meta["ss_caption_dropout_rate"] == "0.1"
