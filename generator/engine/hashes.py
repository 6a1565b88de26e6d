"""The hashes peer tools give a .safetensors LoRA, computed their way so ours match theirs.

* A1111 names a LoRA in infotext as `Lora hashes: "ALIAS: HASH"`: HASH is the first 12 hex digits of the
  sha256 of the file's bytes after its header (8-byte little-endian length + JSON), sd-webui-additional-
  networks' "addnet" hash. Metadata can change without changing it.
* kohya sd-scripts stores that full digest as `sshs_model_hash`, and as `sshs_legacy_hash` the first 8 hex
  of the sha256 of the 0x10000 bytes at offset 0x100000, both computed on the file re-serialized with only
  its `ss_*` metadata (`precalculate_safetensors_hashes` in library/train_util.py).
"""
import hashlib
import io
import json
import struct
from pathlib import Path

_BLOCK = 1 << 20


def addnet_hash(stream) -> str:
    """sha256 hex digest of a safetensors stream's tensor bytes (everything after the header)."""
    stream.seek(0)
    (header_len,) = struct.unpack("<Q", stream.read(8))
    stream.seek(8 + header_len)
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


def legacy_hash(stream) -> str:
    """sd-webui-additional-networks' old hash: sha256 of 0x10000 bytes at offset 0x100000, first 8 hex."""
    stream.seek(0x100000)
    return hashlib.sha256(stream.read(0x10000)).hexdigest()[:8]


def a1111_lora_hash(path: str | Path) -> str:
    """The hash A1111 writes for this LoRA file in `Lora hashes:` (12 hex digits)."""
    with open(path, "rb") as f:
        return addnet_hash(f)[:12]


def kohya_hashes(tensors: dict, metadata: dict[str, str]) -> dict[str, str]:
    """{"sshs_model_hash", "sshs_legacy_hash"} for `tensors` saved with `metadata`, as kohya computes them."""
    from safetensors.torch import save

    training_only = {key: value for key, value in metadata.items() if key.startswith("ss_")}
    stream = io.BytesIO(save(tensors, metadata=training_only))
    return {"sshs_model_hash": addnet_hash(stream), "sshs_legacy_hash": legacy_hash(stream)}


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The `__metadata__` of a .safetensors file (read from its header only; {} if none)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    return header.get("__metadata__") or {}


KOHYA_FILE = "lora_kohya.safetensors"  # what training writes beside pytorch_lora_weights.safetensors


def a1111_lora_name(path: str | Path) -> tuple[str, str]:
    """(ALIAS, HASH) as A1111 writes them for this LoRA in `<lora:ALIAS:…>` and `Lora hashes:`.

    ALIAS is the file's `ss_output_name` (A1111's "Alias from file"), else its stem. A diffusers-format file
    (or folder) without one that has our kohya file beside it is named by that file: the one A1111, ComfyUI
    and Civitai load and know by its hash. Pickle files (no header) hash whole, as A1111 does for them.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "pytorch_lora_weights.safetensors"
    if path.suffix != ".safetensors":
        with open(path, "rb") as f:
            return path.stem, hashlib.sha256(f.read()).hexdigest()[:12]
    metadata = safetensors_metadata(path)
    sibling = path.with_name(KOHYA_FILE)
    if "ss_output_name" not in metadata and sibling.is_file():
        path, metadata = sibling, safetensors_metadata(sibling)
    return metadata.get("ss_output_name") or path.stem, a1111_lora_hash(path)
