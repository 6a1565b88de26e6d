"""Export an SD 1.x diffusers pipeline as one A1111-style (original LDM layout) .safetensors file.

A1111, ComfyUI and Civitai exchange single files with the original CompVis key names
(`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`). diffusers
ships only the reverse converter (used by `from_single_file`); this is the forward direction,
written from the layout rules rather than fixed tables so it works for any block count and
`layers_per_block` — real SD 1.5 and the tiny test models alike. It lets the tests exercise the
single-file loading path offline, and lets a DreamBooth result be used in A1111.

SD 2.x (OpenCLIP text encoder, `cond_stage_model.model.*` with fused attention) and SDXL
(`conditioner.embedders.*`) need other text-encoder layouts and are not supported here.
"""
import os
from pathlib import Path

from .files import make_readable

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename(rest: str, table: dict) -> str:
    for old, new in table.items():
        if rest.startswith(old + "."):
            return new + rest[len(old):]
    return rest


def _unet_key(key: str, config) -> str:
    """diffusers UNet2DConditionModel key -> LDM `model.diffusion_model.` key."""
    per_block = config.layers_per_block
    parts = key.split(".")
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for old, new in fixed.items():
        if key.startswith(old + "."):
            return new + key[len(old):]
    if parts[0] == "down_blocks":
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "resnets":
            return f"input_blocks.{i * (per_block + 1) + j + 1}.0.{_rename(rest, _RESNET)}"
        if kind == "attentions":
            return f"input_blocks.{i * (per_block + 1) + j + 1}.1.{rest}"
        if kind == "downsamplers":
            return f"input_blocks.{(i + 1) * (per_block + 1)}.0.op.{rest.split('.', 1)[1]}"
    if parts[0] == "mid_block":
        kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{2 * j}.{_rename(rest, _RESNET)}"
        return f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "resnets":
            return f"output_blocks.{i * (per_block + 1) + j}.0.{_rename(rest, _RESNET)}"
        if kind == "attentions":
            return f"output_blocks.{i * (per_block + 1) + j}.1.{rest}"
        if kind == "upsamplers":
            has_attention = "CrossAttn" in config.up_block_types[i]
            return f"output_blocks.{i * (per_block + 1) + per_block}.{2 if has_attention else 1}.{rest}"
    raise KeyError(f"no LDM name for UNet key {key}")


def _vae_key(key: str, n_blocks: int) -> str:
    """diffusers AutoencoderKL key -> LDM `first_stage_model.` key."""
    parts = key.split(".")
    if parts[0] in ("quant_conv", "post_quant_conv"):
        return key
    side, rest = parts[0], parts[1:]
    head = {"conv_norm_out": "norm_out"}.get(rest[0], rest[0])
    if head in ("conv_in", "norm_out", "conv_out"):
        return ".".join([side, head, *rest[1:]])
    if rest[0] == "mid_block":
        kind, j, tail = rest[1], int(rest[2]), ".".join(rest[3:])
        if kind == "resnets":
            return f"{side}.mid.block_{j + 1}.{_rename(tail, _VAE_RESNET)}"
        return f"{side}.mid.attn_1.{_rename(tail, _VAE_ATTENTION)}"
    if rest[0] == "down_blocks":
        i, kind, tail = int(rest[1]), rest[2], ".".join(rest[4:])
        if kind == "resnets":
            return f"{side}.down.{i}.block.{rest[3]}.{_rename(tail, _VAE_RESNET)}"
        return f"{side}.down.{i}.downsample.{tail}"
    if rest[0] == "up_blocks":
        i, kind, tail = n_blocks - 1 - int(rest[1]), rest[2], ".".join(rest[4:])
        if kind == "resnets":
            return f"{side}.up.{i}.block.{rest[3]}.{_rename(tail, _VAE_RESNET)}"
        return f"{side}.up.{i}.upsample.{tail}"
    raise KeyError(f"no LDM name for VAE key {key}")


def to_ldm_state_dict(pipe) -> dict:
    """The pipeline's weights under A1111/LDM names (SD 1.x layout; see module docstring)."""
    if getattr(pipe, "text_encoder_2", None) is not None:
        raise NotImplementedError("SDXL export is not supported")
    state = {}
    for key, tensor in pipe.unet.state_dict().items():
        state["model.diffusion_model." + _unet_key(key, pipe.unet.config)] = tensor
    n_blocks = len(pipe.vae.config.block_out_channels)
    for key, tensor in pipe.vae.state_dict().items():
        ldm = _vae_key(key, n_blocks)
        if ".mid.attn_1." in ldm and ldm.endswith(".weight") and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]  # LDM's VAE attention uses 1x1 convolutions
        state["first_stage_model." + ldm] = tensor
    for key, tensor in pipe.text_encoder.state_dict().items():
        # transformers 5 may drop the `text_model.` level from CLIPTextModel's keys; A1111 files have it.
        key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + key] = tensor
    return {key: tensor.detach().contiguous().cpu() for key, tensor in state.items()}


EXPORT_DTYPES = ("fp16", "fp32")


def save_single_file(pipe, out_path: str | os.PathLike, dtype: str = "fp32") -> Path:
    """Write `to_ldm_state_dict(pipe)` to `out_path` (.safetensors) atomically, readable by all (0644).

    dtype "fp16" halves the file (SD 1.5: 2 GB instead of 4.3 GB) and is what A1111 and ComfyUI run anyway.
    """
    import torch
    from safetensors.torch import save_file

    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"export dtype {dtype!r}: use one of {', '.join(EXPORT_DTYPES)}")
    target = torch.float16 if dtype == "fp16" else torch.float32
    state = {key: t.to(target) if t.is_floating_point() else t for key, t in to_ldm_state_dict(pipe).items()}
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    save_file(state, str(tmp))
    make_readable(tmp)
    os.replace(tmp, out_path)
    return out_path
