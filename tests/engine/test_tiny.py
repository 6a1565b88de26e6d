import pytest
import torch

from generator.engine.tiny import SD1_PAD, SD2_PAD, build_clip_tokenizer, build_tiny_pipeline

PROMPTS = [
    "retro anime style, a man with glasses",
    "A Girl's HAT!!  (1980s) — ribbon & bow, 12 stars",
    "café naïve 東京 ninja",
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_tokenizer_ids_equal_open_clip(prompt):
    import open_clip
    from open_clip.tokenizer import _clean_lower

    theirs = open_clip.get_tokenizer("ViT-B-32")([prompt])[0].tolist()
    text = _clean_lower(prompt)  # open_clip's own cleaning (ftfy, html, whitespace, lower)
    ours = build_clip_tokenizer()(text, padding="max_length", max_length=77).input_ids
    # open_clip pads with 0; compare up to and including EOS.
    end = theirs.index(49407) + 1
    assert ours[:end] == theirs[:end]


def test_pad_tokens_sd1_vs_sd2():
    sd1, sd2 = build_clip_tokenizer(SD1_PAD), build_clip_tokenizer(SD2_PAD)
    assert (sd1.pad_token_id, sd2.pad_token_id) == (49407, 0)
    assert sd1("a", padding="max_length", max_length=5).input_ids == [49406, 320, 49407, 49407, 49407]
    assert sd2("a", padding="max_length", max_length=5).input_ids == [49406, 320, 49407, 0, 0]
    assert sd1.model_max_length == 77 and len(sd1) == 49408


def test_tiny_pipeline_is_deterministic_in_seed():
    a, b, c = build_tiny_pipeline("sd1", seed=0), build_tiny_pipeline("sd1", seed=0), build_tiny_pipeline("sd1", seed=1)
    weight = "conv_in.weight"
    assert torch.equal(a.unet.state_dict()[weight], b.unet.state_dict()[weight])
    assert not torch.equal(a.unet.state_dict()[weight], c.unet.state_dict()[weight])


def test_tiny_kinds_have_the_real_wiring():
    sd2, sdxl = build_tiny_pipeline("sd2"), build_tiny_pipeline("sdxl")
    assert sd2.scheduler.config.prediction_type == "v_prediction" and sd2.tokenizer.pad_token == "!"
    assert type(sdxl).__name__ == "StableDiffusionXLPipeline"
    assert sdxl.unet.config.addition_embed_type == "text_time"
    assert type(sdxl.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
