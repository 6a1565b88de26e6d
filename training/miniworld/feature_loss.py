"""A perceptual loss for the VAE from mini-CLIP's image tower (a network trained here, never the judge).

Pixel L1 and an L1 on image gradients keep outlines, but the first base VAE still lost what is small and
semantic: retro hair colour survived a round trip 78% of the time, glasses and eyes blurred. LPIPS (Zhang et al.,
"The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018) compares reconstructions
in the feature space of a trained network instead; SD's own VAE trains with it. LPIPS weights cannot be
downloaded here, so the features are mini-CLIP's: its ViT was trained with one-attribute hard negatives, so its
patch tokens must tell hair colours, glasses and faces apart. The ground-truth classifier stays out of
training: it is what judges the VAE.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .text_encoder import load_open_clip_dir


class FeatureLoss(torch.nn.Module):
    """mean over the ViT's blocks of (1 - cosine) between the patch tokens of two batches of pictures."""

    def __init__(self, folder: str | Path):
        super().__init__()
        clip = load_open_clip_dir(folder)
        self.visual = clip.visual.requires_grad_(False).eval()
        cfg = clip.visual.preprocess_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1))

    def tokens(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: [B, 3, H, W] in [-1, 1] -> one [B, L, W] token tensor per transformer block."""
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.visual.forward_intermediates(x, intermediates_only=True, output_fmt="NLC")["image_intermediates"]

    def forward(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.tokens(target)
        got = self.tokens(recon)
        return torch.stack([(1 - F.cosine_similarity(a, b, dim=-1)).mean() for a, b in zip(got, wanted)]).mean()
