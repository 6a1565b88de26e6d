"""The run admin form: TrainConfig's messages land on the field they name; the model refuses bad configs."""
import pytest
from django.core.exceptions import ValidationError

from training.run_form import TrainingRunForm
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def form_data(base_model, dataset, **over):
    data = {"name": "retro-run", "dataset": dataset.pk, "base_model": base_model.pk, "method": "lora",
            "instance_prompt": "", "rank": 4, "resolution": 64, "max_steps": 3, "learning_rate": 1e-4,
            "batch_size": 1, "gradient_accumulation_steps": 1, "checkpoint_steps": 0, "validation_steps": 0,
            "seed": 1, "class_prompt": "", "num_class_images": 2, "prior_loss_weight": 1.0, "l2sp_weight": 0.0,
            "l2_weight": 0.0, "extra_settings": 'validation_inference_steps = 2\nlr_scheduler = "cosine"\n'}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def test_valid_form_saves_the_settings_as_config(base_model, tiny_dataset):
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, l2sp_weight=0.01))
    assert form.is_valid(), form.errors
    run = form.save()
    assert run.config["l2sp_weight"] == 0.01 and run.config["lr_scheduler"] == "cosine"
    assert run.max_steps == 3 and run.status == "draft"
    assert run.out_dir.endswith(f"training_runs/{run.pk}")
    cfg = run.train_config()
    assert cfg.instance_prompt == "sks girl"  # the dataset's, as the field was left blank
    assert cfg.dataset == str(tiny_dataset.prepared_dir) and cfg.base_model == base_model.source
    # Editing it again shows the same values, the extra ones as TOML.
    again = TrainingRunForm(instance=run)
    assert again.fields["rank"].initial == 4 and 'lr_scheduler = "cosine"' in again.fields["extra_settings"].initial


@pytest.mark.parametrize("field,value,expected", [
    ("max_steps", 0, "max_steps: expected >= 1, got 0"),
    ("rank", -1, "rank: expected >= 1, got -1"),
    ("resolution", 60, "resolution: 60 is not a multiple of 8"),
    ("learning_rate", 0, "learning_rate: expected a positive number"),
])
def test_bad_values_get_field_level_messages(base_model, tiny_dataset, field, value, expected):
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, **{field: value}))
    assert not form.is_valid()
    assert expected in " ".join(form.errors[field]), form.errors
    assert list(form.errors) == [field]


def test_unknown_toml_key_in_extra_settings_is_named(base_model, tiny_dataset):
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, extra_settings="learning_rte = 0.1\n"))
    assert not form.is_valid()
    assert form.errors["extra_settings"] == ["unknown setting: learning_rte"]


def test_bad_extra_value_and_bad_toml_land_on_extra_settings(base_model, tiny_dataset):
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, extra_settings='lr_scheduler = "sideways"'))
    assert not form.is_valid()
    assert "lr_scheduler: 'sideways' is not one of" in form.errors["extra_settings"][0]
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, extra_settings="rank = "))
    assert not form.is_valid() and "not valid TOML" in form.errors["extra_settings"][0]
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, extra_settings="rank = 8"))
    assert not form.is_valid() and "set it with its own field" in form.errors["extra_settings"][0]


def test_class_prompt_equal_to_instance_prompt_is_refused(base_model, tiny_dataset):
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, with_prior_preservation="on",
                                          instance_prompt="sks girl", class_prompt="SKS  girl"))
    assert not form.is_valid()
    assert "class_prompt: equal to instance_prompt" in form.errors["class_prompt"][0]


def test_prior_preservation_takes_the_datasets_class_prompt(base_model, tiny_dataset):
    form = TrainingRunForm(data=form_data(base_model, tiny_dataset, with_prior_preservation="on"))
    assert form.is_valid(), form.errors
    assert form.save().train_config().class_prompt == "a girl"


def test_the_model_refuses_a_bad_config_on_save(base_model, tiny_dataset):
    with pytest.raises(ValidationError, match="rank: expected >= 1"):
        TrainingRun.objects.create(name="bad", dataset=tiny_dataset, base_model=base_model, config={"rank": 0})
    with pytest.raises(ValidationError, match="out: set by the run itself"):
        TrainingRun.objects.create(name="bad2", dataset=tiny_dataset, base_model=base_model, config={"out": "/etc"})
    assert not TrainingRun.objects.exists()


