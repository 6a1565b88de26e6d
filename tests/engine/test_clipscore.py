import sys

import numpy as np
import pytest
import torch
from PIL import Image

from generator.engine.clipscore import ClipUnavailable, clip_score_100, load_clip, parse_spec


def noise_images(n):
    return [Image.fromarray(np.random.RandomState(i).randint(0, 255, (48, 40, 3), dtype=np.uint8)) for i in range(n)]


def test_score_equals_direct_open_clip_computation(tiny_clip, tiny_clip_dir):
    import open_clip

    images, prompts = noise_images(2), ["retro anime style, a man with glasses", "a cat"]
    scores = tiny_clip.score(images, prompts)

    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{tiny_clip_dir}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tiny_clip_dir}")
    with torch.no_grad():
        image_features = model.encode_image(torch.stack([preprocess(im) for im in images]))
        text_features = model.encode_text(tokenizer(prompts))
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    expected = (image_features * text_features).sum(dim=-1)

    assert np.allclose(scores, expected.numpy(), atol=1e-5)
    assert all(-1 <= s <= 1 for s in scores)
    assert "torchmetrics" not in sys.modules


def test_one_prompt_scores_every_image(tiny_clip):
    images = noise_images(3)
    assert tiny_clip.score(images, ["a man"]) == pytest.approx([tiny_clip.score([im], ["a man"])[0] for im in images], abs=1e-6)
    with pytest.raises(ValueError):
        tiny_clip.score(images, ["a", "b"])


def test_clip_score_100():
    assert clip_score_100(0.305) == pytest.approx(30.5)
    assert clip_score_100(-0.2) == 0.0


def test_spec_parsing():
    assert parse_spec("ViT-H-14/laion2b_s32b_b79k") == ("ViT-H-14", "laion2b_s32b_b79k")
    assert parse_spec("ViT-B-32//srv/clip.safetensors") == ("ViT-B-32", "/srv/clip.safetensors")
    assert parse_spec("hf-hub:org/repo") == ("hf-hub:org/repo", None)
    assert parse_spec("local-dir:/a/b") == ("local-dir:/a/b", None)


@pytest.mark.parametrize("spec", ["local-dir:/no/such/clip", "ViT-B-32", "NoSuchArch/weights"])
def test_unavailable_is_one_line_naming_spec_and_setting(spec):
    with pytest.raises(ClipUnavailable) as info:
        load_clip(spec, device="cpu")
    reason = info.value.reason
    assert "\n" not in reason and spec in reason
    assert "RETROPORTAL_CLIP_MODEL" in reason and "--clip-model" in reason
