"""LoRA adapters (Hu et al., ICLR 2022) via peft, and their export in diffusers and kohya formats.

UNet: the attention projections to_q/to_k/to_v/to_out.0 (as diffusers' train_dreambooth_lora.py).
Text encoder: the CLIP attention projections q/k/v/out_proj.
"""
import datetime
import os
from pathlib import Path

import torch

from generator.engine.files import make_readable, write_atomic

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def lora_config(rank: int, alpha: float, targets: list[str]):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=targets)


def add_lora(model: torch.nn.Module, rank: int, alpha: float, targets: list[str]) -> list[torch.nn.Parameter]:
    """Freeze `model`, add a LoRA adapter (B = 0, so the model is unchanged), return the adapter params.

    peft's inject_adapter_in_model directly (what diffusers' ModelMixin.add_adapter does) rather than
    transformers' add_adapter, which needs a newer peft than the one installed.
    """
    from peft import inject_adapter_in_model

    model.requires_grad_(False)
    config = lora_config(rank, alpha, targets)
    inject_adapter_in_model(config, model, adapter_name="default")
    model.peft_config = {"default": config}  # what get_peft_model_state_dict looks up
    return [p for p in model.parameters() if p.requires_grad]


def peft_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors in diffusers naming ('….lora.down.weight' / '….lora.up.weight' ... as saved)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))


def save_diffusers_lora(out: Path, unet, text_encoder, rank: int, alpha: float) -> Path:
    """out/pytorch_lora_weights.safetensors (diffusers/PEFT keys), alpha/rank baked in (see write_diffusers_lora)."""
    te = text_encoder if _has_lora(text_encoder) else None
    return write_diffusers_lora(out, peft_state_dict(unet), peft_state_dict(te) if te is not None else {}, rank, alpha)


def write_diffusers_lora(out: Path, unet_state: dict, te_state: dict, rank: int, alpha: float) -> Path:
    """out/pytorch_lora_weights.safetensors via StableDiffusionPipeline.save_lora_weights, readable by all.

    The LoRA scale alpha/rank is multiplied into the up weights and the file says alpha = rank: diffusers
    <= 0.32 ignores `lora_adapter_metadata` (it would apply alpha != rank at the wrong strength); every
    version applies this file at the trained strength.
    """
    from diffusers import StableDiffusionPipeline

    def baked(state):
        return {k: v * (alpha / rank) if k.endswith("up.weight") else v for k, v in state.items()}

    StableDiffusionPipeline.save_lora_weights(
        out,
        unet_lora_layers=baked(unet_state),
        text_encoder_lora_layers=_text_model_keys(baked(te_state)) if te_state else None,
        unet_lora_adapter_metadata=lora_config(rank, rank, UNET_TARGETS).to_dict(),
        text_encoder_lora_adapter_metadata=lora_config(rank, rank, TEXT_ENCODER_TARGETS).to_dict() if te_state else None,
    )
    return make_readable(Path(out) / "pytorch_lora_weights.safetensors")


def _text_model_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIP keys as checkpoints spell them ('text_model.encoder…'); transformers 5 modules drop 'text_model.'."""
    return {k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in state.items()}


def _has_lora(model) -> bool:
    return model is not None and any("lora_A" in name for name, _ in model.named_parameters())


def kohya_state_dict(unet, text_encoder, alpha: float) -> dict[str, torch.Tensor]:
    """kohya-ss keys: lora_unet_<module>.lora_down/.lora_up.weight + .alpha; text encoder as lora_te_."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict

    prefixed = {f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}
    if _has_lora(text_encoder):
        te_state = _text_model_keys(get_peft_model_state_dict(text_encoder))
        prefixed.update({f"text_encoder.{k}": v for k, v in te_state.items()})
    kohya = convert_state_dict_to_kohya(prefixed)
    out = {}
    for key, value in kohya.items():
        key = key.replace("lora_te1_", "lora_te_")  # SD 1.x/2.x have one text encoder: kohya says lora_te_
        out[key] = torch.tensor(float(alpha)) if key.endswith(".alpha") else value.contiguous()
    return out


def save_kohya_lora(out: Path, unet, text_encoder, alpha: float, metadata: dict[str, str]) -> Path:
    """out/lora_kohya.safetensors with ss_*, sshs_* and modelspec.* metadata (what A1111/ComfyUI/kohya read)."""
    return write_kohya_file(out / "lora_kohya.safetensors", kohya_state_dict(unet, text_encoder, alpha), metadata)


def write_kohya_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """`tensors` + `metadata` + kohya's sshs_model_hash/sshs_legacy_hash, written atomically, 0644."""
    from safetensors.torch import save

    from generator.engine.hashes import kohya_hashes

    metadata = {**metadata, **kohya_hashes(tensors, metadata)}
    return write_atomic(path, save(tensors, metadata=metadata))


