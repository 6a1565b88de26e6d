"""Where the shipped mini-world weights live, and which model a fresh clone generates with (no Django).

    weights/base/        the base mini model (diffusers folder, fp16): modern-style portraits
    weights/retro-lora/  its retro DreamBooth LoRA, made by miniworld_bench through the training path
    weights/miniclip/    mini-CLIP (open_clip local-dir layout) for CLIP scores on mini-world pictures
    weights/classifier.safetensors   the ground-truth attribute classifier
"""
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"
BASE = WEIGHTS / "base"
RETRO_LORA_DIR = WEIGHTS / "retro-lora"
RETRO_LORA = RETRO_LORA_DIR / "pytorch_lora_weights.safetensors"
MINICLIP = WEIGHTS / "miniclip"
CLASSIFIER = WEIGHTS / "classifier.safetensors"


def _registered() -> dict:
    done = RETRO_LORA_DIR / "done.json"
    return json.loads(done.read_text(encoding="utf-8")) if done.exists() else {}


def retro_lora_scale() -> float:
    """The scale the shipped LoRA was judged at (miniworld_bench --ship --lora-scale writes it into its
    done.json) and is registered with; 1.0 for a LoRA shipped without one."""
    return float(_registered().get("lora_scale", 1.0))


def retro_guidance_scale() -> float | None:
    """The CFG scale the shipped LoRA was judged at (--ship --ship-guidance) and is registered with as its
    default; None (the site's) for a LoRA shipped without one."""
    value = _registered().get("guidance_scale")
    return None if value is None else float(value)


def default_model() -> tuple[str, str | None] | None:
    """(base folder, LoRA file or None) of the best shipped model, or None when the weights are absent."""
    if not (BASE / "model_index.json").exists():
        return None
    return str(BASE), (str(RETRO_LORA) if RETRO_LORA.exists() else None)


def miniclip_spec() -> str | None:
    """The open_clip spec of the shipped mini-CLIP, for RETROPORTAL_CLIP_MODEL."""
    return f"local-dir:{MINICLIP}" if (MINICLIP / "open_clip_config.json").exists() else None


def total_size() -> int:
    """Bytes of every shipped weight file (the issue's budget is 40 MB)."""
    return sum(p.stat().st_size for p in WEIGHTS.rglob("*") if p.is_file())


def default_spec() -> dict | None:
    """The shipped default for the generator app (RETROPORTAL_FALLBACK_MODEL names this function), or None."""
    model = default_model()
    if model is None:
        return None
    base, lora = model
    if lora is None:
        return {"name": "miniworld-base", "base": base, "lora": None, "lora_scale": 1.0}
    return {"name": "miniworld-retro", "base": base, "lora": lora, "lora_scale": retro_lora_scale(),
            "guidance_scale": retro_guidance_scale()}
