"""Upscaler models for the hires fix on a tiny random ESRGAN (spandrel's RRDBNet, saved as a real file):
spandrel's detection, exact target sizes, tiles, the pickle gate (spandrel never sees a refused file), refusals
of files that are no upscaler, the worker cache, and hires fix through the upscaler with its infotext."""
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generator.engine.cache import UpscalerCache
from generator.engine.generate import generate
from generator.engine.infotext import parse_infotext
from generator.engine.loading import ModelLoadError
from generator.engine.params import GenerationParams, Limits, ParamError
from generator.engine.tiny import save_tiny_upscaler
from generator.engine.upscalers import Tiling, load_upscaler
from tests import pictures as pics

NAME = "tiny-esrgan"


@pytest.fixture(scope="module")
def upscaler(tiny_upscaler_path):
    return load_upscaler(str(tiny_upscaler_path), device="cpu", name=NAME)


def counting(upscaler):
    """`upscaler` whose model calls are recorded (input shapes) in the returned list."""
    calls, model = [], upscaler.descriptor

    def call(x):
        calls.append(tuple(x.shape))
        return model(x)

    return replace(upscaler, descriptor=call), calls


def small(**overrides) -> GenerationParams:
    base = dict(prompt="retro anime style, a girl", seed=5, steps=4, width=64, height=64, scheduler="euler",
                hires_scale=2, hires_strength=0.5)
    return GenerationParams(**{**base, **overrides})


def test_spandrel_detects_the_tiny_file_as_esrgan_x2(tiny_upscaler_path, upscaler):
    import spandrel

    found = spandrel.ModelLoader().load_from_file(str(tiny_upscaler_path))  # spandrel's own reader, for reference
    assert (found.architecture.id, found.scale, found.purpose) == ("ESRGAN", 2, "SR")
    assert (upscaler.architecture, upscaler.scale, upscaler.name) == ("ESRGAN", 2, NAME)
    assert load_upscaler(str(save_tiny_upscaler(tiny_upscaler_path.with_name("x4.safetensors"), scale=4)),
                         device="cpu").scale == 4


def test_the_result_has_the_exact_target_size_and_the_model_runs_until_it_covers_it(upscaler):
    up, calls = counting(upscaler)
    assert up(pics.gradient(32, 32), (64, 64)).size == (64, 64) and calls == [(1, 3, 32, 32)]
    calls.clear()
    assert up(pics.gradient(32, 32), (72, 56)).size == (72, 56)  # 64 px is short of 72: a second pass, then Lanczos
    assert calls == [(1, 3, 32, 32), (1, 3, 64, 64)]


def test_large_pictures_run_in_overlapping_tiles_that_match_the_whole_run(upscaler):
    picture = pics.gradient(80, 72)
    whole, whole_calls = counting(replace(upscaler, tiling=Tiling(size=1000)))
    tiled, tiled_calls = counting(replace(upscaler, tiling=Tiling(size=32, overlap=16)))
    a, b = np.asarray(whole.enlarge(picture)).astype(int), np.asarray(tiled.enlarge(picture)).astype(int)
    assert a.shape == b.shape == (144, 160, 3)
    assert len(whole_calls) == 1 and len(tiled_calls) == 9 and max(max(s[2:]) for s in tiled_calls) <= 32 + 2 * 16
    assert np.abs(a - b).mean() < 0.1, np.abs(a - b).mean()  # no seams...
    seams = np.asarray(replace(upscaler, tiling=Tiling(size=32, overlap=0)).enlarge(picture)).astype(int)
    assert np.abs(a - seams).mean() > 1  # ...which tiles without context would show


def test_a_pickle_is_refused_without_the_opt_in_and_loads_with_it(tmp_path, upscaler):
    pth = save_tiny_upscaler(tmp_path / "tiny.pth")
    with pytest.raises(ModelLoadError, match="pickle.*RETROPORTAL_ALLOW_PICKLE"):
        load_upscaler(str(pth), device="cpu")
    allowed = load_upscaler(str(pth), device="cpu", allow_pickle=True)
    assert (allowed.architecture, allowed.scale, allowed.name) == ("ESRGAN", 2, "tiny")
    picture = pics.gradient(24, 24)
    assert np.array_equal(np.asarray(allowed.enlarge(picture)), np.asarray(upscaler.enlarge(picture)))


