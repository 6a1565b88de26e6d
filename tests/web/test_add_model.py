"""manage.py add_model: registers only what really loads, records what it detected, keeps one default."""
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from generator.models import AIModel


def test_registers_a_tiny_folder_with_detected_architecture_and_size(db, tiny_sd1_path, tiny_sd2_path, capsys):
    call_command("add_model", "--name", "tiny-sd1", "--path", str(tiny_sd1_path), "--default")
    call_command("add_model", "--name", "tiny-sd2", "--path", str(tiny_sd2_path))
    sd1, sd2 = AIModel.objects.get(name="tiny-sd1"), AIModel.objects.get(name="tiny-sd2")
    unet = json.loads((tiny_sd1_path / "unet" / "config.json").read_text())
    vae = json.loads((tiny_sd1_path / "vae" / "config.json").read_text())
    native = unet["sample_size"] * 2 ** (len(vae["block_out_channels"]) - 1)  # latent side × VAE downscale
    assert (sd1.architecture, sd1.native_size, sd1.is_default) == ("sd1", native, True)
    assert (sd2.architecture, sd2.is_default) == ("sd2-v", False)
    assert f"added tiny-sd1: base, sd1, {native}px" in capsys.readouterr().out

    call_command("add_model", "--name", "tiny-sd2", "--path", str(tiny_sd2_path), "--default")
    assert list(AIModel.objects.filter(is_default=True).values_list("name", flat=True)) == ["tiny-sd2"]


def test_registers_an_upscaler_with_its_detected_scale(db, tiny_upscaler_path, tmp_path, capsys):
    call_command("add_model", "--name", "tiny-esrgan", "--path", str(tiny_upscaler_path), "--upscaler")
    entry = AIModel.objects.get(name="tiny-esrgan")
    assert (entry.kind, entry.architecture, entry.upscale_factor, entry.is_default) == ("upscaler", "ESRGAN", 2, False)
    assert list(AIModel.objects.upscalers().values_list("name", flat=True)) == ["tiny-esrgan"]
    assert f"added tiny-esrgan: upscaler, ESRGAN x2, {tiny_upscaler_path}" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"^--upscaler: an upscaler has no --default; it is offered as"):
        call_command("add_model", "--name", "up2", "--path", str(tiny_upscaler_path), "--upscaler", "--default")
    (tmp_path / "x.safetensors").write_bytes(b"not weights")
    with pytest.raises(CommandError) as refused:
        call_command("add_model", "--name", "up3", "--path", str(tmp_path / "x.safetensors"), "--upscaler")
    assert str(refused.value).startswith("--path: ") and "\n" not in str(refused.value)
    assert AIModel.objects.count() == 1


@pytest.mark.parametrize("path, words", [
    ("/nonexistent/model-folder", "not found"),
    ("{tmp}/weights.ckpt", "pickle"),
    ("{tmp}", "model_index.json"),
])
def test_refuses_what_does_not_load_and_registers_nothing(db, tmp_path, path, words):
    (tmp_path / "weights.ckpt").write_bytes(b"not really a checkpoint")
    with pytest.raises(CommandError) as refused:
        call_command("add_model", "--name", "broken", "--path", path.format(tmp=tmp_path))
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert not AIModel.objects.exists()


@pytest.mark.parametrize("native, expected", [(768, 768), (16, 64)])  # below the site's minimum: the minimum
def test_the_form_starts_at_the_default_models_native_size(client, django_user_model, db, native, expected):
    AIModel.objects.create(name="default", source="/x", native_size=native, is_default=True)
    AIModel.objects.create(name="xl", source="/y", native_size=1024)
    client.force_login(django_user_model.objects.create_user("carol", password="carol-pass-1234"))
    html = client.get(reverse("generate")).content.decode()
    assert f'name="width" value="{expected}"' in html and f'name="height" value="{expected}"' in html
    assert '"xl": {"width": 1024, "height": 1024' in html  # the defaults the page's JS uses when another model is picked
