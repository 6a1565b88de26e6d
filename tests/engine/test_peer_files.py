"""Files that load unchanged in A1111, ComfyUI, kohya and older transformers/diffusers (issue 14, items 8-13)."""
import hashlib
import json
import stat

import pytest
import torch

from generator.engine.generate import generate
from generator.engine.hashes import a1111_lora_name, kohya_hashes
from generator.engine.infotext import parse_infotext
from generator.engine.params import GenerationParams
from generator.engine.schedulers import SAMPLER_LABELS

# AUTOMATIC1111's sampler names (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py) and schedulers.
A1111_SAMPLERS = {"PLMS", "DDIM", "Euler", "Euler a", "DPM++ 2M", "UniPC"}
A1111_SCHEDULES = {"Automatic", "Uniform", "Karras"}


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_offered_scheduler_has_an_a1111_sampler_name():
    assert {sampler for sampler, _ in SAMPLER_LABELS.values()} <= A1111_SAMPLERS
    assert {schedule for _, schedule in SAMPLER_LABELS.values()} <= A1111_SCHEDULES
    assert SAMPLER_LABELS["pndm"] == ("PLMS", "Automatic")  # A1111 has no "PNDM": it would fall back to its default
    assert SAMPLER_LABELS["dpmpp_2m_karras"] == ("DPM++ 2M", "Karras")  # how A1111 >= 1.9 writes it


def test_pndm_picture_says_plms(tiny_sd1):
    picture = generate(tiny_sd1, GenerationParams("a girl", seed=1, steps=2, width=64, height=64,
                                                  scheduler="pndm")).pictures[0]
    fields = parse_infotext(picture.infotext)
    assert (fields["Sampler"], fields["Schedule type"]) == ("PLMS", "Automatic")


def _header_skipped_sha256(data: bytes) -> str:
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()


def test_lora_alias_and_hash_come_from_the_kohya_file_beside_a_diffusers_file(tmp_path):
    from safetensors.torch import save_file

    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_file(tensors, str(tmp_path / "pytorch_lora_weights.safetensors"))
    save_file({"lora_unet_x.lora_up.weight": torch.ones(2, 2)}, str(tmp_path / "lora_kohya.safetensors"),
              metadata={"ss_output_name": "retro-style"})
    alias, digest = a1111_lora_name(tmp_path / "pytorch_lora_weights.safetensors")
    assert alias == "retro-style"
    assert digest == _header_skipped_sha256((tmp_path / "lora_kohya.safetensors").read_bytes())[:12]
    assert a1111_lora_name(tmp_path) == (alias, digest)  # a folder is its pytorch_lora_weights.safetensors


def test_kohya_hashes_are_computed_as_kohya_does(tmp_path):
    from safetensors.torch import save

    # > 1.1 MiB of tensor data, so the legacy hash reads real bytes at 0x100000
    tensors = {"lora_unet_a.lora_down.weight": torch.linspace(0, 1, 300_000), "lora_unet_a.alpha": torch.tensor(4.0)}
    metadata = {"ss_output_name": "retro", "ss_network_dim": "4", "modelspec.title": "retro"}
    hashes = kohya_hashes(tensors, metadata)
    ss_only = save(tensors, metadata={"ss_output_name": "retro", "ss_network_dim": "4"})
    assert hashes["sshs_model_hash"] == _header_skipped_sha256(ss_only)
    assert hashes["sshs_legacy_hash"] == hashlib.sha256(ss_only[0x100000:0x110000]).hexdigest()[:8]
    assert len(set(ss_only[0x100000:0x110000])) > 1  # really tensor bytes, not an empty read


def test_saved_tiny_folder_is_portable_and_readable(tiny_sd1_path):
    from safetensors import safe_open

    with safe_open(str(tiny_sd1_path / "text_encoder" / "model.safetensors"), "pt") as f:
        assert all(key.startswith("text_model.") for key in f.keys())
    tokenizer = tiny_sd1_path / "tokenizer"
    vocab = json.loads((tokenizer / "vocab.json").read_text(encoding="utf-8"))
    merges = (tokenizer / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert vocab["<|endoftext|>"] == 49407 and merges[0] == "#version: 0.2" and len(merges) == 48894 + 1
    for path in [tiny_sd1_path, *tiny_sd1_path.rglob("*")]:
        assert mode(path) == (0o755 if path.is_dir() else 0o644), path


def test_portable_folder_gives_the_same_encoder_and_token_ids(tiny_sd1_path, tmp_path):
    """transformers 5 reads the text_model. keys back to the same weights; vocab/merges alone tokenize the same."""
    import shutil

    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_sd1_path, subfolder="tokenizer")
    slow_only = tmp_path / "tokenizer"
    shutil.copytree(tiny_sd1_path / "tokenizer", slow_only)
    (slow_only / "tokenizer.json").unlink()
    text = "retro anime style, an old man with glasses in a market!"
    assert CLIPTokenizer.from_pretrained(slow_only)(text).input_ids == tokenizer(text).input_ids
    from generator.engine.tiny import build_tiny_pipeline

    loaded = CLIPTextModel.from_pretrained(tiny_sd1_path, subfolder="text_encoder").state_dict()
    built = build_tiny_pipeline("sd1").text_encoder.state_dict()  # the weights the folder was saved from
    assert loaded.keys() == built.keys() and all(torch.equal(loaded[k], built[k]) for k in built)


def test_single_file_export_fp16_and_fp32(tiny_sd1, tmp_path):
    from safetensors import safe_open

    from generator.engine.export import save_single_file

    half = save_single_file(tiny_sd1.pipeline, tmp_path / "half.safetensors", dtype="fp16")
    full = save_single_file(tiny_sd1.pipeline, tmp_path / "full.safetensors", dtype="fp32")
    for path, dtype in ((half, torch.float16), (full, torch.float32)):
        assert mode(path) == 0o644
        with safe_open(str(path), "pt") as f:
            assert {f.get_tensor(key).dtype for key in f.keys()} == {dtype}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    with pytest.raises(ValueError, match="fp16, fp32"):
        save_single_file(tiny_sd1.pipeline, tmp_path / "bad.safetensors", dtype="bf8")
