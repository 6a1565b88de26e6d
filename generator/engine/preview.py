"""Live previews: latents -> a rough RGB picture with one small matrix, no VAE decode per step.

Each latent pixel is (nearly) a linear code of the colour of the f x f pixel block it stands for, so
RGB ≈ [latent, 1] @ M with M of shape (C + 1, 3). M is fitted per VAE by least squares once per
process: a few smooth synthetic colour fields are encoded and decoded with the model's own VAE (once,
a small batch), and the decoded block-averaged colours are regressed on the latents. It is a rough
picture (a linear map cannot follow a real decoder: on the mini-world model the preview is ~39/255 off
the final picture where a flat mean colour is ~60 off), enough to watch the composition form. Fitting beats
hard-coding the well-known SD 1.x / SDXL factors because it also covers the mini-world and tiny
models (other channel counts and scales) and any fine-tuned VAE, with the same code.
"""
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .latents import decode, encode

FIT_IMAGES = 12
FIT_LATENT_SIDE = 16


@dataclass
class LatentPreviewer:
    """RGB in [-1, 1] ≈ [latents, 1] @ matrix; matrix (C + 1, 3)."""

    matrix: torch.Tensor

    def __call__(self, latents: torch.Tensor) -> Image.Image:
        """(1, C, h, w) scaled latents -> an h x w RGB picture."""
        x = latents[0].detach().float().cpu()  # (C, h, w)
        features = torch.cat([x, torch.ones_like(x[:1])]).flatten(1).T  # (h*w, C+1)
        rgb = (features @ self.matrix).T.reshape(3, *x.shape[1:])  # (3, h, w)
        pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def _fit_pictures(side: int, count: int) -> torch.Tensor:
    """(count, 3, side, side) smooth random colour fields in [-1, 1] (fixed seed), plus pure colours."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, 4, 4, generator=generator) * 2 - 1
    fields = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)
    for i, colour in enumerate(([1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, 1], [-1, -1, -1])[:count]):
        fields[i] = torch.tensor(colour, dtype=torch.float32).reshape(3, 1, 1)
    return fields.clamp(-1, 1)


@torch.no_grad()
def fit_previewer(pipe, device) -> LatentPreviewer:
    """Least-squares fit of the latent -> RGB matrix for `pipe`'s VAE (see the module docstring)."""
    factor = pipe.vae_scale_factor
    pictures = _fit_pictures(FIT_LATENT_SIDE * factor, FIT_IMAGES)
    latents = torch.cat([encode(pipe, p[None].to(device, pipe.vae.dtype)) for p in pictures])
    # Regress on what the decoder shows for those latents (not on the inputs): the preview stands in for
    # a decode. Measured on the mini-world model: 39 vs 44 mean abs error (of 255) against the final picture.
    decoded = torch.cat([decode(pipe, z[None]) for z in latents]).float().clamp(-1, 1).cpu()
    latents = latents.float().cpu()
    targets = torch.nn.functional.avg_pool2d(decoded, factor)  # (N, 3, h, w): colour of each block
    x = torch.cat([latents, torch.ones_like(latents[:, :1])], dim=1).permute(0, 2, 3, 1).reshape(-1, latents.shape[1] + 1)
    y = targets.permute(0, 2, 3, 1).reshape(-1, 3)
    return LatentPreviewer(torch.linalg.lstsq(x, y).solution)


_lock = threading.Lock()
_fitted: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def previewer_for(pipe, device) -> LatentPreviewer:
    """The fitted previewer of `pipe`'s VAE, fitted on first use and kept as long as the VAE lives."""
    with _lock:
        previewer = _fitted.get(pipe.vae)
        if previewer is None:
            previewer = _fitted[pipe.vae] = fit_previewer(pipe, device)
        return previewer
