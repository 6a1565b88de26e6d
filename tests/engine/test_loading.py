import hashlib

import pytest

from generator.engine.loading import ModelLoadError, detect_architecture, load_pipeline


def _one_line_naming(error: ModelLoadError, source) -> str:
    message = str(error)
    assert "\n" not in message
    assert str(source) in message
    assert error.source == str(source)
    return message


@pytest.mark.parametrize(
    "fixture, architecture, pipeline_class",
    [
        ("tiny_sd1", "sd1", "StableDiffusionPipeline"),
        ("tiny_sd2", "sd2-v", "StableDiffusionPipeline"),
        ("tiny_sdxl", "sdxl", "StableDiffusionXLPipeline"),
    ],
)
def test_folder_loads_and_architecture_is_detected(request, fixture, architecture, pipeline_class):
    model = request.getfixturevalue(fixture)
    assert model.architecture == architecture
    assert type(model.pipeline).__name__ == pipeline_class
    assert detect_architecture(model.pipeline) == architecture
    assert model.name == fixture.replace("tiny_", "")
    assert model.device == "cpu"
    assert getattr(model.pipeline, "safety_checker", None) is None


def test_folder_hash_is_sha256_of_unet_weights(tiny_sd1, tiny_sd1_path):
    weights = tiny_sd1_path / "unet" / "diffusion_pytorch_model.safetensors"
    assert tiny_sd1.model_hash == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]


def test_pickle_checkpoint_refused_without_allow_pickle(tmp_path):
    for suffix in (".ckpt", ".bin", ".pt", ".pth"):
        ckpt = tmp_path / f"model{suffix}"
        ckpt.write_bytes(b"not really a pickle")
        with pytest.raises(ModelLoadError) as info:
            load_pipeline(str(ckpt), device="cpu")
        message = _one_line_naming(info.value, ckpt)
        assert "pickle" in message and "allow" in message


def test_allow_pickle_and_config_dir_reach_from_single_file(tmp_path, tiny_sd1_path, monkeypatch):
    from diffusers import StableDiffusionPipeline

    seen = {}

    def fake_from_single_file(path, **kwargs):
        seen.update(kwargs, path=path)
        raise ValueError("stop here")

    monkeypatch.setattr(StableDiffusionPipeline, "from_single_file", fake_from_single_file)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(ckpt), device="cpu", allow_pickle=True, config_dir=str(tiny_sd1_path), local_files_only=True)
    assert "stop here" in str(info.value)  # got past the pickle refusal into diffusers
    assert seen["path"] == str(ckpt)
    assert seen["config"] == str(tiny_sd1_path)
    assert seen["local_files_only"] is True
    assert seen["safety_checker"] is None and seen["requires_safety_checker"] is False


def test_real_bad_checkpoint_with_allow_pickle_is_one_line(tmp_path, tiny_sd1_path):
    ckpt = tmp_path / "broken.ckpt"
    ckpt.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(ckpt), device="cpu", allow_pickle=True, config_dir=str(tiny_sd1_path))
    _one_line_naming(info.value, ckpt)


def test_missing_path_is_one_line_naming_source(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(missing), device="cpu")
    assert "not found" in _one_line_naming(info.value, missing)


def test_folder_without_model_index_is_not_a_pipeline(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(tmp_path), device="cpu")
    assert "model_index.json" in _one_line_naming(info.value, tmp_path)


def test_hub_id_offline_and_not_cached_says_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_pipeline("retroportal-test/not-downloaded", device="cpu")
    message = _one_line_naming(info.value, "retroportal-test/not-downloaded")
    assert "huggingface-cli download retroportal-test/not-downloaded" in message


def test_missing_lora_is_one_line(tiny_sd1_path, tmp_path):
    lora = tmp_path / "missing-lora.safetensors"
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(tiny_sd1_path), device="cpu", lora=str(lora))
    _one_line_naming(info.value, lora)


def test_lora_is_fused_at_its_scale_and_recorded(tiny_sd1_path, tiny_sd1, tmp_path):
    import numpy as np

    from generator.engine.generate import generate
    from generator.engine.params import GenerationParams
    from generator.engine.tiny import save_tiny_lora

    lora = save_tiny_lora("sd1", tmp_path / "retro.safetensors")
    params = GenerationParams("a man with glasses", seed=3, steps=2, width=64, height=64)
    base = np.asarray(generate(tiny_sd1, params).pictures[0].image)
    off = load_pipeline(str(tiny_sd1_path), device="cpu", lora=str(lora), lora_scale=0.0)
    on = load_pipeline(str(tiny_sd1_path), device="cpu", lora=str(lora), lora_scale=1.0)
    assert np.array_equal(np.asarray(generate(off, params).pictures[0].image), base)
    picture = generate(on, params).pictures[0]
    assert not np.array_equal(np.asarray(picture.image), base)
    data = lora.read_bytes()  # A1111's LoRA hash: sha256 of the bytes after the 8-byte length + JSON header
    assert on.lora_hash == hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]
    assert f'Lora hashes: "retro: {on.lora_hash}"' in picture.infotext
    assert picture.infotext.startswith("a man with glasses <lora:retro:1>\n")


def test_pickle_lora_refused(tiny_sd1_path, tmp_path):
    lora = tmp_path / "retro.pt"
    lora.write_bytes(b"x")
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(tiny_sd1_path), device="cpu", lora=str(lora))
    assert "pickle" in _one_line_naming(info.value, lora)


@pytest.fixture(scope="module")
def tiny_sd1_single_file(tiny_sd1, tmp_path_factory):
    from generator.engine.export import save_single_file

    return save_single_file(tiny_sd1.pipeline, tmp_path_factory.mktemp("single") / "tiny-sd1.safetensors")


def test_single_file_checkpoint_loads_offline_with_config_dir(tiny_sd1_single_file, tiny_sd1_path, tiny_sd1):
    import numpy as np

    from generator.engine.generate import generate
    from generator.engine.params import GenerationParams

    model = load_pipeline(str(tiny_sd1_single_file), device="cpu", config_dir=str(tiny_sd1_path), local_files_only=True)
    assert model.architecture == "sd1" and model.name == "tiny-sd1"
    assert model.model_hash == hashlib.sha256(tiny_sd1_single_file.read_bytes()).hexdigest()[:10]  # A1111's hash
    params = GenerationParams("a man", seed=5, steps=2, width=64, height=64)
    assert np.array_equal(
        np.asarray(generate(model, params).pictures[0].image), np.asarray(generate(tiny_sd1, params).pictures[0].image)
    )


def test_single_file_offline_without_config_dir_says_how(tiny_sd1_single_file, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import; patch the constant
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(str(tiny_sd1_single_file), device="cpu", local_files_only=True)
    assert "config_dir" in _one_line_naming(info.value, tiny_sd1_single_file)
