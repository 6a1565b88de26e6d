"""export_checkpoint_lora: a LoRA run's checkpoint-N (accelerate state) becomes a loadable diffusers LoRA equal
to what the run itself exports at that step (UNet only, and with the text encoder)."""
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from training.dreambooth import load_config, train
from training.dreambooth.lora import export_checkpoint_lora


@pytest.fixture(scope="module")
def raw_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("sks girl, red hair", encoding="utf-8")
    return folder


@pytest.mark.parametrize("text_encoder", [False, True], ids=["unet", "unet+text-encoder"])
def test_last_checkpoint_exports_the_final_weights(tiny_sd1_path, raw_dataset, tmp_path, text_encoder):
    out = tmp_path / "run"
    cfg = load_config(None, dict(base_model=str(tiny_sd1_path), dataset=str(raw_dataset), out=str(out),
                                 instance_prompt="sks girl", resolution=32, bucket_step=16, rank=4, alpha=2.0,
                                 max_steps=4, checkpoint_steps=2, validation_inference_steps=1, seed=7,
                                 train_text_encoder=text_encoder))
    train(cfg)
    final = load_file(str(out / "pytorch_lora_weights.safetensors"))
    exported = export_checkpoint_lora(out / "checkpoint-4", cfg.rank, cfg.lora_alpha, tmp_path / "export4")
    again = load_file(str(exported))
    assert set(again) == set(final) and all(torch.equal(again[k], final[k]) for k in final)
    assert any(k.startswith("text_encoder.") for k in final) == text_encoder

    earlier = load_file(str(export_checkpoint_lora(out / "checkpoint-2", cfg.rank, cfg.lora_alpha, tmp_path / "export2")))
    assert set(earlier) == set(final) and any(not torch.equal(earlier[k], final[k]) for k in final)

    from generator.engine.loading import load_pipeline

    assert load_pipeline(str(tiny_sd1_path), lora=str(exported)).lora == str(exported)


def test_a_folder_without_adapter_weights_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a LoRA checkpoint"):
        export_checkpoint_lora(tmp_path, 4, 4.0)
