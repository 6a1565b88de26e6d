"""LoRA mixing as peft adapters on the loaded base: two LoRAs at scales a, b draw what one LoRA holding
a*ΔW1 + b*ΔW2 draws (that LoRA is built here by stacking the factors: B = [a*B1 | b*B2], A = [A1; A2]),
the base is untouched afterwards, and a LoRA of another architecture is refused naming both."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from generator.engine.generate import generate
from generator.engine.infotext import parse_infotext
from generator.engine.params import GenerationParams, LoraChoice, ParamError
from generator.engine.tiny import save_tiny_lora


def small(**overrides) -> GenerationParams:
    base = dict(prompt="retro anime style, a girl", negative_prompt="blurry", seed=3, steps=3, width=64, height=64)
    return GenerationParams(**{**base, **overrides})


def image(result) -> np.ndarray:
    return np.asarray(result.pictures[0].image).astype(np.float32)


def merged(first, second, a: float, b: float, out):
    one, two = load_file(first), load_file(second)
    stacked = {}
    for key in one:
        if key.endswith("lora_A.weight"):
            stacked[key] = torch.cat([one[key], two[key]], dim=0)  # (r1 + r2, in)
        else:
            partner = key.replace("lora_B", "lora_A")
            assert partner in one
            stacked[key] = torch.cat([a * one[key], b * two[key]], dim=1)  # (out, r1 + r2)
    save_file(stacked, str(out))
    return out


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    return save_tiny_lora("sd1", folder / "first.safetensors", seed=1), save_tiny_lora("sd1", folder / "second.safetensors", seed=2)


def test_two_loras_at_a_and_b_equal_one_merged_lora(tiny_sd1, lora_files, tmp_path):
    first, second = lora_files
    a, b = 0.7, -0.4
    before = generate(tiny_sd1, small())
    mix = generate(tiny_sd1, small(loras=[LoraChoice("first", a, str(first)), LoraChoice("second", b, str(second))]))
    one = generate(tiny_sd1, small(loras=[LoraChoice("both", 1.0, str(merged(first, second, a, b, tmp_path / "m.safetensors")))]))
    assert np.abs(image(mix) - image(one)).max() <= 1  # pixels of 0..255: rounding of float sums only
    assert np.abs(image(mix) - image(before)).mean() > 1  # the LoRAs do change the picture
    after = generate(tiny_sd1, small())
    assert np.array_equal(image(after), image(before))  # adapters removed: the cached base is the base again
    assert not [k for k in tiny_sd1.pipeline.unet.state_dict() if "lora" in k or "base_layer" in k]
    info = parse_infotext(mix.pictures[0].infotext)
    assert info["Prompt"].endswith("<lora:first:0.7> <lora:second:-0.4>")
    assert info["Lora hashes"].startswith("first: ") and ", second: " in info["Lora hashes"]


def test_lora_of_another_architecture_is_refused_naming_both(tiny_sd1, tiny_sdxl, lora_files):
    first, _ = lora_files
    with pytest.raises(ParamError) as known:
        generate(tiny_sd1, small(loras=[LoraChoice("xl-style", 1.0, str(first), base_architecture="sdxl")]))
    assert known.value.field == "loras" and "xl-style" in known.value.message and "sd1" in known.value.message
    with pytest.raises(ParamError) as measured:  # architecture unknown: the weights themselves do not fit
        generate(tiny_sdxl, small(loras=[LoraChoice("first", 1.0, str(first))]))
    assert "first" in measured.value.message and tiny_sdxl.name in measured.value.message
    assert generate(tiny_sdxl, small()).pictures  # nothing left behind on the refused model
