"""Bad input is refused by name, before any model is loaded."""
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from training.dreambooth import ConfigError, DatasetError, TrainingError, load_config, train
from training.dreambooth import models as db_models

from .conftest import write_dataset


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(db_models, "load_components", refuse)


def _toml(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


REQUIRED = 'base_model = "b"\ndataset = "d"\nout = "o"\ninstance_prompt = "sks girl"\n'


def test_unknown_toml_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting: learnig_rate"):
        load_config(_toml(tmp_path, REQUIRED + "learnig_rate = 1e-4\n"), {})


@pytest.mark.parametrize("line,name", [("batch_size = 'two'", "batch_size"), ("method = 'dora'", "method"),
                                       ("learning_rate = -1.0", "learning_rate"), ("resolution = 30", "resolution"),
                                       ("train_text_encoder = 3", "train_text_encoder"),
                                       ("export_dtype = 'bf8'", "export_dtype")])
def test_bad_value_is_named(tmp_path, line, name):
    with pytest.raises(ConfigError, match=f"^{name}:") as caught:
        load_config(_toml(tmp_path, REQUIRED + line + "\n"), {})
    assert caught.value.field == name and str(caught.value) == f"{name}: {caught.value.message}"


def test_flags_override_toml_and_config_is_saved(tmp_path, make_cfg):
    cfg = load_config(_toml(tmp_path, REQUIRED + "rank = 8\nmax_steps = 10\n"), {"rank": "16", "max-steps": None})
    assert cfg.rank == 16 and cfg.max_steps == 10
    from training.dreambooth import save_config

    saved = load_config(save_config(cfg, tmp_path / "out" / "config.toml"), {})
    assert saved == cfg


def test_missing_prompt_refused():
    with pytest.raises(ConfigError, match="instance_prompt"):
        load_config(None, {"base_model": "b", "dataset": "d", "out": "o", "instance_prompt": "  "})


def test_class_prompt_equal_to_instance_prompt_refused(make_cfg):
    with pytest.raises(ConfigError, match="class_prompt: equal to instance_prompt"):
        make_cfg(with_prior_preservation=True, class_prompt="SKS  girl")


def test_class_folder_is_instance_folder_refused(make_cfg, dataset, no_model_loading):
    cfg = make_cfg(with_prior_preservation=True, class_prompt="a girl", class_data_dir=dataset)
    with pytest.raises(DatasetError, match="is the instance folder"):
        train(cfg)


def test_class_folder_holding_instance_pictures_refused(make_cfg, dataset, tmp_path, no_model_loading):
    copy = tmp_path / "classes"
    shutil.copytree(dataset, copy)
    (copy / "img0.png").rename(copy / "renamed.png")
    cfg = make_cfg(with_prior_preservation=True, class_prompt="a girl", class_data_dir=str(copy))
    with pytest.raises(DatasetError, match="holds 4 of the instance pictures"):
        train(cfg)


def test_empty_dataset_refused_before_loading(make_cfg, tmp_path, no_model_loading):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no pictures"):
        train(make_cfg(dataset=str(tmp_path / "empty")))


def test_raw_dataset_prepared_with_dataprep_before_loading(make_cfg, tmp_path, no_model_loading):
    from training.dreambooth import preflight

    raw = write_dataset(tmp_path / "raw", n=2, size=(420, 280))
    (raw / "img1.txt").unlink()
    cfg = make_cfg(dataset=str(raw), resolution=256, bucket_step=64)
    examples, _ = preflight(cfg)
    assert [e.path.parent.name for e in examples] == ["images", "images"]
    manifest = json.loads((Path(cfg.out) / "prepared-dataset" / "manifest.json").read_text())
    assert [e.size for e in examples] == [tuple(r["bucket"]) for r in manifest["records"] if r["status"] == "kept"]
    assert examples[0].prompt == "sks girl, red hair, pose 0"
    with pytest.raises(DatasetError, match="not prepared and preparing it failed: resolution 32"):
        train(make_cfg("small", dataset=str(raw)))


def test_base_model_must_be_a_pipeline_folder(make_cfg, tmp_path, no_model_loading):
    with pytest.raises(ConfigError, match="^base_model:"):
        train(make_cfg(base_model=str(tmp_path)))


def test_non_finite_loss_stops_naming_the_step(make_cfg, monkeypatch):
    from training.dreambooth import losses

    real = losses.diffusion_loss
    calls = []

    def nan_at_step_3(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(losses, "diffusion_loss", nan_at_step_3)
    cfg = make_cfg(method="lora", max_steps=4, checkpoint_steps=2)
    with pytest.raises(TrainingError, match="at step 3"):
        train(cfg)
    out = Path(cfg.out)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # the last good one
    assert not (out / "pytorch_lora_weights.safetensors").exists()


def test_command_reports_bad_input_in_one_line(tiny_sd1, dataset, tmp_path):
    with pytest.raises(CommandError, match="^rank: bad value 'four'"):
        call_command("train", base_model=tiny_sd1, dataset=dataset, out=str(tmp_path / "o"),
                     instance_prompt="sks girl", rank="four")
