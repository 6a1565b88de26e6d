"""The sampling loop: one picture's latents denoised by the UNet under classifier-free guidance.

Written out here (rather than calling a diffusers pipeline) because the creative controls need what
the pipelines do not expose together: our own starting noise (variation seeds, also for img2img),
img2img starting from a chosen step, masked blending for ordinary models and the 9-channel input of
inpainting models, and a look at the latents every step (live previews). Each step is the very
computation diffusers' StableDiffusion(XL)Pipeline does — same scheduler calls, same guidance — which
tests/engine/test_denoise.py checks pixel for pixel against the stock pipeline.
"""
import inspect
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class Conditioning:
    """What the UNet is conditioned on. With guidance (scale > 1) the batch is [negative, positive]."""

    embeds: torch.Tensor  # (B, L, D) text hidden states; B = 2 with guidance, else 1
    guidance_scale: float
    added: dict | None = None  # SDXL: {"text_embeds": (B, P), "time_ids": (B, 6)}

    @property
    def guided(self) -> bool:
        return self.embeds.shape[0] == 2


def conditioning(prompt_kwargs: dict, guidance_scale: float, size: tuple[int, int] | None = None,
                 sdxl: bool = False) -> Conditioning:
    """Conditioning from prompts.prompt_inputs' kwargs; `size` (width, height) gives SDXL's time ids."""
    guided = guidance_scale > 1
    positive, negative = prompt_kwargs["prompt_embeds"], prompt_kwargs["negative_prompt_embeds"]
    embeds = torch.cat([negative, positive]) if guided else positive
    added = None
    if sdxl:
        width, height = size
        pooled = prompt_kwargs["pooled_prompt_embeds"]
        text_embeds = torch.cat([prompt_kwargs["negative_pooled_prompt_embeds"], pooled]) if guided else pooled
        # original size + crop top-left + target size, as diffusers' _get_add_time_ids
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=positive.dtype, device=positive.device)
        added = {"text_embeds": text_embeds, "time_ids": time_ids.repeat(embeds.shape[0], 1)}
    return Conditioning(embeds, guidance_scale, added)


@dataclass
class Inpaint:
    """Inpainting state at latent size; mask 1 = repaint."""

    mask: torch.Tensor  # (1, 1, h, w)
    image_latents: torch.Tensor  # (1, C, h, w) clean scaled latents of the init picture
    masked_image_latents: torch.Tensor | None = None  # (1, C, h, w), only for 9-channel inpainting UNets


def schedule(scheduler, steps: int, strength: float, device) -> torch.Tensor:
    """The timesteps to run: all of them for strength 1, the last int(steps * strength) for img2img.

    Same arithmetic as diffusers' img2img get_timesteps (and the scheduler is told where it begins).
    """
    scheduler.set_timesteps(steps, device=device)
    if strength >= 1:
        return scheduler.timesteps
    start = steps - max(1, min(int(steps * strength), steps))  # at least one step, as params.base_steps counts
    timesteps = scheduler.timesteps[start * scheduler.order:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start * scheduler.order)
    return timesteps


def start_latents(scheduler, noise: torch.Tensor, timesteps: torch.Tensor, init_latents=None,
                  strength: float = 1.0) -> torch.Tensor:
    """Pure noise (scaled to the scheduler's first sigma), or the init latents noised to the first timestep."""
    if init_latents is None or strength >= 1:
        return noise * scheduler.init_noise_sigma
    return scheduler.add_noise(init_latents, noise, timesteps[:1])


def _step_kwargs(scheduler, generator) -> dict:
    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs = {"eta": 0.0} if "eta" in accepted else {}
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs


@torch.no_grad()
def denoise(unet, scheduler, cond: Conditioning, latents: torch.Tensor, timesteps: torch.Tensor,
            generator: torch.Generator, noise: torch.Tensor | None = None, inpaint: Inpaint | None = None,
            on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Run `timesteps` from `latents` (1, C, h, w); returns the final latents.

    on_step(i, n, x0) is called after each step with the model's current estimate of the clean latents.

    Ordinary (4-channel) UNets inpaint by blending: after every step the unmasked area is replaced by
    the init latents noised to the next timestep, so only the masked area is ever generated.
    """
    extra = _step_kwargs(scheduler, generator)
    nine_channels = inpaint is not None and inpaint.masked_image_latents is not None
    if nine_channels:
        batch = cond.embeds.shape[0]
        mask_in = inpaint.mask.to(latents.dtype).repeat(batch, 1, 1, 1)
        masked_in = inpaint.masked_image_latents.repeat(batch, 1, 1, 1)
    for i, t in enumerate(timesteps):
        model_input = torch.cat([latents] * 2) if cond.guided else latents
        if hasattr(scheduler, "scale_model_input"):
            model_input = scheduler.scale_model_input(model_input, t)
        if nine_channels:
            model_input = torch.cat([model_input, mask_in, masked_in], dim=1)
        noise_pred = unet(model_input, t, encoder_hidden_states=cond.embeds, timestep_cond=None,
                          added_cond_kwargs=cond.added, return_dict=False)[0]
        if cond.guided:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + cond.guidance_scale * (text - uncond)
        out = scheduler.step(noise_pred, t, latents, **extra)
        estimate = getattr(out, "pred_original_sample", None) if on_step is not None else None
        if on_step is not None and estimate is None:
            estimate = predicted_clean(scheduler, latents, noise_pred, t)
        latents = out.prev_sample
        if inpaint is not None and not nine_channels:
            proper = inpaint.image_latents
            if i < len(timesteps) - 1:
                proper = scheduler.add_noise(proper, noise, timesteps[i + 1:i + 2])
            latents = (1 - inpaint.mask) * proper + inpaint.mask * latents
            if estimate is not None:
                estimate = (1 - inpaint.mask) * inpaint.image_latents + inpaint.mask * estimate
        if on_step is not None:
            on_step(i, len(timesteps), estimate)
    return latents


def predicted_clean(scheduler, sample: torch.Tensor, model_output: torch.Tensor, t) -> torch.Tensor:
    """The model's current guess of the finished latents (x0) for schedulers whose step does not return it.

    PNDM, DPM-Solver and UniPC work on x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) ε, so x0 follows from the
    prediction in one line. Previews show this guess rather than the noisy x_t: the picture appears
    from the first steps instead of out of the noise at the very end (what A1111's previews show too).
    """
    alpha = scheduler.alphas_cumprod.to(sample.device)[int(t)].to(sample.dtype)
    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind == "v_prediction":
        return alpha.sqrt() * sample - (1 - alpha).sqrt() * model_output
    if kind == "sample":
        return model_output
    return (sample - (1 - alpha).sqrt() * model_output) / alpha.sqrt()