def kohya_metadata(cfg, base_version: str, steps: int, num_images: int,
                   prediction_type: str = "epsilon") -> dict[str, str]:
    """The ss_* and modelspec.* keys kohya-ss sd-scripts write (strings, as safetensors metadata requires)."""
    spec = modelspec_metadata(cfg, base_version, prediction_type)
    return {
        **spec,
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(cfg.rank),
        "ss_network_alpha": str(cfg.lora_alpha),
        "ss_base_model_version": base_version,
        "ss_v2": str(base_version.startswith("sd_v2")),
        "ss_sd_model_name": Path(cfg.base_model).name,
        "ss_output_name": cfg.output_name,
        "ss_training_comment": spec["modelspec.description"],
        "ss_steps": str(steps),
        "ss_max_train_steps": str(cfg.max_steps),
        "ss_learning_rate": str(cfg.learning_rate),
        "ss_unet_lr": str(cfg.learning_rate),
        "ss_text_encoder_lr": str(cfg.te_lr if cfg.train_text_encoder else 0.0),
        "ss_resolution": f"({cfg.resolution}, {cfg.resolution})",
        "ss_seed": str(cfg.seed),
        "ss_caption_tag_dropout_rate": str(cfg.caption_tag_dropout),
        "ss_caption_dropout_rate": str(cfg.caption_dropout),
        "ss_num_train_images": str(num_images),
        "ss_batch_size_per_device": str(cfg.batch_size),
        "ss_gradient_accumulation_steps": str(cfg.gradient_accumulation_steps),
        "ss_lr_scheduler": cfg.lr_scheduler,
        "ss_prior_loss_weight": str(cfg.prior_loss_weight if cfg.with_prior_preservation else 0.0),
        "ss_min_snr_gamma": str(cfg.snr_gamma or 0),
        "ss_noise_offset": str(cfg.noise_offset),
        "ss_mixed_precision": cfg.mixed_precision,
    }


def modelspec_metadata(cfg, base_version: str, prediction_type: str = "epsilon") -> dict[str, str]:
    """Stability AI's ModelSpec keys for an SD 1.x/2.x LoRA, as kohya's sai_model_spec.build_metadata fills them."""
    v_prediction = prediction_type == "v_prediction"
    if base_version.startswith("sd_v2"):
        architecture = "stable-diffusion-v2-768-v" if v_prediction else "stable-diffusion-v2-512"
    else:
        architecture = "stable-diffusion-v1"
    return {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": f"{architecture}/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": cfg.output_name,
        "modelspec.description": cfg.training_comment or f"DreamBooth LoRA, instance prompt '{cfg.instance_prompt}'",
        "modelspec.date": datetime.datetime.now().replace(microsecond=0).isoformat(),
        "modelspec.resolution": f"{cfg.resolution}x{cfg.resolution}",
        "modelspec.prediction_type": "v" if v_prediction else "epsilon",
        "modelspec.trigger_phrase": cfg.instance_prompt,
    }


def _peft_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """accelerate's saved adapter tensors ('….lora_A.default.weight') as get_peft_model_state_dict names them."""
    return {k.replace(".default.", "."): v for k, v in state.items() if "lora_" in k}


def export_checkpoint_lora(checkpoint: Path, rank: int, alpha: float, out: Path | None = None) -> Path:
    """A loadable diffusers LoRA (pytorch_lora_weights.safetensors) from a LoRA run's checkpoint-N folder.

    Checkpoints hold accelerate state: model.safetensors (UNet adapter tensors, keep_only_adapters) and,
    with train_text_encoder, model_1.safetensors (text encoder adapter). `out` defaults to the checkpoint
    folder itself; the file is written once and reused (a checkpoint never changes after its rename).
    """
    from diffusers.utils import convert_state_dict_to_diffusers
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    out = Path(out) if out is not None else checkpoint
    target = out / "pytorch_lora_weights.safetensors"
    if target.is_file():
        return target
    unet_file = checkpoint / "model.safetensors"
    if not unet_file.is_file():
        raise FileNotFoundError(f"{unet_file} is missing: {checkpoint} is not a LoRA checkpoint")
    unet_state = convert_state_dict_to_diffusers(_peft_keys(load_file(str(unet_file))))
    if not unet_state:
        raise ValueError(f"{unet_file} holds no LoRA tensors (a full fine-tune checkpoint?)")
    te_file = checkpoint / "model_1.safetensors"
    te_state = convert_state_dict_to_diffusers(_peft_keys(load_file(str(te_file)))) if te_file.is_file() else {}
    tmp = out / ".export.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    write_diffusers_lora(tmp, unet_state, te_state, rank, alpha)
    os.replace(tmp / "pytorch_lora_weights.safetensors", target)
    tmp.rmdir()
    return target
