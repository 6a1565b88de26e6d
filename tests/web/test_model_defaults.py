"""Per-model defaults (InvokeAI's model "default settings", Civitai's recommended settings): a model may carry its
own steps and CFG scale, which the generate form, the API and the CLI start at; what the user sets wins."""
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from generator.models import AIModel


@pytest.fixture
def turbo(db):
    """A distilled model as users register them: few steps, low CFG."""
    AIModel.objects.create(name="plain", source="/x", native_size=512, is_default=True)
    return AIModel.objects.create(name="turbo", source="/y", native_size=768, default_steps=4,
                                  default_guidance_scale=1.5)


def test_the_form_starts_at_the_default_models_own_steps_and_cfg(client, alice, turbo):
    AIModel.objects.filter(name="plain").update(is_default=False)
    AIModel.objects.filter(name="turbo").update(is_default=True)
    client.force_login(alice)
    html = client.get(reverse("generate")).content.decode()
    assert 'name="steps" value="4"' in html and 'name="guidance_scale" value="1.5"' in html
    assert 'name="width" value="768"' in html
    assert "Its defaults: 4 steps, CFG 1.5 (Advanced)." in html  # steps and CFG are folded away under Advanced


def test_the_page_carries_every_models_defaults_for_its_script(client, alice, turbo):
    client.force_login(alice)
    html = client.get(reverse("generate")).content.decode()
    defaults = json.loads(re.search(r'<script id="model-defaults" type="application/json">(.*?)</script>',
                                    html).group(1))
    assert defaults == {"plain": {"width": 512, "height": 512, "steps": 20, "guidance_scale": 7.0},
                        "turbo": {"width": 768, "height": 768, "steps": 4, "guidance_scale": 1.5}}
    assert 'name="steps" value="20"' in html  # the default model (plain) sets none: the site's


def test_out_of_range_defaults_are_refused_all_at_once_with_valid_examples(db, settings):
    model = AIModel(name="bad", source="/x", default_steps=500, default_guidance_scale=99)
    with pytest.raises(ValidationError) as refused:
        model.full_clean()
    assert refused.value.message_dict == {
        "default_steps": ["500 is out of range; use 1 to 100, e.g. 20"],
        "default_guidance_scale": ["99 is out of range; use 0 to 30, e.g. 7"],
    }
    AIModel(name="fine", source="/x", default_steps=100, default_guidance_scale=0).full_clean()


def test_add_model_records_the_defaults_and_names_bad_flags_before_loading(db, tiny_sd1_path, capsys):
    call_command("add_model", "--name", "tiny", "--path", str(tiny_sd1_path), "--default-steps", "6",
                 "--default-guidance-scale", "2.5")
    entry = AIModel.objects.get(name="tiny")
    assert (entry.default_steps, entry.default_guidance_scale) == (6, 2.5)
    assert "6 steps, CFG 2.5" in capsys.readouterr().out
    with pytest.raises(CommandError) as refused:
        call_command("add_model", "--name", "other", "--path", "/nonexistent/never-loaded", "--default-steps", "0",
                     "--default-guidance-scale", "-1")
    assert str(refused.value) == ("--default-steps: 0 is out of range; use 1 to 100, e.g. 20; "
                                  "--default-guidance-scale: -1 is out of range; use 0 to 30, e.g. 7")
    assert not AIModel.objects.filter(name="other").exists()


def test_the_admin_form_refuses_an_out_of_range_default(admin_client, db):
    response = admin_client.post(reverse("admin:generator_aimodel_add"), {
        "name": "m", "source": "/x", "kind": "base", "lora_scale": "1", "native_size": "512", "is_active": "on",
        "default_steps": "0", "default_guidance_scale": "31"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["default_steps"] == ["0 is out of range; use 1 to 100, e.g. 20"]
    assert errors["default_guidance_scale"] == ["31 is out of range; use 0 to 30, e.g. 7"]
    assert not AIModel.objects.filter(name="m").exists()


@pytest.mark.browser
def test_picking_a_model_moves_the_fields_the_user_did_not_type(page, live_server, transactional_db, alice, turbo):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-1234")
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{live_server.url}/generate/")
    values = lambda: [float(page.input_value(f"#id_{n}")) for n in ("width", "steps", "guidance_scale")]  # noqa: E731
    assert values() == [512, 20, 7]
    page.select_option("#id_model", "turbo")
    assert values() == [768, 4, 1.5]
    assert page.text_content("#field-model .help") == "Its defaults: 4 steps, CFG 1.5 (Advanced)."
    page.click("#advanced summary")
    page.fill("#id_steps", "9")  # the user's own number stays when the model changes again
    page.select_option("#id_model", "plain")
    assert values() == [512, 9, 7]


def test_the_cli_draws_at_the_registered_models_steps_and_cfg_unless_flags_say_otherwise(db, tiny_sd1_path, tmp_path):
    from PIL import Image

    from generator.engine.infotext import parse_infotext, read_png_parameters

    AIModel.objects.create(name="tiny", source=str(tiny_sd1_path), architecture="sd1", native_size=64,
                           default_steps=2, default_guidance_scale=3)
    call_command("generate", "--model", "tiny", "--prompt", "a girl", "--seed", "1", "--out", str(tmp_path / "a"))
    fields = parse_infotext(read_png_parameters((tmp_path / "a" / "1.png").read_bytes()))
    assert (fields["Steps"], fields["CFG scale"]) == ("2", "3")
    assert Image.open(tmp_path / "a" / "1.png").size == (64, 64)
    call_command("generate", "--model", "tiny", "--prompt", "a girl", "--seed", "1", "--steps", "1",
                 "--guidance-scale", "0", "--out", str(tmp_path / "b"))
    fields = parse_infotext(read_png_parameters((tmp_path / "b" / "1.png").read_bytes()))
    assert (fields["Steps"], fields["CFG scale"]) == ("1", "0")
