"""Latents and text embeddings, with caches: each picture goes through the VAE encoder once, and each
prompt through a frozen text encoder once (the bulk of a step's cost at small batch sizes).

The VAE's posterior N(μ, σ²) is cached (not a sample), and a fresh sample is drawn each step from the
step's generator, exactly as without the cache.
"""
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from .data import Example, load_pixels


class LatentSource:
    def __init__(self, vae, dtype: torch.dtype, device, cache: bool):
        self.vae, self.dtype, self.device, self.cache = vae, dtype, device, cache
        self._params: dict = {}  # path -> posterior parameters (1, 2·C, h, w)

    @torch.no_grad()
    def _posterior_params(self, examples: list[Example]) -> torch.Tensor:
        missing = [e for e in examples if (e.path, e.size) not in self._params]
        if missing:
            pixels = torch.stack([load_pixels(e.path, e.size) for e in missing]).to(self.device, self.dtype)
            params = self.vae.encode(pixels).latent_dist.parameters
            if not self.cache:
                return params
            self._params.update({(e.path, e.size): p[None] for e, p in zip(missing, params)})
        return torch.cat([self._params[(e.path, e.size)] for e in examples])

    def sample(self, examples: list[Example], gen: torch.Generator) -> torch.Tensor:
        """Scaled latents z ~ q(z|x)·scaling_factor, (B, 4, H/8, W/8) for SD."""
        posterior = DiagonalGaussianDistribution(self._posterior_params(examples))
        return posterior.sample(generator=gen).float() * self.vae.config.scaling_factor

    def warm(self, examples: list[Example]) -> None:
        if self.cache:
            for e in examples:
                self._posterior_params([e])


class TextSource:
    """CLIP hidden states (B, 77, D) for prompts; cached while the text encoder does not train.

    Token ids are cached too (on the device): a training text encoder re-encodes, never re-tokenizes.
    """

    def __init__(self, tokenizer, text_encoder, device):
        self.tokenizer, self.text_encoder, self.device = tokenizer, text_encoder, device
        self._cache: dict[str, torch.Tensor] = {}
        self._ids: dict[str, torch.Tensor] = {}  # prompt -> (1, 77) token ids

    def _token_ids(self, prompts: list[str]) -> torch.Tensor:
        missing = [p for p in dict.fromkeys(prompts) if p not in self._ids]
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids.to(self.device)
            self._ids.update(zip(missing, ids.unsqueeze(1)))
        return torch.cat([self._ids[p] for p in prompts])

    def _encode(self, prompts: list[str]) -> torch.Tensor:
        return self.text_encoder(self._token_ids(prompts))[0]

    def embed(self, prompts: list[str], trainable: bool, cache: bool = True) -> torch.Tensor:
        if trainable:
            return self._encode(prompts)
        if not cache:
            with torch.no_grad():
                return self._encode(prompts)
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            with torch.no_grad():
                self._cache.update(zip(missing, self._encode(missing).unsqueeze(1)))
        return torch.cat([self._cache[p] for p in prompts])
