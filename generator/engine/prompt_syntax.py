"""AUTOMATIC1111's prompt syntax, and token counts per 75-token chunk, without torch (the web process uses it).

Syntax (as A1111's prompt_parser): `(text)` multiplies the weight by 1.1, `[text]` divides it by 1.1,
`(text:1.3)` sets a factor, nesting multiplies, `\\(` `\\)` `\\[` `\\]` `\\\\` are literal, an unclosed bracket
applies to the rest of the prompt, and `BREAK` (capitals, a word of its own) ends the current chunk.

`load_tokenizer` reads only a model's tokenizer files with the `tokenizers` library (no weights, no torch,
no transformers, which would import torch).
"""
import re
from pathlib import Path

CHUNK = 75  # tokens per chunk between BOS and EOS (CLIP's 77-token window)
UP, DOWN = 1.1, 1 / 1.1
BREAK = "BREAK"
_TOKEN = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


def parse_weights(text: str) -> list[tuple[str, float]]:
    """[(text, weight), ...] of a prompt; a ("BREAK", -1.0) item marks each BREAK. Neighbours of equal weight
    are merged; "" gives [("", 1.0)]."""
    pieces: list[list] = []
    round_open: list[int] = []  # indexes into pieces where each open bracket started
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if piece[1] != -1.0:  # a BREAK inside brackets stays a BREAK
                piece[1] *= factor

    for match in _TOKEN.finditer(text):
        token, factor = match.group(0), match.group(1)
        if token.startswith("\\"):  # an escaped bracket or backslash; a lone backslash is dropped (as A1111)
            if token[1:]:
                pieces.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif factor is not None and round_open:
            scale(round_open.pop(), float(factor))
        elif token == ")" and round_open:
            scale(round_open.pop(), UP)
        elif token == "]" and square_open:
            scale(square_open.pop(), DOWN)
        else:
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    pieces.append([BREAK, -1.0])
                if part:
                    pieces.append([part, 1.0])
    for start in round_open:
        scale(start, UP)
    for start in square_open:
        scale(start, DOWN)
    merged: list[list] = []
    for piece in pieces:
        if merged and piece[1] == merged[-1][1] and piece[1] != -1.0:
            merged[-1][0] += piece[0]
        else:
            merged.append(piece)
    return [(t, w) for t, w in merged] or [("", 1.0)]


def token_counts(tokenizer, text: str) -> list[int]:
    """Tokens in each 75-token chunk of `text` after its weights are parsed (BREAK starts a new chunk)."""
    chunks, current = [], 0
    for piece, weight in parse_weights(text):
        if weight == -1.0:
            chunks.append(current)
            current = 0
            continue
        ids = tokenizer.encode(piece, add_special_tokens=False).ids if piece else []
        for _ in ids:
            if current == CHUNK:
                chunks.append(current)
                current = 0
            current += 1
    chunks.append(current)
    return chunks


class TokenizerMissing(ValueError):
    """The model has no tokenizer files we can read offline (say which and why, in one line)."""


def _tokenizer_dir(source: str) -> Path:
    path = Path(source)
    if path.is_dir():
        return path / "tokenizer"
    if path.suffix in (".safetensors", ".ckpt") or path.exists():
        raise TokenizerMissing(f"{source} is a single-file checkpoint: its tokenizer is not beside it")
    from huggingface_hub import try_to_load_from_cache

    for name in ("tokenizer/tokenizer.json", "tokenizer/vocab.json"):
        cached = try_to_load_from_cache(source, name)
        if isinstance(cached, str):
            return Path(cached).parent
    raise TokenizerMissing(f"{source} is not in the local Hugging Face cache (download the model first)")


def load_tokenizer(source: str):
    """A `tokenizers.Tokenizer` (no padding or truncation) for the model at `source`: tokenizer.json, else
    CLIP's BPE built from vocab.json + merges.txt (the files transformers 4 writes)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    folder = _tokenizer_dir(source)
    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        bpe = models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<|endoftext|>",
                                   continuing_subword_prefix="", end_of_word_suffix="</w>")
        tokenizer = Tokenizer(bpe)
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"),
                                 behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ])
    else:
        raise TokenizerMissing(f"{source} has no tokenizer files ({folder} holds no tokenizer.json or vocab.json)")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
