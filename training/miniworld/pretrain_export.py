"""Export of a pretrained base mini model: the diffusers folder (atomic, fp16), VAE round-trip report, sizes."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from generator.engine.files import publish_dir
from generator.engine.portable import make_portable

from .attributes import sample_attributes
from .render import render


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 NCHW pictures -> float in [-1, 1] (the VAE's input range)."""
    return torch.from_numpy(images).float().div_(127.5).sub_(1.0)

def export_pipeline(pipe, out_dir: str | Path, fp16: bool = True, extra_files: dict | None = None) -> Path:
    """Save `pipe` as a diffusers folder (safetensors, fp16 by default) at out_dir, atomically.

    extra_files: name -> bytes or a PIL image, written into the folder too (model card, sample grid)."""
    from generator.engine.loading import quiet_progress

    out_dir = Path(out_dir).absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent)
    try:
        if fp16:
            _quiet_to(pipe, torch.float16)
        with quiet_progress():
            pipe.save_pretrained(tmp, safe_serialization=True)
        make_portable(tmp)  # text_model. keys, vocab.json + merges.txt: loads in transformers 4.x too
        for name, content in (extra_files or {}).items():
            if hasattr(content, "save"):
                content.save(os.path.join(tmp, name))
            else:
                Path(tmp, name).write_bytes(content if isinstance(content, bytes) else content.encode())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if fp16:
            _quiet_to(pipe, torch.float32)
    return publish_dir(tmp, out_dir)


def _quiet_to(pipe, dtype) -> None:
    """pipe.to(dtype) without diffusers' warning about "modules that should be kept in float32: []"."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        pipe.to(dtype)
    finally:
        diffusers_logging.set_verbosity(level)


@torch.no_grad()
def reconstruction_report(vae, n: int = 32, seed: int = 31337, size: int = 64) -> tuple[dict, list]:
    """VAE round trips of `n` fresh renders per style: mean absolute error (0-255 scale) per style, and how
    often the shipped classifier still reads every attribute and the style from the reconstruction (the ceiling
    for any generation through this VAE); and the pictures (originals and reconstructions, alternating)."""
    from PIL import Image

    from .classifier import classify

    rng = np.random.default_rng(seed)
    report, pictures = {}, []
    vae = vae.eval()
    for style in ("modern", "retro"):
        attrs = [sample_attributes(rng) for _ in range(n)]
        images = np.stack([np.asarray(render(a, style, size=size, seed=int(rng.integers(2**31)))).transpose(2, 0, 1)
                           for a in attrs])
        x = to_float(images).to(vae.dtype)
        recon = vae.decode(vae.encode(x).latent_dist.mean).sample.float().clamp(-1, 1)
        out = ((recon + 1) * 127.5).round().to(torch.uint8).numpy()
        report[style] = float(np.abs(out.astype(np.float32) - images.astype(np.float32)).mean())
        preds = classify([Image.fromarray(o.transpose(1, 2, 0)) for o in out])
        truth = [a.names() | {"style": style} for a in attrs]
        report[f"{style}_read_back"] = {k: float(np.mean([p[k] == t[k] for p, t in zip(preds, truth)])) for k in truth[0]}
        for a, b in list(zip(images, out))[:8]:
            pictures += [a.transpose(1, 2, 0), b.transpose(1, 2, 0)]
    return report, pictures


def folder_size(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())
