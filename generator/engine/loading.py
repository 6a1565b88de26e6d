"""Load a Stable Diffusion pipeline from whatever users register: a folder, a hub id or a single file.

Every failure a user can cause (missing path, a folder that is not a pipeline, a pickle checkpoint,
a hub model that is not downloaded while offline) becomes a ModelLoadError with one line that names
the source and says how to fix it, instead of a traceback from deep inside diffusers.

Sources, in the order they are recognised:
  * an existing folder with `model_index.json`: a diffusers pipeline (`save_pretrained` layout);
  * an existing `.safetensors` file: an A1111/ComfyUI-style single-file checkpoint, loaded with
    `from_single_file`. diffusers needs the matching diffusers *config* files to build the
    components; pass `config_dir` (a local diffusers folder of the same architecture, weights not
    needed) to load fully offline, otherwise diffusers fetches the configs from the hub;
  * `.ckpt .bin .pt .pth` files are Python pickles, which can run arbitrary code when loaded: they
    are refused unless `allow_pickle=True` (folders likewise load only `.safetensors` weights);
  * `org/repo`: a Hugging Face hub id, loaded from the local cache (downloaded first when online).

torch/diffusers are imported only once a load really starts, so the cheap refusals above (missing
path, pickle, not a pipeline) answer the CLI in a fraction of a second.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .hashes import a1111_lora_name

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
ARCHITECTURES = ("sd1", "sd2", "sd2-v", "sdxl")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelLoadError(ValueError):
    """A model could not be loaded; the message is one line naming the source and the fix."""

    def __init__(self, source: str, message: str):
        super().__init__(message)
        self.source = source


@dataclass
class LoadedModel:
    """A ready pipeline plus what the infotext and the registry need to know about it."""

    pipeline: object
    source: str
    architecture: str  # one of ARCHITECTURES
    model_hash: str  # A1111-style short hash, see model_hash_for
    name: str
    device: str
    dtype: torch.dtype
    lora: str | None = None
    lora_scale: float = 1.0
    lora_alias: str | None = None  # A1111's name and hash for the LoRA (hashes.a1111_lora_name)
    lora_hash: str | None = None

    @property
    def native_size(self) -> int:
        """Image side the model was trained at: UNet sample size × VAE downscale (SD1 512, SD2 768, SDXL 1024)."""
        return int(self.pipeline.unet.config.sample_size * self.pipeline.vae_scale_factor)


def short_hash(paths: list[Path]) -> str:
    """First 10 hex digits of the sha256 of the files' bytes, concatenated in the given order.

    For one file this is exactly A1111's "Model hash" (its `sha256[:10]` short hash), so images made
    here from a `.safetensors` checkpoint carry the same hash as images made by A1111 from it.
    """
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:10]


def model_hash_for(folder: Path, allow_pickle: bool) -> str:
    """A stable short hash of a diffusers folder: the sha256 of its UNet weight file(s).

    A folder has no single file A1111 would hash. The UNet is what fine-tuning (DreamBooth) changes
    and what differs between models sharing a VAE/text encoder, so hashing it identifies the model
    while staying stable across re-saves of the other components. Sharded weights are hashed in
    file-name order. The hash of a folder therefore differs from the hash of the same model exported
    as one `.safetensors` file (A1111's hash covers all components).
    """
    patterns = ["diffusion_pytorch_model*.safetensors"] + (["diffusion_pytorch_model*.bin"] if allow_pickle else [])
    for pattern in patterns:
        files = sorted((folder / "unet").glob(pattern))
        if files:
            return short_hash(files)
    return ""


def folder_native_size(folder: str | os.PathLike) -> int | None:
    """A diffusers folder's native image side from its configs alone (no weights loaded), or None.

    The same number as LoadedModel.native_size: UNet sample_size × the VAE's 2**(levels - 1) downscale.
    """
    try:
        unet = json.loads((Path(folder) / "unet" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((Path(folder) / "vae" / "config.json").read_text(encoding="utf-8"))
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def detect_architecture(pipe) -> str:
    """'sdxl', 'sd2-v', 'sd2' or 'sd1', read from the pipeline's components.

    Heuristic (documented because it is one):
      * SDXL has a second text encoder (`text_encoder_2`);
      * SD 2.x uses OpenCLIP ViT-H (hidden size 1024, UNet cross_attention_dim 1024), SD 1.x uses
        OpenAI CLIP ViT-L (768). Models with other sizes (e.g. the tiny test models) fall back on the
        tokenizer: SD 2.x tokenizers pad with '!', SD 1.x with '<|endoftext|>';
      * an SD 2.x model whose scheduler has prediction_type 'v_prediction' is 'sd2-v' (SD 2.x 768-v).
    """
    if getattr(pipe, "text_encoder_2", None) is not None or type(pipe).__name__.startswith("StableDiffusionXL"):
        return "sdxl"
    hidden = getattr(getattr(pipe.text_encoder, "config", None), "hidden_size", None)
    cross = pipe.unet.config.cross_attention_dim
    if 1024 in (hidden, cross):
        family = "sd2"
    elif 768 in (hidden, cross):
        family = "sd1"
    else:
        family = "sd2" if getattr(pipe.tokenizer, "pad_token", None) == "!" else "sd1"
    if family == "sd2" and pipe.scheduler.config.get("prediction_type") == "v_prediction":
        return "sd2-v"
    return family


@contextlib.contextmanager
def quiet_progress():
    """Hide diffusers/transformers loading/saving bars inside the block, then restore them.

    Their bars would otherwise flood the CLI's stderr and the worker log on every load.
    """
    from diffusers.utils import logging as d_logging
    from transformers.utils import logging as t_logging

    was = d_logging.is_progress_bar_enabled(), t_logging.is_progress_bar_enabled()
    d_logging.disable_progress_bar()
    t_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was[0]:
            d_logging.enable_progress_bar()
        if was[1]:
            t_logging.enable_progress_bar()


def _offline_default() -> bool:
    """HF_HUB_OFFLINE read at call time (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _pipeline_class(model_index: dict):
    """StableDiffusionXLPipeline when the folder has a second text encoder, else StableDiffusionPipeline."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if "text_encoder_2" in model_index:
        return StableDiffusionXLPipeline
    return StableDiffusionPipeline


def _pipeline_kwargs(cls) -> dict:
    from diffusers import StableDiffusionPipeline

    if cls is StableDiffusionPipeline:
        return dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return {}


def _read_model_index(source: str, folder: Path) -> dict:
    """The folder's model_index.json, checked to describe a Stable Diffusion text-to-image pipeline."""
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ModelLoadError(
            source,
            f"{source} is a folder but not a diffusers pipeline (no model_index.json); "
            "point to a folder saved with save_pretrained, or to a .safetensors checkpoint file",
        )
    try:
        model_index = json.loads(index_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ModelLoadError(source, f"{source}: model_index.json is not valid JSON ({_one_line(e)})") from e
    if "unet" not in model_index or "text_encoder" not in model_index:
        raise ModelLoadError(
            source,
            f"{source} is a {model_index.get('_class_name', 'diffusers')} folder, not a Stable Diffusion "
            "text-to-image pipeline (needs unet and text_encoder)",
        )
    return model_index


def _load_folder(source: str, folder: Path, dtype, allow_pickle: bool):
    cls = _pipeline_class(_read_model_index(source, folder))
    try:
        pipe = cls.from_pretrained(
            str(folder), dtype=dtype, use_safetensors=not allow_pickle, **_pipeline_kwargs(cls)
        )
    except (OSError, ValueError, EnvironmentError) as e:
        hint = "" if allow_pickle else " (only .safetensors weights are loaded unless pickles are allowed)"
        raise ModelLoadError(source, f"cannot load pipeline folder {source}: {_one_line(e)}{hint}") from e
    return pipe, model_hash_for(folder, allow_pickle)


def _load_hub(source: str, dtype, allow_pickle: bool, local_files_only: bool):
    from diffusers import DiffusionPipeline

    try:
        folder = DiffusionPipeline.download(source, local_files_only=local_files_only, use_safetensors=not allow_pickle)
    except Exception as e:  # huggingface_hub raises many types (offline, 401, 404, network)
        where = "not in the local cache and the hub is offline" if local_files_only else "not available from the hub"
        raise ModelLoadError(
            source,
            f"hub model {source} is {where}: download it first (`huggingface-cli download {source}`) "
            f"or register a local folder/.safetensors path instead ({_one_line(e)})",
        ) from e
    return _load_folder(source, Path(folder), dtype, allow_pickle)


def _single_file_class(path: Path, config_dir: str | None):
    """SDXL or SD class for a single-file checkpoint: from config_dir's model_index, else from its keys."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if config_dir:
        index_path = Path(config_dir) / "model_index.json"
        if not index_path.is_file():
            raise ModelLoadError(str(path), f"config_dir {config_dir} has no model_index.json; use a diffusers folder")
        return _pipeline_class(json.loads(index_path.read_text(encoding="utf-8")))
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            if any(key.startswith("conditioner.embedders.1.") for key in f.keys()):
                return StableDiffusionXLPipeline
    return StableDiffusionPipeline


def _load_single_file(source: str, path: Path, dtype, config_dir: str | None, local_files_only: bool):
    import torch

    cls = _single_file_class(path, config_dir)
    kwargs = dict(local_files_only=local_files_only, **_pipeline_kwargs(cls))
    if dtype != torch.float32:  # passing fp32 makes diffusers cast (and warn about) already-fp32 modules
        kwargs["dtype"] = dtype
    if config_dir:
        kwargs["config"] = str(config_dir)
    try:
        pipe = cls.from_single_file(str(path), **kwargs)
    except Exception as e:  # diffusers raises ValueError/OSError/KeyError/hub errors depending on the file
        hint = "" if config_dir else "; for offline use give config_dir, a diffusers folder of the same architecture"
        raise ModelLoadError(source, f"cannot load checkpoint {source}: {_one_line(e)}{hint}") from e
    return pipe, short_hash([path])


def _apply_lora(pipe, source: str, lora: str, scale: float, allow_pickle: bool) -> tuple[str, str]:
    """Load a LoRA (diffusers, kohya or A1111 format) and fuse it into the weights at `scale`.

    Fusing bakes the LoRA into the base weights once: generation then costs no extra matmuls, and the
    scale is fixed for this LoadedModel (the cache key includes the LoRA path and scale, so another
    scale is another cached model). Returns A1111's (alias, hash) of the LoRA for the infotext.
    """
    path = Path(lora)
    if not path.exists():
        raise ModelLoadError(lora, f"LoRA {lora} does not exist; give a .safetensors LoRA file or folder")
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(lora, f"LoRA {lora} is a pickle file, which can run code when loaded; "
                                   "convert it to .safetensors or allow pickles explicitly")
    try:
        pipe.load_lora_weights(str(path), adapter_name="retroportal")
        pipe.fuse_lora(lora_scale=scale)
        pipe.unload_lora_weights()
    except Exception as e:  # peft/diffusers raise ValueError/KeyError/RuntimeError on mismatched LoRAs
        raise ModelLoadError(lora, f"cannot apply LoRA {lora} to {source}: {_one_line(e)}") from e
    return a1111_lora_name(path)


def check_source(source: str, allow_pickle: bool = False) -> str:
    """'folder', 'file' or 'hub': how `source` would load, or ModelLoadError if it cannot.

    Cheap (a few stat calls and model_index.json, no torch import): forms and the CLI call it to
    refuse a missing path, a pickle or a non-pipeline folder before paying for a load.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        _read_model_index(source, path)
        return "folder"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES and not allow_pickle:
            raise ModelLoadError(
                source,
                f"{source} is a pickle checkpoint ({suffix}), which can run arbitrary code when loaded; "
                "convert it to .safetensors, or allow pickles explicitly (--allow-pickle / RETROPORTAL_ALLOW_PICKLE=1)",
            )
        if suffix not in PICKLE_SUFFIXES + (".safetensors",):
            raise ModelLoadError(source, f"{source} is not a model file; use a .safetensors checkpoint or a diffusers folder")
        return "file"
    if _HUB_ID.match(source) and not source.startswith((".", "/", "~")):
        return "hub"
    raise ModelLoadError(
        source,
        f"model {source} not found: no such file or folder, and not a hub id (org/repo); "
        "check the path or register the model with manage.py add_model",
    )


def load_pipeline(
    source: str,
    *,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    allow_pickle: bool = False,
    config_dir: str | None = None,
    lora: str | None = None,
    lora_scale: float = 1.0,
    local_files_only: bool | None = None,
    name: str | None = None,
) -> LoadedModel:
    """Load `source` (folder, single file or hub id) onto `device`, ready for `generate`.

    device/dtype default to `pick_device()` / `default_dtype(device)`. local_files_only defaults to
    HF_HUB_OFFLINE. `name` is what the infotext calls the model (default: derived from the source).
    Raises ModelLoadError for anything the user can fix.
    """
    source = str(source)
    kind = check_source(source, allow_pickle)
    from .devices import default_dtype, pick_device

    device = device or pick_device()
    dtype = dtype or default_dtype(device)
    if local_files_only is None:
        local_files_only = _offline_default()
    path = Path(source).expanduser()
    with quiet_progress():
        if kind == "folder":
            pipe, model_hash = _load_folder(source, path, dtype, allow_pickle)
            default_name = path.resolve().name
        elif kind == "file":
            pipe, model_hash = _load_single_file(source, path, dtype, config_dir, local_files_only)
            default_name = path.stem
        else:
            pipe, model_hash = _load_hub(source, dtype, allow_pickle, local_files_only)
            default_name = source
        lora_alias, lora_hash = _apply_lora(pipe, source, lora, lora_scale, allow_pickle) if lora else (None, None)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    return LoadedModel(
        pipeline=pipe,
        source=source,
        architecture=detect_architecture(pipe),
        model_hash=model_hash,
        name=name or default_name,
        device=device,
        dtype=dtype,
        lora=lora,
        lora_scale=lora_scale,
        lora_alias=lora_alias,
        lora_hash=lora_hash,
    )