def test_admin_add_page_shows_the_message_next_to_the_field(admin_client, base_model, tiny_dataset):
    response = admin_client.post("/admin/training/trainingrun/add/", form_data(base_model, tiny_dataset, rank=-1))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rank"] == ["rank: expected >= 1, got -1"]
    assert b"rank: expected &gt;= 1, got -1" in response.content
    response = admin_client.post("/admin/training/trainingrun/add/", form_data(base_model, tiny_dataset))
    assert response.status_code == 302
    assert TrainingRun.objects.get().name == "retro-run"


def browser_post(form: TrainingRunForm, **over) -> dict:
    """What a browser posts for an untouched form (every field at the value shown), with `over` typed in."""
    shown = {name: form.get_initial_for_field(field, name) for name, field in form.fields.items()}
    data = {name: value for name, value in shown.items()
            if value is not None and value is not False}  # 0.0 is shown (and posted), unlike False
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def test_resolution_defaults_to_the_base_models_native_size(base_model, tiny_dataset):
    from generator.models import AIModel

    sd = AIModel.objects.create(name="sd15", source="/nonexistent/sd15", architecture="sd1", native_size=512)
    blank = TrainingRunForm()
    assert blank.fields["resolution"].initial is None
    assert blank.fields["resolution"].widget.attrs["placeholder"] == "64"  # the default model's
    assert "sd15 512 px" in blank.fields["resolution"].help_text and "tiny-sd1 64 px" in blank.fields["resolution"].help_text
    for base, expected in ((base_model, 64), (sd, 512)):
        form = TrainingRunForm(data=browser_post(blank, name=f"run-{expected}", dataset=tiny_dataset.pk, base_model=base.pk,
                                                 max_steps=3, num_class_images=2))
        assert form.is_valid(), form.errors
        run = form.save()
        assert "resolution" not in run.config and run.train_config().resolution == expected
    typed = TrainingRunForm(data=browser_post(blank, name="typed", dataset=tiny_dataset.pk, base_model=base_model.pk,
                                              resolution=128, max_steps=3))
    assert typed.is_valid(), typed.errors
    assert typed.save().train_config().resolution == 128


def test_the_retro_preset_fills_its_settings_and_a_typed_field_wins(base_model, tiny_dataset):
    from training.dreambooth.presets import RETRO_STYLE

    blank = TrainingRunForm()
    assert ("retro-style", "Retro style — recommended") in blank.fields["preset"].choices
    assert "Measured on the mini-world base" in str(blank.fields["preset"].help_text)
    form = TrainingRunForm(data=browser_post(blank, name="retro", dataset=tiny_dataset.pk, base_model=base_model.pk,
                                             preset="retro-style", rank=2))
    assert form.is_valid(), form.errors
    run = form.save()
    cfg = run.train_config()
    assert cfg.rank == 2  # typed by the admin, not the preset's 8
    expected = {k: v for k, v in RETRO_STYLE.settings.items() if k not in ("rank", "method")}
    assert {k: run.config[k] for k in expected} == expected
    assert (run.method, cfg.max_steps, cfg.with_prior_preservation, cfg.train_text_encoder) == ("lora", 1500, True, False)
    assert cfg.l2sp_weight == 0.01
    assert cfg.instance_prompt == "retro anime style" and cfg.class_prompt == "a portrait of a person"
    assert cfg.resolution == 64  # the preset never sets it: the base model's native size
    assert run.preset == "retro-style"  # the registered model takes its recommended CFG (test_worker)

    shown = TrainingRunForm(instance=run)  # editing it later: the kept preset does not fill its settings again
    edit = TrainingRunForm(instance=run, data=browser_post(shown, max_steps=200))
    assert edit.is_valid(), edit.errors
    cfg = edit.save().train_config()
    assert (cfg.rank, cfg.max_steps, run.preset) == (2, 200, "retro-style")


def test_the_toml_box_wins_over_the_preset_and_no_preset_changes_nothing(base_model, tiny_dataset):
    blank = TrainingRunForm()
    form = TrainingRunForm(data=browser_post(blank, name="retro2", dataset=tiny_dataset.pk, base_model=base_model.pk,
                                             preset="retro-style", extra_settings="text_encoder_lr = 0.0005\n"))
    assert form.is_valid(), form.errors
    assert form.save().train_config().text_encoder_lr == 0.0005
    plain = TrainingRunForm(data=browser_post(blank, name="plain", dataset=tiny_dataset.pk, base_model=base_model.pk))
    assert plain.is_valid(), plain.errors
    cfg = plain.save().train_config()
    assert (cfg.rank, cfg.max_steps, cfg.train_text_encoder, cfg.instance_prompt) == (4, 400, False, "sks girl")
    assert plain.instance.preset == ""
