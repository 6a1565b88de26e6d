"""The denoising objective: noise (with offset), the prediction target, min-SNR-γ weighted MSE.

Ho et al. 2020 (DDPM, ε-prediction); Salimans & Ho 2022 (v-prediction, used by SD 2.x 768-v);
Guttenberg 2023, "Diffusion with Offset Noise" (lets the model learn very dark/bright pictures);
Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy" (ICCV).
"""
import torch
import torch.nn.functional as F


class NoiseSchedule:
    """The training schedule's per-timestep tables (√ᾱ_t, √(1−ᾱ_t), SNR_t), built once on the device.

    diffusers' add_noise and compute_snr move and re-derive them from alphas_cumprod on every call.
    """

    def __init__(self, scheduler, device):
        alphas_cumprod = scheduler.alphas_cumprod.to(device, torch.float32)
        self.sqrt_alpha = alphas_cumprod.sqrt()  # (T,)
        self.sqrt_one_minus_alpha = (1.0 - alphas_cumprod).sqrt()  # (T,)
        self.snr = (self.sqrt_alpha / self.sqrt_one_minus_alpha) ** 2  # (T,)
        self.prediction_type = scheduler.config.prediction_type
        self.num_train_timesteps = scheduler.config.num_train_timesteps

    def _coefficients(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (-1,) + (1,) * (like.ndim - 1)  # (B, 1, 1, 1)
        return (self.sqrt_alpha[t].view(shape).to(like.dtype), self.sqrt_one_minus_alpha[t].view(shape).to(like.dtype))

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε."""
        alpha, sigma = self._coefficients(t, latents)
        return alpha * latents + sigma * noise

    def velocity(self, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀."""
        alpha, sigma = self._coefficients(t, latents)
        return alpha * noise - sigma * latents


def sample_noise(latents: torch.Tensor, offset: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise like `latents` (B, C, h, w), plus offset·N(0,1) per (sample, channel) if offset > 0."""
    noise = torch.randn(latents.shape, generator=gen, dtype=latents.dtype)
    if offset > 0:
        noise = noise + offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1), generator=gen,
                                             dtype=latents.dtype)
    return noise.to(latents.device)


def sample_timesteps(schedule: NoiseSchedule, batch: int, gen: torch.Generator, device) -> torch.Tensor:
    """Uniform t ∈ [0, T) per sample, (B,) long."""
    t = torch.randint(0, schedule.num_train_timesteps, (batch,), generator=gen)
    return t.to(device)


def target_for(schedule: NoiseSchedule, latents: torch.Tensor, noise: torch.Tensor,
               timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet must predict: ε, or v = α_t·ε − σ_t·x₀ for v-prediction models."""
    kind = schedule.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return schedule.velocity(latents, noise, timesteps)
    raise ValueError(f"prediction_type {kind!r} is not supported (epsilon or v_prediction)")


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor, schedule: NoiseSchedule,
                   snr_gamma: float | None) -> torch.Tensor:
    """MSE over (B, C, h, w); with snr_gamma, per-sample weights min(SNR_t, γ)/SNR_t (ε) or /(SNR_t+1) (v)."""
    if not snr_gamma:
        return F.mse_loss(pred.float(), target.float(), reduction="mean")
    snr = schedule.snr[timesteps]
    weights = torch.clamp(snr, max=snr_gamma)
    weights = weights / (snr + 1 if schedule.prediction_type == "v_prediction" else snr)
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (per_sample * weights).mean()
