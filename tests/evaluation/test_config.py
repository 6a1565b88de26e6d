"""EvalConfig: one set of evaluation defaults for the CLI, the admin action, the row's JSON and evaluate()."""
import pytest

from training.evaluation.config import EvalConfig, EvalConfigError


def test_the_documented_defaults():
    config = EvalConfig()
    assert (config.images_per_prompt, config.steps, config.seed, config.guidance_scale, config.scheduler) == (
        2, 25, 1234, 7.0, "dpmpp_2m")  # README: 2 images per prompt, 25 steps, seed 1234


def test_unknown_settings_are_named_with_their_source():
    with pytest.raises(EvalConfigError, match=r"^RETROPORTAL_EVALUATION_DEFAULTS: unknown evaluation setting\(s\) stpes;"):
        EvalConfig.from_dict({"stpes": 3}, "RETROPORTAL_EVALUATION_DEFAULTS")


def test_updates_keep_defaults_for_none_and_split_comma_lists():
    config = EvalConfig.from_dict({"steps": 30}).updated({"steps": None, "prompt_keys": "a, b", "languages": ""})
    assert config.steps == 30 and config.prompt_keys == ["a", "b"] and config.languages is None


def test_resolved_takes_the_models_size_and_the_sites_encoders():
    config = EvalConfig(dino_model="none").resolved(64, "local-dir:/clip", "facebook/dino-vits16")
    assert (config.width, config.height, config.clip_model, config.dino_model) == (64, 64, "local-dir:/clip", None)
    assert EvalConfig().resolved(None, "c", "d").width == 512 and EvalConfig().resolved(None, "c", "d").dino_model == "d"
    with pytest.raises(EvalConfigError, match="^images-per-prompt: must be at least 1"):
        EvalConfig(images_per_prompt=0).resolved(64, "c", None)


def test_the_row_json_round_trips():
    config = EvalConfig(steps=3, prompt_keys=["girl"]).resolved(64, "c", None)
    assert EvalConfig.from_dict(config.as_dict()) == config


def test_the_admin_path_and_the_cli_share_the_defaults(settings):
    from training.run_evaluations import resolve_settings

    settings.RETROPORTAL_EVALUATION_DEFAULTS = {}
    values = resolve_settings({}, native_size=64)
    assert (values["images_per_prompt"], values["steps"], values["width"]) == (2, 25, 64)
