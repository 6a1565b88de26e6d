"""The downloadable file of a LoRA model: which file, its size and SHA-256 (cached by path, size and mtime)."""
import hashlib
from dataclasses import dataclass
from pathlib import Path

_HASHES: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class LoraFile:
    path: Path
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name


def sha256_of(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def lora_file(source: str) -> LoraFile | None:
    """The .safetensors file of a LoRA source (the file itself, or the one such file in its folder), or None."""
    path = Path(source)
    if path.is_dir():
        candidates = sorted(path.glob("*.safetensors"))
        path = candidates[0] if len(candidates) == 1 else None
    if path is None or path.suffix != ".safetensors" or not path.is_file():
        return None
    return LoraFile(path=path, size=path.stat().st_size, sha256=sha256_of(path))


def model_card(source: str, limit: int = 20_000) -> str:
    """The model card (README.md beside or inside the model's source, Hugging Face style), or ''."""
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    for candidate in (folder / "README.md", folder / "model_card.md"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace")[:limit]
    return ""
