"""Prompts encoded the way AUTOMATIC1111 does it: weights `(word:1.3)`, `BREAK`, and no 77-token limit.

CLIP's text encoder sees at most 77 tokens (BOS + 75 + EOS); diffusers silently truncates the rest.
We do what A1111 does: the prompt is parsed into (text, weight) pieces (`prompt_syntax.parse_weights`,
shared with the web's token counter), each piece is tokenized on its own, the token ids are cut into
75-token chunks (`BREAK` closes a chunk early), every chunk is wrapped in BOS/EOS (padded to 77) and
encoded separately, and the hidden states are concatenated along the sequence axis. The UNet's
cross-attention takes any sequence length, so a 120-token prompt becomes 2 x 77 = 154 positions.

Weights are A1111's "original" emphasis: each chunk's hidden states are multiplied token by token by
their weight, then rescaled so the chunk's mean is what it was before. A chunk whose weights are all 1
is left untouched, so `(word:1.0)` gives exactly the embedding (and pixels) of `word`.

The negative prompt is padded with empty chunks to the same length (classifier-free guidance runs
both through one batched UNet call, so their shapes must match). SDXL does the same with both of its
text encoders (penultimate hidden states, concatenated) and takes the pooled embedding from the first
chunk, as A1111 does; an empty SDXL negative prompt is all zeros, as in diffusers
(`force_zeros_for_empty_prompt`).
"""
from dataclasses import dataclass, field

import torch

from .prompt_syntax import CHUNK, parse_weights


@dataclass
class PromptInputs:
    """Keyword arguments for the pipeline call (embeddings) plus human-readable warnings."""

    kwargs: dict
    warnings: list[str] = field(default_factory=list)
    chunks: int = 1


def _token_ids(tokenizer, text: str) -> list[int]:
    """Token ids of `text` without BOS/EOS and without truncation.

    Fast (tokenizers-backed) tokenizers are asked directly, which skips transformers' "sequence
    longer than 77" log line: over-long prompts are expected here.
    """
    if not text:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    # A diffusers call with padding="max_length" leaves padding switched on in the shared backend: then the
    # transformers call below (which resets it per call) is the safe one.
    if backend is not None and backend.padding is None and backend.truncation is None:
        return backend.encode(text, add_special_tokens=False).ids
    return tokenizer(text, add_special_tokens=False, padding=False, truncation=False).input_ids


def weighted_chunks(tokenizer, text: str) -> list[list[tuple[int, float]]]:
    """`text` as chunks of at most CHUNK (token id, weight) pairs; BREAK starts a new chunk.

    Each weighted piece is tokenized separately (as A1111 does), so a weight never leaks into the
    neighbouring word. An empty prompt is one empty chunk.
    """
    chunks: list[list[tuple[int, float]]] = [[]]
    for piece, weight in parse_weights(text or ""):
        if weight == -1.0:  # BREAK
            chunks.append([])
            continue
        for token in _token_ids(tokenizer, piece):
            if len(chunks[-1]) == CHUNK:
                chunks.append([])
            chunks[-1].append((token, weight))
    return chunks


def _rows(tokenizer, chunks, count: int) -> tuple[list[list[int]], list[list[float]]]:
    """Token ids and weights (count, 77) laid out as the tokenizer pads a short prompt (BOS, ids, EOS, pad)."""
    ids, weights = [], []
    for chunk in chunks + [[]] * (count - len(chunks)):
        row = [tokenizer.bos_token_id, *(t for t, _ in chunk), tokenizer.eos_token_id]
        ids.append(row + [tokenizer.pad_token_id] * (CHUNK + 2 - len(row)))
        weights.append([1.0, *(w for _, w in chunk)] + [1.0] * (CHUNK + 1 - len(chunk)))
    return ids, weights


