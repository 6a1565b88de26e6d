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


def test_sdxl_short_prompt_equals_diffusers_own_with_zeroed_empty_negative(tiny_sdxl):
    pipe = tiny_sdxl.pipeline
    ours = prompt_inputs(pipe, "retro anime style, a man with glasses", "", "sdxl", "cpu").kwargs
    embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
        "retro anime style, a man with glasses", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True)
    assert torch.equal(ours["prompt_embeds"], embeds) and torch.equal(ours["pooled_prompt_embeds"], pooled)
    assert torch.equal(ours["negative_prompt_embeds"], negative) and not negative.any()
    assert torch.equal(ours["negative_pooled_prompt_embeds"], negative_pooled)
    named = prompt_inputs(pipe, "a man", "blurry", "sdxl", "cpu").kwargs
    _, negative, _, negative_pooled = pipe.encode_prompt("a man", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="blurry")
    assert torch.equal(named["negative_prompt_embeds"], negative)
    assert torch.equal(named["negative_pooled_prompt_embeds"], negative_pooled)


def test_long_negative_prompt_pads_the_positive_one(tiny_sd2):
    pipe = tiny_sd2.pipeline
    inputs = prompt_inputs(pipe, "a man", long_prompt(pipe.tokenizer, 160), "sd2-v", "cpu")
    assert inputs.kwargs["prompt_embeds"].shape[1] == inputs.kwargs["negative_prompt_embeds"].shape[1] == 231


def test_sdxl_long_prompt_is_chunked_not_truncated(tiny_sdxl):
    pipe = tiny_sdxl.pipeline
    text = long_prompt(pipe.tokenizer, 75) + " wearing purple sunglasses"
    inputs = prompt_inputs(pipe, text, "", "sdxl", "cpu")
    assert inputs.kwargs["prompt_embeds"].shape == (1, 154, 64)  # two chunks, both encoders' 32 features
    assert inputs.kwargs["pooled_prompt_embeds"].shape == (1, 32)
    short = prompt_inputs(pipe, long_prompt(pipe.tokenizer, 75), "", "sdxl", "cpu")
    assert torch.allclose(inputs.kwargs["pooled_prompt_embeds"], short.kwargs["pooled_prompt_embeds"], atol=1e-6)


def _hand_weighted(pipe, pieces):
    """The A1111 embedding computed by hand: pieces tokenized apart, one 77-row, weights then the mean restored."""
    tokenizer = pipe.tokenizer
    ids, weights = [tokenizer.bos_token_id], [1.0]
    for text, weight in pieces:
        piece = tokenizer(text, add_special_tokens=False).input_ids
        ids += piece
        weights += [weight] * len(piece)
    ids.append(tokenizer.eos_token_id)
    weights.append(1.0)
    ids += [tokenizer.pad_token_id] * (77 - len(ids))
    weights += [1.0] * (77 - len(weights))
    with torch.no_grad():
        z = pipe.text_encoder(torch.tensor([ids]))[0]
    mean = z.mean()
    z = z * torch.tensor(weights)[None, :, None]
    return z * (mean / z.mean())


def test_weights_match_a_hand_computed_embedding(tiny_sd1):
    pipe = tiny_sd1.pipeline
    ours = prompt_inputs(pipe, "a girl, (red hat:1.5), [[scarf]]", "", "sd1", "cpu").kwargs["prompt_embeds"]
    hand = _hand_weighted(pipe, [("a girl, ", 1.0), ("red hat", 1.5), (", ", 1.0), ("scarf", 1 / 1.1 ** 2)])
    assert torch.allclose(ours, hand, atol=1e-6)
    plain = prompt_inputs(pipe, "a girl, red hat", "", "sd1", "cpu").kwargs["prompt_embeds"]
    same = prompt_inputs(pipe, "a girl, (red hat:1.0)", "", "sd1", "cpu").kwargs["prompt_embeds"]
    assert torch.equal(plain, same)
    escaped = prompt_inputs(pipe, r"a girl \(smiling\)", "", "sd1", "cpu").kwargs["prompt_embeds"]
    assert torch.equal(escaped, _hand_weighted(pipe, [("a girl (smiling)", 1.0)]))


def test_break_starts_a_new_chunk(tiny_sd1):
    pipe = tiny_sd1.pipeline
    inputs = prompt_inputs(pipe, "a girl BREAK red hat", "", "sd1", "cpu")
    assert inputs.chunks == 2 and inputs.kwargs["prompt_embeds"].shape == (1, 154, 32)
    second = prompt_inputs(pipe, "red hat", "", "sd1", "cpu").kwargs["prompt_embeds"]
    assert torch.equal(inputs.kwargs["prompt_embeds"][:, 77:], second)
