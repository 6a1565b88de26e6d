import torch

from generator.engine.prompts import prompt_inputs

WORDS = "girl boy hat scarf red blue green".split()


def long_prompt(tokenizer, n_tokens: int) -> str:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(n_tokens))
    assert len(tokenizer(text, add_special_tokens=False).input_ids) == n_tokens
    return text


def test_120_token_prompt_is_chunked_to_154_positions_sd1(tiny_sd1):
    pipe = tiny_sd1.pipeline
    inputs = prompt_inputs(pipe, long_prompt(pipe.tokenizer, 120), "blurry", "sd1", "cpu")
    assert inputs.kwargs["prompt_embeds"].shape == (1, 154, 32)
    assert inputs.kwargs["negative_prompt_embeds"].shape == (1, 154, 32)
    assert inputs.chunks == 2
    assert inputs.warnings == []


def test_short_prompt_embedding_equals_diffusers_own(tiny_sd1, tiny_sd2):
    for model in (tiny_sd1, tiny_sd2):
        pipe = model.pipeline
        ours = prompt_inputs(pipe, "retro anime style, a man with glasses", "blurry", model.architecture, "cpu").kwargs
        theirs, theirs_negative = pipe.encode_prompt("retro anime style, a man with glasses", "cpu", 1, True, "blurry")
        assert torch.equal(ours["prompt_embeds"], theirs)
        assert torch.equal(ours["negative_prompt_embeds"], theirs_negative)


def test_long_negative_prompt_pads_the_positive_one(tiny_sd2):
    pipe = tiny_sd2.pipeline
    inputs = prompt_inputs(pipe, "a man", long_prompt(pipe.tokenizer, 160), "sd2-v", "cpu")
    assert inputs.kwargs["prompt_embeds"].shape[1] == inputs.kwargs["negative_prompt_embeds"].shape[1] == 231


def test_sdxl_truncates_with_a_warning_naming_dropped_words(tiny_sdxl):
    pipe = tiny_sdxl.pipeline
    text = long_prompt(pipe.tokenizer, 75) + " wearing purple sunglasses"
    inputs = prompt_inputs(pipe, text, "", "sdxl", "cpu")
    assert inputs.kwargs["prompt"] == text
    assert len(inputs.warnings) == 1
    assert "wearing purple sunglasses" in inputs.warnings[0]
    assert "78 tokens" in inputs.warnings[0]
