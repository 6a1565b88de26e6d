"""Prompts longer than CLIP's 77-token window, handled the way AUTOMATIC1111 does.

CLIP's text encoder sees at most 77 tokens (BOS + 75 + EOS); diffusers silently truncates the rest,
so "retro anime style, ..., red scarf" loses its last details without a word. For SD 1.x/2.x we do
what A1111 does: cut the token ids into 75-token chunks, wrap each in BOS/EOS (padded to 77),
encode every chunk separately and concatenate the hidden states along the sequence axis. The UNet's
cross-attention takes any sequence length, so a 120-token prompt becomes 2 x 77 = 154 positions.
The negative prompt is padded with empty chunks to the same length (classifier-free guidance runs
both through one batched UNet call, so their shapes must match).

SDXL has two text encoders and a pooled embedding taken from the first chunk; chunking it changes
what the pooled vector means, so there we let diffusers truncate at 77 tokens but always return a
warning that quotes the words that were dropped. Nothing is ever cut silently.
"""
from dataclasses import dataclass, field

import torch

CHUNK = 75  # tokens per chunk, between BOS and EOS


@dataclass
class PromptInputs:
    """Keyword arguments for the pipeline call plus human-readable warnings."""

    kwargs: dict
    warnings: list[str] = field(default_factory=list)
    chunks: int = 1


def _token_ids(tokenizer, text: str) -> list[int]:
    """Token ids of `text` without BOS/EOS and without truncation.

    Fast (tokenizers-backed) tokenizers are asked directly, which skips transformers' "sequence
    longer than 77" log line: over-long prompts are expected here and reported as warnings instead.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend.encode(text, add_special_tokens=False).ids
    return tokenizer(text, add_special_tokens=False, truncation=False).input_ids


def _chunks(ids: list[int], count: int) -> list[list[int]]:
    """`ids` cut into `count` chunks of at most CHUNK ids (trailing chunks may be empty)."""
    return [ids[i * CHUNK : (i + 1) * CHUNK] for i in range(count)]


def _chunk_count(ids: list[int]) -> int:
    return max(1, -(-len(ids) // CHUNK))


@torch.no_grad()
def encode_chunked(tokenizer, text_encoder, ids: list[int], count: int, device) -> torch.Tensor:
    """Hidden states (1, 77 * count, dim) of `ids` encoded as `count` BOS/EOS-wrapped 77-token chunks.

    Each chunk is laid out exactly as the tokenizer pads a short prompt (BOS, tokens, EOS, then the
    pad token: '<|endoftext|>' for SD 1.x, '!' for SD 2.x), so a prompt that fits in one chunk gets
    the very same embedding diffusers would compute.
    """
    rows = []
    for chunk in _chunks(ids, count):
        row = [tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]
        rows.append(row + [tokenizer.pad_token_id] * (CHUNK + 2 - len(row)))
    input_ids = torch.tensor(rows, dtype=torch.long, device=device)
    hidden = text_encoder(input_ids)[0]  # (count, 77, dim): last hidden state, final layer norm applied
    return hidden.reshape(1, -1, hidden.shape[-1])


def _dropped_warning(tokenizer, ids: list[int], what: str) -> str | None:
    if len(ids) <= CHUNK:
        return None
    dropped = tokenizer.decode(ids[CHUNK:]).strip()
    return (
        f"{what} is {len(ids)} tokens; this model reads the first {CHUNK}, "
        f"so these words were ignored: {dropped!r}"
    )


def prompt_inputs(pipe, prompt: str, negative_prompt: str, architecture: str, device) -> PromptInputs:
    """How to pass `prompt`/`negative_prompt` to `pipe`: chunked embeddings (SD 1/2) or text (SDXL)."""
    tokenizer = pipe.tokenizer
    ids = _token_ids(tokenizer, prompt)
    negative_ids = _token_ids(tokenizer, negative_prompt or "")
    if architecture == "sdxl":
        notes = [_dropped_warning(tokenizer, ids, "prompt"), _dropped_warning(tokenizer, negative_ids, "negative prompt")]
        return PromptInputs({"prompt": prompt, "negative_prompt": negative_prompt or None}, [n for n in notes if n])
    count = max(_chunk_count(ids), _chunk_count(negative_ids))
    encoder = pipe.text_encoder
    embeds = encode_chunked(tokenizer, encoder, ids, count, device)
    negative_embeds = encode_chunked(tokenizer, encoder, negative_ids, count, device)
    return PromptInputs(
        {"prompt_embeds": embeds.to(encoder.dtype), "negative_prompt_embeds": negative_embeds.to(encoder.dtype)},
        chunks=count,
    )
