"""The shipped mini-world weights load in older stacks and carry kohya's metadata (issue 14, items 10 and 12)."""
import hashlib

from safetensors import safe_open

from training.miniworld.shipped import BASE, RETRO_LORA_DIR


def test_shipped_base_has_text_model_keys_and_slow_tokenizer_files(tmp_path):
    import shutil

    from transformers import CLIPTokenizer

    with safe_open(str(BASE / "text_encoder" / "model.safetensors"), "pt") as f:
        assert all(key.startswith("text_model.") for key in f.keys())
    text = "retro anime style, an old man with glasses in a market"
    fast = CLIPTokenizer.from_pretrained(BASE, subfolder="tokenizer")
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):  # what transformers 4.x's slow tokenizer reads
        shutil.copy(BASE / "tokenizer" / name, tmp_path / name)
    slow = CLIPTokenizer.from_pretrained(tmp_path)
    assert slow(text).input_ids == fast(text).input_ids


def test_shipped_kohya_lora_carries_sshs_hashes_and_modelspec():
    path = RETRO_LORA_DIR / "lora_kohya.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    data = path.read_bytes()
    assert meta["sshs_model_hash"] == hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()
    # the v3 base's text encoder and tokenizer are OpenCLIP-style (pad '!'): detected, and labelled, as SD 2.x
    assert meta["modelspec.architecture"] == "stable-diffusion-v2-512/lora" and meta["ss_base_model_version"] == "sd_v2"
    assert meta["modelspec.title"] == meta["ss_output_name"]
