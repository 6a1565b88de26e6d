"""Diffusers folders that older stacks load too (transformers 4.x, diffusers <= 0.32), rewritten losslessly.

transformers 5 saves `CLIPTextModel` weights without the `text_model.` level and a tokenizer as
`tokenizer.json` only. transformers 4.x then silently initializes a *random* text encoder (none of the
keys match) and its `CLIPTokenizer` fails without `vocab.json` and `merges.txt`. Both are fixed after
`save_pretrained`: keys get the prefix (transformers 5 reads either spelling), and vocab/merges are
written from tokenizer.json's BPE model. Tensors and token ids are unchanged.
"""
import json
from pathlib import Path

from .files import write_atomic

TEXT_MODEL_PREFIX = "text_model."


def _prefixed(key: str) -> str:
    """`text_model.` + key, except keys already prefixed and SDXL's `text_projection` (outside text_model)."""
    return key if key.startswith((TEXT_MODEL_PREFIX, "text_projection.")) else TEXT_MODEL_PREFIX + key


def prefix_text_encoder_keys(folder: Path) -> bool:
    """Rewrite every `<folder>/text_encoder*/model*.safetensors` with `text_model.` keys; True if one changed."""
    from safetensors import safe_open
    from safetensors.torch import save

    changed = False
    for path in sorted(Path(folder).glob("text_encoder*/model*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
            if all(_prefixed(key) == key for key in keys):
                continue
            state = {_prefixed(key): f.get_tensor(key) for key in keys}
        write_atomic(path, save(state, metadata=metadata))
        changed = True
    return changed


def write_vocab_and_merges(tokenizer_dir: Path) -> bool:
    """vocab.json + merges.txt beside a BPE tokenizer.json (CLIP's slow tokenizer files); True if written."""
    tokenizer_dir = Path(tokenizer_dir)
    source = tokenizer_dir / "tokenizer.json"
    if not source.is_file() or (tokenizer_dir / "vocab.json").is_file() and (tokenizer_dir / "merges.txt").is_file():
        return False
    model = json.loads(source.read_text(encoding="utf-8"))["model"]
    if model.get("type") != "BPE":
        return False
    vocab = dict(sorted(model["vocab"].items(), key=lambda item: item[1]))
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    write_atomic(tokenizer_dir / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    write_atomic(tokenizer_dir / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    return True


def make_portable(folder: str | Path) -> Path:
    """Both fixes on a saved diffusers pipeline folder (every text encoder and tokenizer in it)."""
    folder = Path(folder)
    prefix_text_encoder_keys(folder)
    for tokenizer_dir in sorted(folder.glob("tokenizer*")):
        write_vocab_and_merges(tokenizer_dir)
    return folder
