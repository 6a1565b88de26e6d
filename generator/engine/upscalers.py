"""Upscaler models for the hires fix: ESRGAN-family super-resolution networks, loaded through spandrel.

An admin registers the file (AIModel kind "upscaler"); a job names it as `hires_upscaler`, and the hires
pass enlarges the base picture with it instead of Lanczos (A1111's "R-ESRGAN 4x+", "4x-UltraSharp", ...).

Loading. spandrel detects the architecture and scale from the weights' keys, but its own file reader
unpickles .pth/.ckpt (with a restricted unpickler) and hands .pt files to `torch.jit.load`, which runs
TorchScript programs. So spandrel never sees a file here: `.safetensors` is read with safetensors; a
pickle (.pth .pt .ckpt .bin) is refused unless pickles are allowed explicitly (RETROPORTAL_ALLOW_PICKLE /
--allow-pickle, the rule for every checkpoint in this project), and even then it is read with torch's
weights-only unpickler (tensors and plain containers: no code, no TorchScript). spandrel only gets the
state dict.

Running. A picture no larger than a tile runs whole; a larger one in overlapping tiles (each tile sees
`overlap` px of context past its edge, and only its core is kept), so memory stays bounded on big
pictures. Like A1111, the model is applied until the picture covers the target (at most 3 times: a ×2
model and hires 4 run twice), then Lanczos gives the exact target size (models are ×2/×4; the hires
target is base × hires_scale, rounded to a multiple of 8).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .loading import PICKLE_SUFFIXES, ModelLoadError, _one_line

UPSCALER_SUFFIXES = (".safetensors",) + PICKLE_SUFFIXES
MAX_PASSES = 3  # A1111's bound on repeated model passes


@dataclass(frozen=True)
class Tiling:
    """Tiles of `size` px (input side) with `overlap` px of context on each side; A1111's ESRGAN defaults."""

    size: int = 192
    overlap: int = 8


@dataclass
class Upscaler:
    """A loaded super-resolution model; call it with a picture and the target (width, height)."""

    descriptor: object  # spandrel ImageModelDescriptor
    name: str  # what the infotext's `Hires upscaler` says (the registry name)
    source: str
    architecture: str  # spandrel's id, e.g. "ESRGAN"
    scale: int  # 2, 4, ...
    device: str
    dtype: torch.dtype
    tiling: Tiling = field(default_factory=Tiling)

    def __call__(self, picture: Image.Image, size: tuple[int, int]) -> Image.Image:
        """`picture` enlarged by the model until it covers `size`, then resized to exactly `size` (Lanczos)."""
        picture = picture.convert("RGB")
        for _ in range(MAX_PASSES):
            if picture.width >= size[0] and picture.height >= size[1]:
                break
            picture = self.enlarge(picture)
        return picture if picture.size == tuple(size) else picture.resize(size, Image.Resampling.LANCZOS)

    @torch.inference_mode()
    def enlarge(self, picture: Image.Image) -> Image.Image:
        """One pass of the model: `scale` times the size, whole or in tiles."""
        pixels = torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.uint8).copy())
        x = (pixels.permute(2, 0, 1)[None].to(self.device, torch.float32) / 255).to(self.dtype)
        y = self._whole_or_tiled(x)
        out = (y[0].permute(1, 2, 0).float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(out, "RGB")

    def _whole_or_tiled(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        size, overlap, s = self.tiling.size, self.tiling.overlap, self.scale
        if max(h, w) <= size:
            return self.descriptor(x)
        out = torch.zeros((1, 3, h * s, w * s), dtype=x.dtype, device=x.device)
        for top in range(0, h, size):
            for left in range(0, w, size):
                bottom, right = min(top + size, h), min(left + size, w)
                t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
                tile = self.descriptor(x[:, :, t0:min(bottom + overlap, h), l0:min(right + overlap, w)])
                out[:, :, top * s:bottom * s, left * s:right * s] = \
                    tile[:, :, (top - t0) * s:(bottom - t0) * s, (left - l0) * s:(right - l0) * s]
        return out


def check_upscaler_file(source: str, allow_pickle: bool = False) -> Path:
    """The file at `source` if it may be loaded as an upscaler, else ModelLoadError (missing, not a weights
    file, or a pickle while pickles are off). Cheap (a stat), so forms refuse these before any load."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise ModelLoadError(source, f"upscaler {source} is not a file; give the path of a .safetensors upscaler "
                                     "(ESRGAN family, e.g. 4x-UltraSharp.safetensors)")
    suffix = path.suffix.lower()
    if suffix not in UPSCALER_SUFFIXES:
        raise ModelLoadError(source, f"upscaler {source} is not a model file; use a .safetensors upscaler")
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(source, f"upscaler {source} is a pickle ({suffix}), which can run code when loaded; "
                                     "convert it to .safetensors, or allow pickles explicitly "
                                     "(--allow-pickle / RETROPORTAL_ALLOW_PICKLE=1)")
    return path


def _state_dict(source: str, path: Path) -> dict:
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)  # allowed pickles only: no code, no TorchScript
    except Exception as e:  # safetensors/pickle/zip errors of many types
        raise ModelLoadError(source, f"cannot read upscaler {source}: {_one_line(e)}") from e


def _descriptor(source: str, state: dict):
    import spandrel

    if not isinstance(state, dict):
        raise ModelLoadError(source, f"upscaler {source} holds no weights (a {type(state).__name__}, not a state dict)")
    try:
        descriptor = spandrel.ModelLoader(device="cpu").load_from_state_dict(spandrel.canonicalize_state_dict(state))
    except spandrel.UnsupportedModelError:
        raise ModelLoadError(source, f"{source} is not an upscaler architecture spandrel knows (ESRGAN, Real-ESRGAN, "
                                     "SwinIR, ...); register an ESRGAN-family .safetensors file") from None
    except Exception as e:  # the keys matched an architecture but the tensors do not fit it
        raise ModelLoadError(source, f"cannot load upscaler {source}: {_one_line(e)}") from e
    arch = descriptor.architecture.id
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.purpose != "SR" \
            or descriptor.scale < 2:
        raise ModelLoadError(source, f"{source} is a {arch} {descriptor.purpose} model (x{descriptor.scale}), not an "
                                     "upscaler; register a super-resolution model (x2, x4)")
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise ModelLoadError(source, f"{source} is a {arch} model for {descriptor.input_channels}-channel pictures; "
                                     "register one for RGB pictures")
    return descriptor


def load_upscaler(source: str, *, device: str | None = None, dtype: torch.dtype | None = None,
                  allow_pickle: bool = False, name: str | None = None, tiling: Tiling = Tiling()) -> Upscaler:
    """Load the upscaler file `source` onto `device` (default pick_device()); ModelLoadError for anything an
    admin can fix. dtype defaults to default_dtype(device), or fp32 where the model does not support it."""
    from .devices import default_dtype, pick_device

    source = str(source)
    path = check_upscaler_file(source, allow_pickle)
    descriptor = _descriptor(source, _state_dict(source, path))
    device = device or pick_device()
    dtype = dtype or default_dtype(device)
    supported = {torch.float32: True, torch.float16: descriptor.supports_half,
                 torch.bfloat16: descriptor.supports_bfloat16}.get(dtype, False)
    dtype = dtype if supported else torch.float32
    descriptor.to(device).to(dtype).eval()
    return Upscaler(descriptor, name or path.stem, source, descriptor.architecture.id, descriptor.scale, device,
                    dtype, tiling)
