"""One picture, pass by pass: the base pass (txt2img, img2img or inpainting) and the hires-fix pass.

    base pass   width x height; from noise, or from the init picture noised to `strength`; an
                inpainting job repaints only under the (blurred) mask and gets the original pasted
                back outside it (picture_ops.composite)
    hires pass  the base result upscaled to width*hires_scale (Lanczos on pixels, bilinear on latents
                for "Latent", or a registered upscaler model: `upscalers`), then img2img at that size
                with hires_strength — how A1111's hires fix makes big pictures a model could not
                compose at that size directly

Every pass draws its noise from the picture's seed (and variation seed), so a picture depends only on
its own seed and parameters.
"""
from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image

from . import latents as vae_io
from .denoise import Inpaint, conditioning, denoise, schedule, start_latents
from .noise import initial_noise
from .picture_ops import RESAMPLE, blurred_mask, composite, crop_and_resize


@dataclass
class Prepared:
    """What every picture of a job shares: the init picture, its latents and the inpainting masks."""

    init: Image.Image | None = None  # crop-and-resized to the base size
    init_latents: torch.Tensor | None = None  # (1, C, h, w)
    mask: Image.Image | None = None  # blurred, at the base size ("L")
    inpaint: Inpaint | None = None


def _latent_mask(mask: Image.Image, latent_size: tuple[int, int], device, dtype) -> torch.Tensor:
    """The blurred mask resized to latent size and rounded to 0/1 (A1111's mask_round), (1, 1, h, w)."""
    small = mask.resize(latent_size, Image.Resampling.BILINEAR)
    values = torch.tensor(list(small.getdata()), dtype=torch.float32).reshape(1, 1, latent_size[1], latent_size[0])
    return (values / 255).round().to(device, dtype)


def prepare(pipe, params, device) -> Prepared:
    """Init picture and mask at the job's base size, encoded once for all the job's pictures."""
    if params.init_image is None:
        return Prepared()
    init = crop_and_resize(params.init_image.convert("RGB"), params.width, params.height)
    pixels = vae_io.to_tensor(pipe, init, device).to(pipe.vae.dtype)  # (1, 3, H, W)
    init_latents = vae_io.encode(pipe, pixels)
    if params.mask_image is None:
        return Prepared(init, init_latents)
    mask = blurred_mask(params.mask_image, params.width, params.height, params.mask_blur)
    latent_size = (init_latents.shape[3], init_latents.shape[2])
    latent_mask = _latent_mask(mask, latent_size, device, init_latents.dtype)
    masked_latents = None
    if pipe.unet.config.in_channels == 9:  # an inpainting model sees the picture with the hole cut out
        keep = torch.tensor(list(mask.getdata()), dtype=pixels.dtype).reshape(1, 1, mask.height, mask.width) < 128
        masked_latents = vae_io.encode(pipe, pixels * keep.to(device))
    return Prepared(init, init_latents, mask, Inpaint(latent_mask, init_latents, masked_latents))


@dataclass
class PassRequest:
    width: int
    height: int
    steps: int
    strength: float  # 1 = from pure noise
    init_latents: torch.Tensor | None
    inpaint: Inpaint | None = None


def run_pass(pipe, prompts: dict, params, request: PassRequest, seed: int, variation_seed: int | None,
             scheduler, sdxl: bool, on_step: Callable) -> torch.Tensor:
    """Denoise one pass; returns its final latents (1, C, H/f, W/f)."""
    unet = pipe.unet
    device = unet.device
    factor = pipe.vae_scale_factor
    shape = (1, unet.config.out_channels, request.height // factor, request.width // factor)
    noise, generator = initial_noise(seed, shape, device, prompts["prompt_embeds"].dtype, variation_seed,
                                     params.variation_strength)
    timesteps = schedule(scheduler, request.steps, request.strength, device)
    latents = start_latents(scheduler, noise, timesteps, request.init_latents, request.strength)
    cond = conditioning(prompts, params.guidance_scale, (request.width, request.height), sdxl)
    return denoise(unet, scheduler, cond, latents, timesteps, generator, noise, request.inpaint, on_step)


def upscale_latents(latents: torch.Tensor, width: int, height: int, factor: int) -> torch.Tensor:
    """A1111's "Latent" upscaler: bilinear resize of the latents to the target's latent size."""
    return torch.nn.functional.interpolate(latents, size=(height // factor, width // factor), mode="bilinear",
                                           antialias=False)


def draw(pipe, prompts: dict, params, prepared: Prepared, seed: int, variation_seed: int | None,
         new_scheduler: Callable, sdxl: bool, on_step: Callable[[str, int, int, torch.Tensor], None],
         upscaler: Callable | None = None) -> Image.Image:
    """The finished picture for one seed: base pass, inpainting composite, hires pass.

    on_step(pass_name, i, n, latents) is called after every scheduler step of each pass. `upscaler`
    (upscalers.Upscaler: picture, size -> picture) enlarges for the hires pass when the job names one.
    """
    base = PassRequest(params.width, params.height, params.steps, params.strength if prepared.init is not None else 1.0,
                       prepared.init_latents, prepared.inpaint)
    latents = run_pass(pipe, prompts, params, base, seed, variation_seed, new_scheduler(), sdxl,
                       lambda i, n, x: on_step("base", i, n, x))
    picture = None
    if not params.is_hires or params.hires_upscaler != "Latent" or prepared.mask is not None:
        picture = vae_io.to_pil(pipe, vae_io.decode(pipe, latents))
        if prepared.mask is not None:
            picture = composite(picture, prepared.init, prepared.mask)
    if not params.is_hires:
        return picture
    width, height = params.final_size
    factor = pipe.vae_scale_factor

    def enlarge(image: Image.Image) -> Image.Image:  # the upscaler model when the job names one, else Lanczos
        return upscaler(image, (width, height)) if upscaler is not None else image.resize((width, height), RESAMPLE)

    if picture is None:
        hires_latents = upscale_latents(latents, width, height, factor)
    else:
        big = enlarge(picture)
        hires_latents = vae_io.encode(pipe, vae_io.to_tensor(pipe, big, pipe.unet.device).to(pipe.vae.dtype))
    hires = PassRequest(width, height, params.hires_steps or params.steps, params.hires_strength, hires_latents)
    latents = run_pass(pipe, prompts, params, hires, seed, variation_seed, new_scheduler(), sdxl,
                       lambda i, n, x: on_step("hires", i, n, x))
    result = vae_io.to_pil(pipe, vae_io.decode(pipe, latents))
    if prepared.mask is not None:  # outside the mask: the original, enlarged the same way
        result = composite(result, enlarge(prepared.init), prepared.mask.resize((width, height), RESAMPLE))
    return result
