"""Pixels <-> latents with a pipeline's VAE, the way the diffusers pipelines do it (and no other way).

Latents here are always *scaled* (multiplied by the VAE's scaling_factor, shifted by shift_factor
where the VAE has one): the space the UNet works in. Encoding takes the posterior's mode rather than
a sample, so an init picture gives the same latents whatever the seed; the seed's noise is added by
the sampler instead (one source of randomness, not two).
"""
import torch
from PIL import Image


def _needs_upcast(vae) -> bool:
    """fp16 SD/SDXL VAEs overflow to NaN on decode/encode; diffusers runs them in fp32 (force_upcast)."""
    return vae.dtype == torch.float16 and bool(vae.config.get("force_upcast", False))


def _shift(vae) -> float:
    return vae.config.get("shift_factor") or 0.0


def to_tensor(pipe, image: Image.Image, device) -> torch.Tensor:
    """A PIL picture as the VAE's input: (1, 3, H, W) in [-1, 1] (already at the pass's size)."""
    return pipe.image_processor.preprocess(image, height=image.height, width=image.width).to(device)


@torch.no_grad()
def encode(pipe, pixels: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) pixels in [-1, 1] -> (1, C, H/f, W/f) scaled latents (posterior mode)."""
    vae = pipe.vae
    dtype = torch.float32 if _needs_upcast(vae) else vae.dtype
    with _vae_dtype(vae, dtype):
        posterior = vae.encode(pixels.to(dtype)).latent_dist
        latents = posterior.mode()
    return ((latents - _shift(vae)) * vae.config.scaling_factor).to(vae.dtype)


@torch.no_grad()
def decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents (1, C, h, w) -> pixels (1, 3, h*f, w*f) in about [-1, 1]."""
    vae = pipe.vae
    dtype = torch.float32 if _needs_upcast(vae) else vae.dtype
    with _vae_dtype(vae, dtype):
        pixels = vae.decode((latents / vae.config.scaling_factor + _shift(vae)).to(dtype), return_dict=False)[0]
    return pixels


def to_pil(pipe, pixels: torch.Tensor) -> Image.Image:
    """Decoded pixels -> one RGB PIL picture (the pipelines' own postprocess: clamp, denormalize, round)."""
    return pipe.image_processor.postprocess(pixels, output_type="pil", do_denormalize=[True])[0]


class _vae_dtype:
    """Run the VAE in `dtype` inside the block and give it its own dtype back afterwards."""

    def __init__(self, vae, dtype):
        self.vae, self.dtype, self.before = vae, dtype, vae.dtype

    def __enter__(self):
        if self.dtype != self.before:
            self.vae.to(self.dtype)

    def __exit__(self, *exc):
        if self.dtype != self.before:
            self.vae.to(self.before)
