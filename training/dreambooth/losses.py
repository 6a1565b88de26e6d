"""The denoising objective: noise (with offset), the prediction target, min-SNR-γ weighted MSE.

Ho et al. 2020 (DDPM, ε-prediction); Salimans & Ho 2022 (v-prediction, used by SD 2.x 768-v);
Guttenberg 2023, "Diffusion with Offset Noise" (lets the model learn very dark/bright pictures);
Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy" (ICCV).
"""
import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_snr


def sample_noise(latents: torch.Tensor, offset: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise like `latents` (B, C, h, w), plus offset·N(0,1) per (sample, channel) if offset > 0."""
    noise = torch.randn(latents.shape, generator=gen, dtype=latents.dtype)
    if offset > 0:
        noise = noise + offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1), generator=gen,
                                             dtype=latents.dtype)
    return noise.to(latents.device)


def sample_timesteps(scheduler, batch: int, gen: torch.Generator, device) -> torch.Tensor:
    """Uniform t ∈ [0, T) per sample, (B,) long."""
    t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=gen)
    return t.to(device)


def target_for(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet must predict: ε, or v = α_t·ε − σ_t·x₀ for v-prediction models."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"prediction_type {kind!r} is not supported (epsilon or v_prediction)")


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor, scheduler,
                   snr_gamma: float | None) -> torch.Tensor:
    """MSE over (B, C, h, w); with snr_gamma, per-sample weights min(SNR_t, γ)/SNR_t (ε) or /(SNR_t+1) (v)."""
    if not snr_gamma:
        return F.mse_loss(pred.float(), target.float(), reduction="mean")
    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=snr_gamma)
    weights = weights / (snr + 1 if scheduler.config.prediction_type == "v_prediction" else snr)
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (per_sample * weights).mean()
