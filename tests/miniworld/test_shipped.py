"""On a fresh clone (nothing registered), manage.py generate without --model draws with the shipped retro model:
retro for the style phrase, the base's modern style (and its backgrounds) without it."""
import pytest
from django.core.management import call_command
from PIL import Image

from generator.engine.infotext import read_png_parameters
from generator.models import AIModel
from training.miniworld import shipped
from training.miniworld.classifier import classify


@pytest.mark.django_db
def test_generate_without_model_uses_the_shipped_retro_model(tmp_path, settings):
    settings.RETROPORTAL_DEFAULT_MODEL = ""
    assert not AIModel.objects.exists()
    call_command("generate", "--prompt", "retro anime style, a young girl with pink long hair, red shirt, on a beach",
                 "--steps", "20", "--width", "64", "--height", "64", "--num-images", "4", "--seed", "3",
                 "--out", str(tmp_path))
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 4
    infotext = read_png_parameters(files[0].read_bytes())
    assert "Model: miniworld-retro" in infotext
    assert f"CFG scale: {shipped.retro_guidance_scale():g}," in infotext  # the CFG its card was measured at
    preds = classify([Image.open(f) for f in files])
    assert sum(p["style"] == "retro" for p in preds) >= 3, preds
    assert sum(p["hair_color"] == "pink" for p in preds) >= 3, preds

    # The prior is kept: the same prompt without the style phrase draws the modern style.
    plain = tmp_path / "plain"
    call_command("generate", "--prompt", "a young girl with pink long hair, red shirt, on a beach", "--steps", "20",
                 "--num-images", "4", "--seed", "3", "--out", str(plain))
    preds = classify([Image.open(f) for f in sorted(plain.glob("*.png"))])
    assert sum(p["style"] == "modern" for p in preds) >= 3, preds
    assert sum(p["background"] == "beach" for p in preds) >= 3, preds
