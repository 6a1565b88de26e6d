"""Instance and class pictures: discovery, aspect buckets, a stateless batch plan, pixel loading.

The batch plan is a pure function of (seed, epoch): batch i of the run is recomputed from its index,
so resuming needs only the step counter, and every batch holds pictures of one bucket (one shape).
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message says why and what to do."""


@dataclass(frozen=True)
class Example:
    path: Path
    prompt: str
    size: tuple[int, int]  # (width, height) the picture is trained at


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bucket_size(width: int, height: int, resolution: int, step: int) -> tuple[int, int]:
    """About resolution² pixels with the picture's aspect, sides multiples of `step` (kohya/NovelAI buckets)."""
    scale = (resolution * resolution / (width * height)) ** 0.5
    return (max(step, round(width * scale / step) * step), max(step, round(height * scale / step) * step))


def _manifest_buckets(folder: Path, resolution: int) -> dict[str, tuple[int, int]]:
    """file name -> (w, h) from training.dataprep's manifest.json (kept records), if prepared at `resolution`."""
    path = folder / "manifest.json"
    if not path.exists():
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("settings", {}).get("resolution", resolution) != resolution:
        return {}  # prepared for another resolution: buckets are recomputed from the pictures
    return {Path(r["output"]).name: tuple(r["bucket"]) for r in document.get("records", [])
            if r.get("status", "kept") == "kept" and r.get("output") and r.get("bucket")}


def _prompt(caption: str, instance_prompt: str) -> str:
    """Per-image caption, led by the instance prompt unless the caption already contains it."""
    caption = caption.strip()
    if not caption:
        return instance_prompt
    return caption if instance_prompt.lower() in caption.lower() else f"{instance_prompt}, {caption}"


def drop_tags(prompt: str, rate: float, keep: tuple[str, ...], gen: torch.Generator) -> str:
    """The prompt with each comma-separated tag left out with probability `rate` (kohya's
    caption_tag_dropout_rate), except tags that contain one of `keep` (lower case: the instance prompt).

    One draw per tag from `gen`, in order, whether or not the tag can be dropped: the same generator state
    gives the same prompt, so a resumed run replays it."""
    tags = [t.strip() for t in prompt.split(",") if t.strip()]
    draws = torch.rand(len(tags), generator=gen).tolist()
    return ", ".join(t for t, u in zip(tags, draws) if u >= rate or any(k in t.lower() for k in keep))


def prepare_raw(folder: Path, target: Path, resolution: int, instance_prompt: str) -> Path:
    """Prepare a raw folder with training.dataprep (aspect buckets) into `target`, or refuse if it is absent."""
    try:
        from training.dataprep import ConfigError, Mode, PrepConfig, prepare
    except ImportError:
        raise DatasetError(f"dataset {folder} is not prepared (pictures without a same-name .txt caption and "
                           "no manifest.json) and training.dataprep is not available; prepare it first") from None
    try:
        config = PrepConfig(resolution=resolution, mode=Mode.BUCKET, instance_prompt=instance_prompt)
        return prepare(folder, target, config).target
    except (ConfigError, ValueError) as exc:
        raise DatasetError(f"dataset {folder} is not prepared and preparing it failed: {exc}") from None


def images_dir(folder: Path) -> Path:
    """A training.dataprep result keeps its pictures in images/ beside manifest.json."""
    return folder / "images" if (folder / "images").is_dir() else folder


def is_prepared(folder: Path) -> bool:
    files = image_files(images_dir(folder))
    return (folder / "manifest.json").exists() or all(p.with_suffix(".txt").exists() for p in files)


def scan_dataset(folder: str | Path, instance_prompt: str, resolution: int, step: int) -> list[Example]:
    """The training pictures of a prepared folder; raises DatasetError if it is missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"dataset {folder} is not a folder")
    files = image_files(images_dir(folder))
    if not files:
        raise DatasetError(f"dataset {folder} holds no pictures ({', '.join(IMAGE_SUFFIXES)})")
    buckets = _manifest_buckets(folder, resolution)
    examples = []
    for path in files:
        caption_file = path.with_suffix(".txt")
        caption = caption_file.read_text(encoding="utf-8") if caption_file.exists() else ""
        size = buckets.get(path.name) or bucket_size(*_image_size(path), resolution, step)
        examples.append(Example(path, _prompt(caption, instance_prompt), tuple(size)))
    return examples


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def load_pixels(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """A picture resized to cover `size`, centre-cropped to it; (3, H, W) in [-1, 1]."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), size, Image.Resampling.BICUBIC)
        array = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


class BatchPlan:
    """Batches of indices, one bucket per batch, reshuffled per epoch from (seed, epoch) alone."""

    def __init__(self, examples: list[Example], batch_size: int, seed: int):
        self.examples, self.batch_size, self.seed = examples, batch_size, seed
        self._epochs: dict[int, list[list[int]]] = {}
        self.batches_per_epoch = len(self._epoch(0))

    def _epoch(self, epoch: int) -> list[list[int]]:
        if epoch not in self._epochs:
            gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            by_bucket: dict[tuple[int, int], list[int]] = {}
            for i in torch.randperm(len(self.examples), generator=gen).tolist():
                by_bucket.setdefault(self.examples[i].size, []).append(i)
            batches = [idx[s:s + self.batch_size] for _, idx in sorted(by_bucket.items())
                       for s in range(0, len(idx), self.batch_size)]
            order = torch.randperm(len(batches), generator=gen).tolist()
            self._epochs = {epoch: [batches[o] for o in order]}  # keep one epoch: memory stays flat
        return self._epochs[epoch]

    def batch(self, index: int) -> list[Example]:
        """The index-th batch of the run (index counts micro-batches over all processes)."""
        epoch, pos = divmod(index, self.batches_per_epoch)
        return [self.examples[i] for i in self._epoch(epoch)[pos]]
