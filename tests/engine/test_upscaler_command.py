"""manage.py generate --hires-upscaler: a file path (no database needed), a registry name (read from the
registry), an unknown name (one line naming the valid ones), and a pickle refused without --allow-pickle."""
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generator.engine.infotext import parse_infotext, read_png_parameters
from generator.engine.tiny import save_tiny_upscaler
from tests.engine.test_commands import manage

ARGS = ["--prompt", "retro anime style, a girl", "--seed", "3", "--steps", "4", "--width", "64", "--height", "64",
        "--hires-scale", "2", "--hires-strength", "0.5"]


def hires_info(folder) -> dict:
    picture = folder / "3.png"
    assert Image.open(picture).size == (128, 128)
    return parse_infotext(read_png_parameters(picture.read_bytes()))


def test_an_upscaler_file_needs_no_registry_and_names_itself_by_its_stem(tiny_sd1_path, tiny_upscaler_path,
                                                                        tmp_path):
    result = manage("generate", "--model", str(tiny_sd1_path), *ARGS, "--hires-upscaler", str(tiny_upscaler_path),
                    "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert hires_info(tmp_path / "o")["Hires upscaler"] == tiny_upscaler_path.stem


def test_a_pickle_upscaler_is_refused_without_allow_pickle(tiny_sd1_path, tmp_path):
    pth = save_tiny_upscaler(tmp_path / "old.pth")
    result = manage("generate", "--model", str(tiny_sd1_path), *ARGS, "--hires-upscaler", str(pth),
                    "--out", str(tmp_path / "o"), timeout=120)
    assert result.returncode != 0 and not (tmp_path / "o").exists()
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("CommandError: --hires-upscaler: upscaler ") \
        and "pickle" in line, line


@pytest.mark.django_db
def test_a_registered_name_is_read_from_the_registry_and_an_unknown_one_lists_them(tiny_sd1_path, tiny_upscaler_path,
                                                                                  tmp_path):
    from generator.models import AIModel

    AIModel.objects.create(name="tiny-esrgan", source=str(tiny_upscaler_path), kind="upscaler",
                           architecture="ESRGAN", upscale_factor=2)
    call_command("generate", "--model", str(tiny_sd1_path), *ARGS, "--hires-upscaler", "tiny-esrgan",
                 "--out", str(tmp_path / "o"))
    assert hires_info(tmp_path / "o")["Hires upscaler"] == "tiny-esrgan"
    with pytest.raises(CommandError) as error:
        call_command("generate", "--model", str(tiny_sd1_path), *ARGS, "--hires-upscaler", "4x-nope",
                     "--out", str(tmp_path / "p"))
    assert str(error.value) == "--hires-upscaler: unknown upscaler '4x-nope'; valid: Lanczos, Latent, tiny-esrgan"
    assert not (tmp_path / "p").exists()
