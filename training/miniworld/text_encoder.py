"""mini-CLIP's text tower as a transformers `CLIPTextModel`: the base model's frozen text encoder.

Stable Diffusion conditions its UNet on a frozen, contrastively pretrained CLIP text encoder (SD 1.x: OpenAI
CLIP ViT-L/14; SD 2.x: OpenCLIP ViT-H/14, whose text tower diffusers ships as a `CLIPTextModel`). Such an
encoder already tells "girl" from "boy" and "retro" from "modern" before the UNet sees a picture. The first base
mini model trained its encoder from scratch with the UNet on modern captions only, so gender never separated
and the unseen style phrase barely moved the conditioning. This module gives the base what SD has: the text
tower of mini-CLIP (trained with hard negatives on both styles and both languages), converted key by key.

open_clip's text tower is the same network as `CLIPTextModel`: token + learned position embeddings, pre-LN
transformer blocks (fused `in_proj` attention → q/k/v projections, `c_fc`/`c_proj` MLP → `fc1`/`fc2`), a causal
mask and a final LayerNorm whose output (`last_hidden_state`) is what the UNet cross-attends to. open_clip pads
with id 0 ("!"), as SD 2.x tokenizers do: `tokenizer()` builds the matching transformers tokenizer.
"""
from __future__ import annotations

from pathlib import Path

import torch

PAD_TOKEN = "!"  # open_clip pads with id 0, the BPE token "!" (SD 2.x tokenizers do the same)


def config_from_open_clip(clip) -> "CLIPTextConfig":  # noqa: F821 - transformers imported lazily
    from transformers import CLIPTextConfig

    blocks = clip.transformer.resblocks
    width = clip.token_embedding.embedding_dim
    act = "quick_gelu" if type(blocks[0].mlp.gelu).__name__ == "QuickGELU" else "gelu"
    return CLIPTextConfig(
        vocab_size=clip.token_embedding.num_embeddings, max_position_embeddings=clip.positional_embedding.shape[0],
        hidden_size=width, intermediate_size=blocks[0].mlp.c_fc.out_features,
        num_attention_heads=blocks[0].attn.num_heads, num_hidden_layers=len(blocks), hidden_act=act,
        layer_norm_eps=clip.ln_final.eps, projection_dim=clip.text_projection.shape[1],
        bos_token_id=49406, eos_token_id=49407, pad_token_id=0,
    )


def state_dict_from_open_clip(clip) -> dict[str, torch.Tensor]:
    """open_clip text-tower weights under `CLIPTextModel`'s checkpoint keys (with the `text_model.` prefix that
    every transformers version reads from a file)."""
    out = {"text_model.embeddings.token_embedding.weight": clip.token_embedding.weight,
           "text_model.embeddings.position_embedding.weight": clip.positional_embedding,
           "text_model.final_layer_norm.weight": clip.ln_final.weight,
           "text_model.final_layer_norm.bias": clip.ln_final.bias}
    for i, block in enumerate(clip.transformer.resblocks):
        p = f"text_model.encoder.layers.{i}."
        q, k, v = block.attn.in_proj_weight.chunk(3)  # [3W, W] -> three [W, W]
        qb, kb, vb = block.attn.in_proj_bias.chunk(3)
        out |= {p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k, p + "self_attn.v_proj.weight": v,
                p + "self_attn.q_proj.bias": qb, p + "self_attn.k_proj.bias": kb, p + "self_attn.v_proj.bias": vb,
                p + "self_attn.out_proj.weight": block.attn.out_proj.weight,
                p + "self_attn.out_proj.bias": block.attn.out_proj.bias,
                p + "layer_norm1.weight": block.ln_1.weight, p + "layer_norm1.bias": block.ln_1.bias,
                p + "layer_norm2.weight": block.ln_2.weight, p + "layer_norm2.bias": block.ln_2.bias,
                p + "mlp.fc1.weight": block.mlp.c_fc.weight, p + "mlp.fc1.bias": block.mlp.c_fc.bias,
                p + "mlp.fc2.weight": block.mlp.c_proj.weight, p + "mlp.fc2.bias": block.mlp.c_proj.bias}
    return {k: v.detach().float().clone() for k, v in out.items()}


def text_encoder_from_open_clip(clip):
    """A float32 `CLIPTextModel` computing the same token features as `clip`'s text tower."""
    from transformers import CLIPTextModel

    model = CLIPTextModel(config_from_open_clip(clip))
    weights = state_dict_from_open_clip(clip)
    if not any(k.startswith("text_model.") for k in model.state_dict()):  # transformers 5 drops the prefix in memory
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"open_clip → CLIPTextModel: missing {missing}, unexpected {unexpected}")
    return model.eval()


def load_open_clip_dir(folder: str | Path):
    """The open_clip CLIP saved in `folder` (open_clip's local-dir layout: open_clip_config.json +
    open_clip_model.safetensors), in float32."""
    import open_clip

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{Path(folder).absolute()}", device="cpu")
    return model.float().eval()


def text_encoder_from_dir(folder: str | Path):
    return text_encoder_from_open_clip(load_open_clip_dir(folder))


@torch.no_grad()
def open_clip_token_features(clip, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's per-token text features [B, 77, W] (ln_final output, before pooling): what `CLIPTextModel`'s
    `last_hidden_state` must equal."""
    x = clip.token_embedding(ids) + clip.positional_embedding
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    return clip.ln_final(x)


def tokenizer():
    from generator.engine.tiny import build_clip_tokenizer

    return build_clip_tokenizer(pad_token=PAD_TOKEN)
