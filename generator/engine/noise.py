"""Initial noise: a seed's Gaussian latents, and A1111's variation seeds (spherical interpolation).

A variation mixes the noise of `seed` with the noise of `variation_seed`. Mixing linearly would shrink
the noise's norm (two independent Gaussians averaged have ~0.7x the length), and the sampler reads a
shorter noise as "less noise", giving washed-out pictures; slerp keeps the length, so every mix is a
plausible starting point. Strength 0 returns the seed's noise itself (the same picture, bit for bit),
strength 1 the variation seed's.
"""
import torch


def seeded_noise(seed: int, shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    """N(0, 1) latents (shape) from a fresh generator, drawn as diffusers' randn_tensor does on that device."""
    generator = torch.Generator(device).manual_seed(seed)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def slerp(strength: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation per latent pixel (norms over the channel axis of (B, C, H, W)), as A1111's."""
    if strength <= 0:
        return low
    if strength >= 1:
        return high
    low_dir = low / torch.norm(low, dim=1, keepdim=True)
    high_dir = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_dir * high_dir).sum(1)  # (B, H, W)
    if dot.mean() > 0.9995:  # nearly parallel: slerp degenerates to lerp
        return (1 - strength) * low + strength * high
    omega = torch.acos(dot.clamp(-1, 1))
    sin_omega = torch.sin(omega)
    return (torch.sin((1 - strength) * omega) / sin_omega).unsqueeze(1) * low + \
        (torch.sin(strength * omega) / sin_omega).unsqueeze(1) * high


def initial_noise(seed: int, shape, device, dtype, variation_seed: int | None = None,
                  variation_strength: float = 0.0) -> tuple[torch.Tensor, torch.Generator]:
    """(noise, generator) for one picture: seed's noise, slerped toward variation_seed's if asked.

    The generator is the one the seed's noise was drawn from, left where the draw leaves it: samplers
    that add noise at each step (Euler a) go on drawing from it, exactly as the diffusers pipelines do.
    """
    generator = torch.Generator(device).manual_seed(seed)
    noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if variation_seed is not None and variation_strength > 0:
        noise = slerp(variation_strength, noise, seeded_noise(variation_seed, shape, device, dtype))
    return noise, generator
