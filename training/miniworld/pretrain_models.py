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


def attention_from(unet) -> int:
    """Index of the first down block with (cross-)attention."""
    types = list(unet.config.down_block_types)
    return next((i for i, t in enumerate(types) if t.startswith("CrossAttn")), len(types))


def grow_attention(unet, first: int, seed: int = 0):
    """`unet` with attention from down block `first` on (and in the matching up blocks), computing exactly what
    `unet` computed: its weights are copied and every new transformer's output projection starts at zero, so the
    new blocks begin as identities (residual) and training only adds to what the model already knows — the
    zero-initialised additions of ControlNet (Zhang et al., 2023). A UNet that already attends from `first` is
    returned as it is; attention is never removed."""
    from diffusers import UNet2DConditionModel

    if first >= attention_from(unet):
        return unet
    n = len(unet.config.down_block_types)
    down = ["DownBlock2D" if i < first else "CrossAttnDownBlock2D" for i in range(n)]
    config = {**unet.config, "down_block_types": tuple(down),
              "up_block_types": tuple(b.replace("Down", "Up") for b in reversed(down))}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = UNet2DConditionModel.from_config(config)
    missing, unexpected = grown.load_state_dict(unet.state_dict(), strict=False)
    new = [k for k in missing if ".attentions." not in k]
    if new or unexpected:
        raise ValueError(f"grow_attention: weights that do not carry over: {(new + unexpected)[:5]}")
    with torch.no_grad():
        for name, module in grown.named_modules():
            if name.endswith("proj_out") and f"{name}.weight" in missing:
                module.weight.zero_()
                module.bias.zero_()
    return grown


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