def apply_weights(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's emphasis on one chunk: hidden (1, 77, D) times weights (77,), mean restored.

    Multiplying changes the chunk's overall magnitude, which the UNet reads as "more of everything";
    restoring the mean keeps only the relative emphasis. All-ones weights return `hidden` itself.
    """
    if bool((weights == 1).all()):
        return hidden
    original_mean = hidden.mean()
    scaled = hidden * weights.reshape(1, -1, 1).to(hidden.dtype)
    return scaled * (original_mean / scaled.mean())


@torch.no_grad()
def encode_chunks(tokenizer, text_encoder, chunks, count: int, device, penultimate: bool = False):
    """(hidden (1, 77 * count, D), pooled (1, P) or None) of weighted `chunks`, padded to `count` chunks.

    penultimate=True takes the second-to-last layer's hidden states (SDXL); pooled is the encoder's
    projected text embedding of the first chunk when it has one (SDXL's text_encoder_2).
    """
    ids, weights = _rows(tokenizer, chunks, count)
    input_ids = torch.tensor(ids, dtype=torch.long, device=device)  # (count, 77)
    out = text_encoder(input_ids, output_hidden_states=penultimate)
    hidden = out.hidden_states[-2] if penultimate else out[0]  # (count, 77, D)
    pooled = out[0][:1] if out[0].ndim == 2 else None  # CLIPTextModelWithProjection: text_embeds (count, P)
    weight_rows = torch.tensor(weights, device=device)
    parts = [apply_weights(hidden[i : i + 1], weight_rows[i]) for i in range(len(ids))]
    return torch.cat(parts, dim=1), pooled


def encode_chunked(tokenizer, text_encoder, ids: list[int], count: int, device) -> torch.Tensor:
    """Hidden states (1, 77 * count, dim) of plain token `ids` (weight 1) as `count` 77-token chunks."""
    chunks = [[(t, 1.0) for t in ids[i * CHUNK : (i + 1) * CHUNK]] for i in range(max(1, -(-len(ids) // CHUNK)))]
    return encode_chunks(tokenizer, text_encoder, chunks, count, device)[0]


def _encoders(pipe, architecture: str) -> list[tuple]:
    if architecture == "sdxl":
        pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
        return [(t, e) for t, e in pairs if t is not None and e is not None]
    return [(pipe.tokenizer, pipe.text_encoder)]


def prompt_inputs(pipe, prompt: str, negative_prompt: str, architecture: str, device) -> PromptInputs:
    """How to pass `prompt`/`negative_prompt` to `pipe`: weighted, chunked embeddings for SD 1/2 and SDXL."""
    sdxl = architecture == "sdxl"
    encoders = _encoders(pipe, architecture)
    positive = [weighted_chunks(tokenizer, prompt) for tokenizer, _ in encoders]
    negative = [weighted_chunks(tokenizer, negative_prompt or "") for tokenizer, _ in encoders]
    count = max(len(c) for c in positive + negative)
    embeds, negative_embeds, pooled = [], [], None
    negative_pooled = None
    for (tokenizer, encoder), pos, neg in zip(encoders, positive, negative):
        hidden, p = encode_chunks(tokenizer, encoder, pos, count, device, penultimate=sdxl)
        embeds.append(hidden)
        pooled = p if p is not None else pooled
        hidden, p = encode_chunks(tokenizer, encoder, neg, count, device, penultimate=sdxl)
        negative_embeds.append(hidden)
        negative_pooled = p if p is not None else negative_pooled
    dtype = encoders[-1][1].dtype
    kwargs = {"prompt_embeds": torch.cat(embeds, dim=-1).to(dtype),
              "negative_prompt_embeds": torch.cat(negative_embeds, dim=-1).to(dtype)}
    if sdxl:
        kwargs["pooled_prompt_embeds"] = pooled.to(dtype)
        kwargs["negative_pooled_prompt_embeds"] = negative_pooled.to(dtype)
        if not (negative_prompt or "").strip() and pipe.config.get("force_zeros_for_empty_prompt", True):
            kwargs["negative_prompt_embeds"] = torch.zeros_like(kwargs["negative_prompt_embeds"])
            kwargs["negative_pooled_prompt_embeds"] = torch.zeros_like(kwargs["negative_pooled_prompt_embeds"])
    return PromptInputs(kwargs, chunks=count)
