"""The base mini model's networks: built from a `PretrainConfig`, or loaded from an exported pipeline folder.

Every function takes the config's fields it needs (`cfg` is a `pretrain.PretrainConfig`); nothing here trains.
"""
from __future__ import annotations

from pathlib import Path

import torch

# SD's training noise schedule (what the tiny fixture models and SD 1.5 use).
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                steps_offset=1, clip_sample=False, set_alpha_to_one=False)


def build_vae(cfg):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=cfg.latent_channels, block_out_channels=tuple(cfg.vae_channels),
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=cfg.vae_layers, norm_num_groups=8, sample_size=cfg.size,
    )


def build_text_encoder(cfg, pad_token_id: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=pad_token_id, hidden_size=cfg.text_hidden, intermediate_size=cfg.text_hidden * 4,
        num_attention_heads=4, num_hidden_layers=cfg.text_layers, projection_dim=cfg.text_hidden, hidden_act="gelu",
    )
    return CLIPTextModel(config)


def build_unet(cfg):
    from diffusers import UNet2DConditionModel

    n = len(cfg.unet_channels)
    factor = 2 ** (len(cfg.vae_channels) - 1)
    down = ["DownBlock2D" if i < cfg.unet_attention_from else "CrossAttnDownBlock2D" for i in range(n)]
    return UNet2DConditionModel(
        sample_size=cfg.size // factor, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        layers_per_block=cfg.unet_layers,
        block_out_channels=tuple(cfg.unet_channels), down_block_types=tuple(down),
        up_block_types=tuple(b.replace("Down", "Up") for b in reversed(down)), cross_attention_dim=cfg.text_hidden,
        attention_head_dim=cfg.unet_heads, norm_num_groups=32,
    )


def build_pipeline(vae, text_encoder, unet, tokenizer=None):
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    from generator.engine.tiny import build_clip_tokenizer

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer or build_clip_tokenizer(), unet=unet,
        scheduler=PNDMScheduler.from_config({**SCHEDULE, "skip_prk_steps": True}),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe




class InitFromError(ValueError):
    """--init-from does not name a pipeline folder this run can continue from."""


def load_initial_models(folder: str | Path) -> tuple:
    """(vae, text_encoder, unet) in float32 from an exported diffusers folder (fp16 exports train as fp32
    masters). Only safetensors are read: a folder with pickle weights is refused rather than unpickled."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    missing = [part for part in ("model_index.json", "vae", "unet", "text_encoder") if not (folder / part).exists()]
    if missing:
        raise InitFromError(f"init_from {folder}: not an exported pipeline folder (missing {', '.join(missing)}); "
                            "pass the folder miniworld_pretrain exported, e.g. training/miniworld/weights/base")
    kw = {"dtype": torch.float32, "use_safetensors": True}
    return (AutoencoderKL.from_pretrained(folder, subfolder="vae", **kw),
            CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **kw),
            UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **kw))
