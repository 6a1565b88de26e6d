"""CLIP score of an image against its prompt, with open_clip (no torchmetrics needed).

The score is the DreamBooth paper's CLIP-T: the cosine between the L2-normalised CLIP image
embedding and the L2-normalised text embedding, a number in [-1, 1] (typically 0.2-0.35 for a
matching prompt with ViT-H-14). `clip_score_100` gives torchmetrics' 0-100 scale, 100 * max(cos, 0).

Models are named the way open_clip names them:
  * `ARCH/PRETRAINED`, e.g. `ViT-H-14/laion2b_s32b_b79k` (a pretrained tag, fetched from the hub
    cache) or `ViT-B-32//srv/models/clip.safetensors` (PRETRAINED a local weights file);
  * `hf-hub:org/repo`, an open_clip model on the Hugging Face hub;
  * `local-dir:/path`, open_clip 3's own folder layout (`open_clip_config.json` +
    `open_clip_model.safetensors`), loaded natively by `open_clip.create_model_from_pretrained`.

Anything that prevents loading (weights not downloaded while offline, missing folder, unknown
architecture) raises ClipUnavailable with a one-line reason; callers store it instead of a score.
open_clip is imported lazily: its import costs ~3 s, which Django start-up and `--help` should not pay.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .devices import pick_device

SETTING_HINT = "set RETROPORTAL_CLIP_MODEL (or --clip-model) to an available model, e.g. local-dir:/path/to/open_clip_folder"


class ClipUnavailable(RuntimeError):
    """No CLIP model could be loaded for a spec; `reason` is one line naming the spec and the fix."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def clip_score_100(cosine: float) -> float:
    """torchmetrics-style CLIP score: 100 * max(cosine, 0)."""
    return 100.0 * max(cosine, 0.0)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """(model_name, pretrained) for open_clip: schema specs pass through, `ARCH/PRETRAINED` is split."""
    if spec.startswith(("local-dir:", "hf-hub:")):
        return spec, None
    arch, sep, pretrained = spec.partition("/")
    return arch, (pretrained or None) if sep else None


@dataclass
class ClipScorer:
    """A loaded open_clip model with its image preprocessing and tokenizer."""

    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    spec: str
    device: str

    @torch.no_grad()
    def embed_images(self, images) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(image.convert("RGB")) for image in images]).to(self.device)
        features = self.model.encode_image(pixels.to(next(self.model.parameters()).dtype))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        features = self.model.encode_text(self.tokenizer(texts).to(self.device))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    def score(self, images, prompts: list[str]) -> list[float]:
        """Cosine of image i with prompt i (one prompt is used for every image)."""
        if len(prompts) == 1 and len(images) > 1:
            prompts = prompts * len(images)
        if len(prompts) != len(images):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts; give one prompt or one per image")
        if not images:
            return []
        return (self.embed_images(images) * self.embed_texts(prompts)).sum(dim=-1).tolist()


def load_clip(spec: str, device: str | None = None) -> ClipScorer:
    """Load the open_clip model named by `spec` (see module docstring) or raise ClipUnavailable."""
    device = device or pick_device()
    name, pretrained = parse_spec(spec)
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:"):])
        if not (folder / "open_clip_config.json").is_file():
            raise ClipUnavailable(f"CLIP model {spec!r} is unavailable: {folder} has no open_clip_config.json; {SETTING_HINT}")
    elif not name.startswith("hf-hub:") and not pretrained:
        raise ClipUnavailable(f"CLIP model {spec!r} names no pretrained weights (use ARCH/PRETRAINED); {SETTING_HINT}")
    previous_disable = logging.root.manager.disable
    logging.disable(logging.ERROR)  # open_clip logs multi-line errors on the root logger; we raise one line
    try:
        import open_clip

        precision = "fp16" if torch.device(device).type == "cuda" else "fp32"
        model, preprocess = open_clip.create_model_from_pretrained(
            name, pretrained=pretrained, device=device, precision=precision
        )
        tokenizer = open_clip.get_tokenizer(name)
    except ImportError as e:
        raise ClipUnavailable(f"CLIP model {spec!r} is unavailable: open_clip_torch is not installed ({e})") from e
    except Exception as e:  # open_clip/hub raise RuntimeError, OSError, ValueError, hub errors when offline
        detail = " ".join(str(e).split())[:240]
        raise ClipUnavailable(f"CLIP model {spec!r} is unavailable ({detail}); {SETTING_HINT}") from e
    finally:
        logging.disable(previous_disable)
    model.eval()
    return ClipScorer(model=model, preprocess=preprocess, tokenizer=tokenizer, spec=spec, device=device)
