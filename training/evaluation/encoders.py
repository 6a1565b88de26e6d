"""Image/text encoders for the metrics: CLIP through the engine's ClipScorer, DINO through transformers.

Both load from local files when offline (HF_HUB_OFFLINE=1, or always for a folder) and raise
EncoderUnavailable with ONE line naming the command-line flag and how to fix it — never a traceback
or a download attempt the machine cannot make.
"""
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_DINO = "facebook/dino-vits16"
DINO_HINT = (
    "pass --dino-model a local folder with a transformers ViT (config.json + weights + preprocessor_config.json), "
    "download it first (huggingface-cli download facebook/dino-vits16), or --dino-model none to skip DINO metrics"
)


class EncoderUnavailable(RuntimeError):
    """An encoder could not be loaded; str() is one line naming the flag and the fix."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:240] + ("…" if len(text) > 240 else "")


def load_clip_encoder(spec: str, device: str | None = None):
    """The engine's ClipScorer (`embed_images(images)`, `embed_texts(texts)` -> L2-normalised [N, D])."""
    from generator.engine.clipscore import ClipUnavailable, load_clip

    try:
        return load_clip(spec, device=device)
    except ClipUnavailable as e:
        reason = e.reason.replace("(or --clip-model)", "").replace("set RETROPORTAL_CLIP_MODEL", "pass --clip-model")
        raise EncoderUnavailable(f"--clip-model: {reason}") from e


@dataclass
class DinoEncoder:
    """A transformers ViT (DINO) whose CLS token of the last hidden state is the image embedding,
    as in DreamBooth's DINO metric (Ruiz et al. 2023 §4.1)."""

    model: torch.nn.Module
    processor: object
    spec: str
    device: str
    batch_size: int = 16

    @torch.no_grad()
    def embed_images(self, images) -> torch.Tensor:
        chunks = []
        images = [image.convert("RGB") for image in images]
        for start in range(0, len(images), self.batch_size):
            inputs = self.processor(images=images[start : start + self.batch_size], return_tensors="pt")
            pixels = inputs["pixel_values"].to(self.device, next(self.model.parameters()).dtype)
            cls = self.model(pixel_values=pixels).last_hidden_state[:, 0]
            chunks.append(torch.nn.functional.normalize(cls.float(), dim=-1).cpu())
        if not chunks:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.cat(chunks)


def _cached_snapshot(repo_id: str) -> str | None:
    """The local cache folder of a hub model, or None, without touching the network.

    transformers' own local_files_only path still probes the hub (with retries) unless HF_HUB_OFFLINE
    was set before it was imported; asking huggingface_hub for the cached snapshot is instant.
    """
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError, bad repo id
        return None


def _load_vit(source: str, local_only: bool):
    from transformers import AutoImageProcessor, AutoModel
    from transformers.utils import logging as t_logging

    from generator.engine.loading import quiet_progress

    verbosity = t_logging.get_verbosity()
    t_logging.set_verbosity_error()
    try:
        with quiet_progress():
            model = AutoModel.from_pretrained(source, local_files_only=local_only)
            processor = AutoImageProcessor.from_pretrained(source, local_files_only=local_only)
    finally:
        t_logging.set_verbosity(verbosity)
    return model, processor


def load_dino_encoder(spec: str = DEFAULT_DINO, device: str | None = None) -> DinoEncoder:
    """Load a DINO ViT from a hub id (local cache only when offline) or a local folder."""
    from generator.engine.devices import pick_device

    device = device or pick_device()
    path = Path(spec).expanduser()
    is_folder = path.is_dir()
    if not is_folder and (spec.startswith((".", "/", "~")) or spec.count("/") != 1):
        raise EncoderUnavailable(f"--dino-model {spec!r}: no such folder; {DINO_HINT}")
    source = str(path) if is_folder else _cached_snapshot(spec)
    if source is None and _offline():
        raise EncoderUnavailable(f"--dino-model {spec!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; {DINO_HINT}")
    try:
        # a folder (given, or the cached snapshot) loads with local files only; a hub id that is not
        # cached is downloaded when online
        model, processor = _load_vit(source or spec, local_only=source is not None)
    except Exception as e:  # OSError (missing files, no network), ValueError (not a vision model), hub errors
        raise EncoderUnavailable(f"--dino-model {spec!r} is unavailable: {_one_line(e)}; {DINO_HINT}") from e
    if not hasattr(model.config, "hidden_size") or "pixel_values" not in inspect.signature(model.forward).parameters:
        raise EncoderUnavailable(f"--dino-model {spec!r} is not an image model (ViT); {DINO_HINT}")
    model.eval().to(device)
    return DinoEncoder(model=model, processor=processor, spec=spec, device=device)


def save_tiny_dino(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny random ViT with DINO ViT-S/16's architecture family (CLS token, patch 16) for offline tests."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    out_dir = Path(out_dir)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=64, patch_size=16
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTModel(config, add_pooling_layer=False).eval()
    from generator.engine.loading import quiet_progress

    with quiet_progress():
        model.save_pretrained(out_dir)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(out_dir)
    return out_dir
