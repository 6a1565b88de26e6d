"""benchmarks/gpu_check.py cannot rot: its SD 1.5 shapes are SD 1.5's, and it runs end to end at a tiny size."""
import torch

from benchmarks import gpu_check


def test_sd15_configs_have_sd15_parameter_counts():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):  # shapes only, no memory
        unet = UNet2DConditionModel(**gpu_check.SD15_UNET)
        vae = AutoencoderKL(**gpu_check.SD15_VAE)
        text = CLIPTextModel(CLIPTextConfig(**gpu_check.SD15_TEXT))
    counts = [sum(p.numel() for p in m.parameters()) for m in (unet, vae, text)]
    assert counts == [859_520_964, 83_653_863, 123_060_480]  # runwayml/stable-diffusion-v1-5's


def test_runs_every_cell_at_a_tiny_size_on_the_cpu(tmp_path):
    report = gpu_check.main(["--size", "tiny", "--resolution", "64", "--warmup", "1", "--steps", "1",
                             "--generation-steps", "2", "--out", str(tmp_path)])
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| cell")]
    names = [r.split(" | ")[0].removeprefix("| ") for r in rows]
    assert names[:3] == ["lora", "lora_gc, gradient_checkpointing=True", "full, gradient_checkpointing=True"]
    assert len(names) == 4 and names[3].startswith("generation, 2 steps (")
    assert all(float(r.split(" | ")[1]) > 0 and float(r.split(" | ")[2]) > 0 for r in rows)
    assert "LoRA: < 8 GB" in report and "full, 8-bit Adam + GC: ~16 GB" in report
    assert "peak RSS GB" in report  # no CUDA here: host memory is what is measured