class _Touch:
    """A pickle that creates a file when unpickled: what a hostile .pth would do, harmlessly."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (Path(self.path),)


def test_spandrel_never_sees_a_hostile_pickle_or_a_torchscript_file(tmp_path):
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(pickle.dumps({"model.0.weight": _Touch(marker)}))
    with pytest.raises(ModelLoadError, match="pickle"):
        load_upscaler(str(hostile), device="cpu")
    with pytest.raises(ModelLoadError, match="cannot read upscaler"):  # allowed, yet weights-only: no code runs
        load_upscaler(str(hostile), device="cpu", allow_pickle=True)
    assert not marker.exists()
    script = tmp_path / "scripted.pt"  # spandrel would hand a .pt to torch.jit.load
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 1)), str(script))
    with pytest.raises(ModelLoadError, match="TorchScript"):
        load_upscaler(str(script), device="cpu", allow_pickle=True)


def test_files_that_are_no_upscaler_are_refused_with_one_line(tmp_path):
    from generator.engine.tiny import save_tiny_lora

    lora = save_tiny_lora("sd1", tmp_path / "style.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors at all")
    (tmp_path / "notes.txt").write_text("hello")
    cases = {str(lora): "not an upscaler architecture spandrel knows", str(tmp_path / "junk.safetensors"):
             "cannot read upscaler", str(tmp_path / "notes.txt"): "not a model file",
             str(tmp_path / "missing.safetensors"): "is not a file"}
    for source, expected in cases.items():
        with pytest.raises(ModelLoadError, match=expected) as error:
            load_upscaler(source, device="cpu")
        assert "\n" not in str(error.value) and source in str(error.value)


def test_the_cache_loads_each_upscaler_once_and_keeps_the_pickle_gate(tiny_upscaler_path):
    loads = []

    def loader(source, **kwargs):
        loads.append(kwargs["allow_pickle"])
        return load_upscaler(source, **kwargs)

    cache = UpscalerCache(loader=loader)
    first = cache.get(str(tiny_upscaler_path), device="cpu", name="a")
    again = cache.get(str(tiny_upscaler_path), device="cpu", name="b")
    assert (cache.loads, first.name, again.name) == (1, "a", "b") and again.descriptor is first.descriptor
    cache.get(str(tiny_upscaler_path), device="cpu", allow_pickle=True)
    assert loads == [False, True]


def test_hires_fix_through_the_upscaler_doubles_the_size_and_differs_from_lanczos(tiny_sd1, upscaler):
    up, calls = counting(upscaler)
    result = generate(tiny_sd1, small(hires_upscaler=NAME), upscaler=up)
    lanczos = generate(tiny_sd1, small())
    picture = result.pictures[0]
    assert picture.image.size == lanczos.pictures[0].image.size == (128, 128)
    assert calls == [(1, 3, 64, 64)]  # the base picture, enlarged once by the x2 model
    difference = np.abs(np.asarray(picture.image).astype(int) - np.asarray(lanczos.pictures[0].image).astype(int))
    assert difference.mean() > 1, difference.mean()
    info = parse_infotext(picture.infotext)
    assert (info["Hires upscaler"], info["Hires upscale"], info["Size"]) == (NAME, "2", "64x64")
    assert "Hires upscaler: Lanczos" in lanczos.pictures[0].infotext


def test_an_upscaler_name_must_be_known_and_loaded(tiny_sd1, upscaler):
    with pytest.raises(ParamError) as error:
        generate(tiny_sd1, small(hires_upscaler="4x-nope"))
    assert error.value.field == "hires_upscaler"
    assert error.value.message == "unknown upscaler '4x-nope'; valid: Lanczos, Latent"
    known = Limits(upscalers=(NAME, "other"))
    assert small(hires_upscaler="other").errors(known) == {}
    assert small(hires_upscaler="4x-nope").errors(known)["hires_upscaler"] == [
        "unknown upscaler '4x-nope'; valid: Lanczos, Latent, tiny-esrgan, other"]
    with pytest.raises(ParamError, match="'other' was not loaded"):  # known to the site, but not handed in
        generate(tiny_sd1, small(hires_upscaler="other"), limits=known, upscaler=upscaler)


def test_inpainting_with_the_upscaler_pastes_back_the_original_enlarged_by_the_same_model(tiny_sd1, upscaler):
    """Outside the mask the big picture is the original as the upscaler enlarges it, as the hires pass's input
    was, not a Lanczos enlargement of it (a softer border around the repainted part)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(3)
    init = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((20, 20, 44, 44), fill=255)
    up, calls = counting(upscaler)
    result = generate(tiny_sd1, small(hires_upscaler=NAME, init_image=init, mask_image=mask, mask_blur=4,
                                      strength=1.0), upscaler=up)
    out = np.asarray(result.pictures[0].image).astype(int)
    expected = np.asarray(upscaler(init, (128, 128))).astype(int)
    assert calls == [(1, 3, 64, 64)] * 2  # the base picture for the hires pass, the original for the paste-back
    outside = np.ones((128, 128), bool)
    outside[2 * (20 - 12):2 * (44 + 13), 2 * (20 - 12):2 * (44 + 13)] = False  # blur radius 4 < 12 px, doubled
    assert np.array_equal(out[outside], expected[outside])
    lanczos = np.asarray(init.resize((128, 128), Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(out[outside] - lanczos[outside]).mean() > 1
