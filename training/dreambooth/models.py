"""The networks of a run: loading a diffusers SD 1.x/2.x folder, choosing what trains, saving the result."""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from generator.engine.files import make_readable
from generator.engine.portable import make_portable

from . import lora
from .config import ConfigError, TrainConfig


@dataclass
class Components:
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object  # DDPMScheduler with the base model's training schedule and prediction type
    sample_scheduler: object  # the pipeline's own scheduler, for validation and class pictures

    @property
    def base_version(self) -> str:
        """kohya's ss_base_model_version: SD 2.x tokenizers pad with '!' (OpenCLIP), SD 1.x with <|endoftext|>."""
        return "sd_v2" if self.tokenizer.pad_token == "!" else "sd_v1"


def check_base_model(path: str) -> None:
    """Refuse, before loading anything, a base model that is not a local SD 1.x/2.x diffusers folder."""
    index = Path(path) / "model_index.json"
    if not index.exists():
        raise ConfigError("base_model", f"{path} is not a diffusers pipeline folder (no model_index.json)")
    cls = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
    if cls != "StableDiffusionPipeline":
        raise ConfigError("base_model", f"{path} is a {cls}; DreamBooth here trains StableDiffusionPipeline (SD 1.x/2.x)")


def load_components(path: str) -> Components:
    import diffusers
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    scheduler_cls = json.loads((Path(path) / "model_index.json").read_text())["scheduler"][1]
    # Master weights are fp32 whatever the folder stores (fp16 folders such as the shipped mini-world base
    # would otherwise train and sample in half precision on the CPU and fail on mixed dtypes).
    fp32 = torch.float32
    return Components(
        tokenizer=CLIPTokenizer.from_pretrained(path, subfolder="tokenizer"),
        text_encoder=CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=fp32),
        vae=AutoencoderKL.from_pretrained(path, subfolder="vae", dtype=fp32),
        unet=UNet2DConditionModel.from_pretrained(path, subfolder="unet", dtype=fp32),
        noise_scheduler=DDPMScheduler.from_pretrained(path, subfolder="scheduler"),
        sample_scheduler=getattr(diffusers, scheduler_cls).from_pretrained(path, subfolder="scheduler"),
    )


def _cast(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Frozen weights in the mixed-precision dtype (fp32 models are left alone)."""
    if dtype != torch.float32:
        model.to(dtype=dtype)


def select_trainable(cfg: TrainConfig, c: Components, weight_dtype: torch.dtype):
    """Freeze what does not train, add LoRA adapters if asked; returns (unet params, text encoder params)."""
    c.vae.requires_grad_(False).eval()
    _cast(c.vae, weight_dtype)
    if cfg.method == "lora":
        _cast(c.unet, weight_dtype)
        unet_params = lora.add_lora(c.unet, cfg.rank, cfg.lora_alpha, lora.UNET_TARGETS)
        te_params = []
        if cfg.train_text_encoder:
            _cast(c.text_encoder, weight_dtype)
            te_params = lora.add_lora(c.text_encoder, cfg.rank, cfg.lora_alpha, lora.TEXT_ENCODER_TARGETS)
        for p in unet_params + te_params:  # adapters train in fp32 under mixed precision
            p.data = p.data.float()
    else:
        unet_params = [p for p in c.unet.parameters()]
        c.text_encoder.requires_grad_(cfg.train_text_encoder)
        te_params = list(c.text_encoder.parameters()) if cfg.train_text_encoder else []
    if not cfg.train_text_encoder:
        _cast(c.text_encoder, weight_dtype)
    if cfg.gradient_checkpointing:
        c.unet.enable_gradient_checkpointing()
        if cfg.train_text_encoder:
            c.text_encoder.gradient_checkpointing_enable()
    c.unet.train()
    c.text_encoder.train(cfg.train_text_encoder)
    return unet_params, te_params


def save_full_pipeline(out: Path, c: Components, unet, text_encoder, single_file: str | None = None,
                       export_dtype: str = "fp16") -> list[str]:
    """The fine-tuned model as a diffusers folder in `out` (written beside, then moved in).

    `single_file` also writes an A1111/ComfyUI-style (original LDM keys) .safetensors of that name (SD 1.x),
    in `export_dtype` ("fp16": half the size, what A1111/ComfyUI load anyway; or "fp32").
    """
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=c.vae.float(), text_encoder=text_encoder.float(), tokenizer=c.tokenizer,
                                   unet=unet.float(), scheduler=c.sample_scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    tmp = Path(tempfile.mkdtemp(prefix=".pipeline.", dir=out))
    pipe.save_pretrained(tmp, safe_serialization=True)
    make_portable(tmp)  # loads in transformers 4.x too: text_model. keys, vocab.json + merges.txt
    make_readable(tmp)
    names = sorted(os.listdir(tmp))
    for name in names:
        shutil.rmtree(out / name, ignore_errors=True) if (out / name).is_dir() else None
        os.replace(tmp / name, out / name)
    tmp.rmdir()
    if single_file:
        from generator.engine.export import save_single_file

        names.append(save_single_file(pipe, out / single_file, dtype=export_dtype).name)
    return names
