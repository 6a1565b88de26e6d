"""Training presets: `manage.py train --preset retro-style` trains the recommended recipe (here 2 steps on the
shipped 64 px mini-world base, at its native size), and explicit flags still win over the preset."""
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from training.dreambooth import load_config
from training.dreambooth.presets import PRESETS, RETRO_STYLE, recommended_generation
from training.miniworld import shipped

from .conftest import write_dataset


def test_preset_fills_settings_and_flags_win(tiny_sd1, dataset, tmp_path):
    cfg = load_config(None, {"base_model": tiny_sd1, "dataset": dataset, "out": str(tmp_path), "rank": 2},
                      preset="retro-style")
    assert (cfg.method, cfg.train_text_encoder, cfg.with_prior_preservation) == ("lora", False, True)
    assert cfg.instance_prompt == "retro anime style" and cfg.max_steps == 1500 and cfg.l2sp_weight == 0.01
    assert cfg.rank == 2  # the flag, not the preset's 8
    assert not {"base_model", "dataset", "out", "resolution"} & set(RETRO_STYLE.settings)
    assert "retro-style" in PRESETS and "Measured" in RETRO_STYLE.help


def test_unknown_preset_is_one_line_naming_the_known_ones(tiny_sd1, dataset, tmp_path):
    from training.dreambooth import ConfigError

    with pytest.raises(ConfigError, match="unknown preset 'retro'; known: retro-style"):
        load_config(None, {"base_model": tiny_sd1, "dataset": dataset, "out": str(tmp_path)}, preset="retro")


def test_train_command_with_the_retro_preset_trains_two_steps_on_the_mini_world_base(tmp_path):
    data = write_dataset(tmp_path / "data", n=2, size=(64, 64))
    out, printed = tmp_path / "run", io.StringIO()
    call_command("train", preset="retro-style", base_model=str(shipped.BASE), dataset=str(data), out=str(out),
                 bucket_step="8", max_steps="2", num_class_images="2", class_inference_steps="2",
                 validation_inference_steps="2", checkpoint_steps="0", class_data_dir=str(tmp_path / "class"),
                 stdout=printed)
    assert (out / "pytorch_lora_weights.safetensors").exists()
    # the last line registers it at the CFG scale the preset was measured at
    assert printed.getvalue().splitlines()[-1].startswith(
        f"register it: manage.py add_model --name dreambooth --path {out / 'pytorch_lora_weights.safetensors'} "
        "--lora-of BASE_NAME --default-guidance-scale 3 ")
    assert len(list(Path(tmp_path / "class").glob("*.png"))) == 2  # prior preservation ran
    import tomllib

    saved = tomllib.loads((out / "config.toml").read_text())
    assert {k: saved[k] for k in RETRO_STYLE.settings if k not in ("max_steps", "num_class_images")} == \
           {k: v for k, v in RETRO_STYLE.settings.items() if k not in ("max_steps", "num_class_images")}
    assert saved["resolution"] == 64 and saved["max_steps"] == 2  # no --resolution: the base model's native size
    with pytest.raises(CommandError):
        call_command("train", preset="no-such-preset", base_model=str(shipped.BASE), dataset=str(data),
                     out=str(tmp_path / "other"))


def test_toml_and_flags_still_win_over_the_model_default(tiny_sd1, dataset, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("resolution = 128\n")
    base = {"base_model": tiny_sd1, "dataset": dataset, "out": str(tmp_path), "instance_prompt": "sks"}
    assert load_config(None, base, defaults={"resolution": 64}).resolution == 64
    assert load_config(str(toml), base, defaults={"resolution": 64}).resolution == 128
    assert load_config(str(toml), {**base, "resolution": 256}, defaults={"resolution": 64}).resolution == 256


def test_each_presets_recommended_generation_defaults_are_valid_model_defaults(db):
    from generator.models import AIModel

    assert RETRO_STYLE.generation == {"guidance_scale": 3.0}  # the CFG its help text reports
    for preset in PRESETS.values():
        AIModel(name="x", source="x", **{f"default_{k}": v for k, v in preset.generation.items()}).clean()


def test_a_presets_recommendations_win_over_the_base_models_defaults_and_no_preset_keeps_them():
    base = {"steps": 12, "guidance_scale": None}
    assert recommended_generation("retro-style", base) == {"steps": 12, "guidance_scale": 3.0}
    assert recommended_generation("", base) == base
    assert recommended_generation(None, base) == base
