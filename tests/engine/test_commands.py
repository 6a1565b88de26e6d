"""manage.py generate / make_tiny_models as users run them: subprocesses, no database needed with a path."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.engine.infotext import read_png_parameters

REPO = Path(__file__).resolve().parents[2]
# A database URL nothing listens on: a command given a path must never need the database.
NO_DATABASE = "postgres://nobody@127.0.0.1:9/none"


def manage(*args, timeout=300):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="retroportal.settings_test",
        DATABASE_URL=NO_DATABASE,
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONWARNINGS="ignore",
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


GOOD = [
    "--prompt", "retro anime style, a man with glasses", "--negative-prompt", "blurry", "--seed", "7",
    "--steps", "4", "--width", "64", "--height", "64", "--num-images", "2", "--scheduler", "dpmpp_2m",
]


def test_generate_twice_gives_identical_pixels_and_a1111_metadata(tiny_sd1_path, tmp_path):
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        result = manage("generate", "--model", str(tiny_sd1_path), *GOOD, "--out", str(out))
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 2 and "seed=7" in lines[0] and "seed=8" in lines[1]
        outputs.append(out)
    for name, seed in (("7.png", 7), ("8.png", 8)):
        first, second = (out / name for out in outputs)
        assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))
        parameters = read_png_parameters(first.read_bytes())
        assert parameters.startswith("retro anime style, a man with glasses\nNegative prompt: blurry\n")
        assert f"Steps: 4, Sampler: DPM++ 2M, Schedule type: Uniform, CFG scale: 7, Seed: {seed}, Size: 64x64, Model hash: " in parameters
    assert sorted(p.name for p in outputs[0].iterdir()) == ["7.png", "8.png"]  # no temp files left


def test_generate_with_clip_score(tiny_sd1_path, tiny_clip_dir, tmp_path):
    result = manage(
        "generate", "--model", str(tiny_sd1_path), "--prompt", "a man", "--seed", "1", "--steps", "2",
        "--width", "64", "--height", "64", "--clip-model", f"local-dir:{tiny_clip_dir}", "--out", str(tmp_path / "o"),
    )
    assert result.returncode == 0, result.stderr
    assert "clip=" in result.stdout


BAD = {
    "missing model": (["--model", "{tmp}/no-such-model"], "not found"),
    "non-pipeline folder": (["--model", "{tmp}"], "model_index.json"),
    "ckpt without --allow-pickle": (["--model", "{tmp}/model.ckpt"], "pickle"),
    "width 65": (["--model", "{sd1}", "--width", "65"], "width"),
    "steps 0": (["--model", "{sd1}", "--steps", "0"], "steps"),
    "negative guidance": (["--model", "{sd1}", "--guidance-scale", "-1"], "guidance"),
    "zero images": (["--model", "{sd1}", "--num-images", "0"], "num-images"),
    "unknown scheduler": (["--model", "{sd1}", "--scheduler", "nope"], "pndm, ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, unipc"),
    "two bad fields at once": (["--model", "{sd1}", "--width", "65", "--steps", "0"],
                               "--steps: 0 is out of range; use 1 to 100; --width: 65 is not a multiple of 8"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_nonzero_with_one_line_and_writes_nothing(case, tiny_sd1_path, tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"pickle bytes")
    args, expected = BAD[case]
    args = [a.format(tmp=tmp_path, sd1=tiny_sd1_path) for a in args]
    out = tmp_path / "out"
    defaults = {"--width": "64", "--height": "64", "--steps": "2"}
    extra = [x for k, v in defaults.items() if k not in args for x in (k, v)]
    result = manage("generate", "--prompt", "a man", *extra, *args, "--out", str(out), timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in lines[0]
    assert not out.exists()


def test_without_width_and_height_the_picture_has_the_models_native_size(tmp_path):
    from training.miniworld.shipped import BASE

    result = manage("generate", "--model", str(BASE), "--prompt", "a girl", "--seed", "1", "--steps", "2",
                    "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "o" / "1.png").size == (64, 64)  # the mini-world base's size, not 512


def test_make_tiny_models_writes_all_kinds(tmp_path):
    result = manage("make_tiny_models", "--out", str(tmp_path / "models"))
    assert result.returncode == 0, result.stderr
    for name, marker in (("sd1", "model_index.json"), ("sd2", "model_index.json"), ("sdxl", "model_index.json"),
                         ("clip", "open_clip_config.json")):
        assert (tmp_path / "models" / name / marker).is_file()
    again = manage("make_tiny_models", "--out", str(tmp_path / "models"))
    assert again.returncode == 0 and again.stdout.count("exists") == 4


def test_creative_flags_img2img_inpaint_hires_lora_variation(tiny_sd1_path, tmp_path):
    from PIL import ImageDraw

    from generator.engine.infotext import parse_infotext
    from generator.engine.tiny import save_tiny_lora

    init = tmp_path / "init.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(init)
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((16, 16, 48, 48), fill=255)
    mask.save(tmp_path / "mask.png")
    lora = save_tiny_lora("sd1", tmp_path / "style.safetensors", seed=1)
    result = manage("generate", "--model", str(tiny_sd1_path), "--prompt", "a (girl:1.2)", "--seed", "3", "--steps",
                    "4", "--width", "64", "--height", "64", "--init-image", str(init), "--strength", "0.5",
                    "--mask-image", str(tmp_path / "mask.png"), "--mask-blur", "2", "--hires-scale", "2",
                    "--hires-strength", "0.5", "--lora", f"{lora}:0.6", "--variation-seed", "9",
                    "--variation-strength", "0.2", "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    picture = tmp_path / "o" / "3.png"
    assert Image.open(picture).size == (128, 128)
    info = parse_infotext(read_png_parameters(picture.read_bytes()))
    assert info["Prompt"] == "a (girl:1.2) <lora:style:0.6>"
    assert (info["Denoising strength"], info["Mask blur"], info["Hires upscale"], info["Variation seed"],
            info["Variation seed strength"]) == ("0.5", "2", "2", "9", "0.2")
    assert info["Lora hashes"].startswith("style: ")


def test_bad_creative_flags_are_all_named_at_once(tiny_sd1_path, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    result = manage("generate", "--model", str(tiny_sd1_path), "--prompt", "a man", "--width", "64", "--height", "64",
                    "--init-image", str(tmp_path / "notes.txt"), "--strength", "0", "--hires-scale", "9",
                    "--lora", "x:5", "--variation-strength", "2", "--out", str(tmp_path / "o"), timeout=120)
    assert result.returncode != 0 and not (tmp_path / "o").exists()
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    for expected in ("--init-image: ", "is not a picture", "--strength: 0 is out of range", "--hires-scale: 9",
                     "--lora: LoRA 'x' has scale 5", "--variation-strength: 2"):
        assert expected in line, line
