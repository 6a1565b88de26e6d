"""Prompt translation before encoding (translate="id": Bahasa Indonesia -> English) with a MarianMT model.

Real SD text encoders read English; a MarianMT model (e.g. Helsinki-NLP/opus-mt-id-en, ~300 MB) turns an
Indonesian prompt into the English one the model understands. The model named by
RETROPORTAL_TRANSLATE_MODEL (a local folder or a hub id in the local cache) is loaded once per worker,
like the pipelines (generator.engine.cache.translators). Weights are never downloaded at run time when
the hub is offline; a missing model is a TranslatorUnavailable with one line saying how to fix it.

Prompt syntax survives: text is translated piece by piece between weight brackets, so
`(gadis berambut merah:1.3)` becomes `(girl with red hair:1.3)`, not a translation of the brackets.
"""
import os
import re
import warnings
from dataclasses import dataclass

import torch

from .loading import quiet_progress

# Bracketed weights, BREAK and LoRA tags are kept as they are; the text between them is translated.
_SYNTAX = re.compile(r"(\\[()\[\]]|<lora:[^>]*>|:\s*[+-]?[.\d]+\s*\)|[()\[\]]|\bBREAK\b|,)")


class TranslatorUnavailable(RuntimeError):
    """No translation model could be loaded for a spec; `reason` is one line naming it and the fix."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Translator:
    """A loaded MarianMT model; call it with a list of prompts to get their English text."""

    tokenizer: object
    model: object
    spec: str
    max_new_tokens: int = 200

    @torch.no_grad()
    def _texts(self, texts: list[str]) -> list[str]:
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.model.device)
        limit = min(self.max_new_tokens, self.model.config.max_position_embeddings - 1)
        out = self.model.generate(**batch, max_new_tokens=limit, num_beams=1, do_sample=False)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def __call__(self, prompts: list[str]) -> list[str]:
        """Each prompt translated, its weight syntax, commas, BREAK and LoRA tags kept in place."""
        results = []
        for prompt in prompts:
            parts = _SYNTAX.split(prompt)
            words = [i for i, part in enumerate(parts) if part.strip() and not _SYNTAX.fullmatch(part)]
            english = self._texts([parts[i].strip() for i in words]) if words else []
            for i, text in zip(words, english):
                lead = " " if parts[i][:1].isspace() else ""
                trail = " " if parts[i][-1:].isspace() else ""
                parts[i] = lead + text + trail
            results.append("".join(parts).strip())
        return results


def load_translator(spec: str, device: str = "cpu", local_files_only: bool | None = None) -> Translator:
    """Load the MarianMT model and tokenizer `spec` (folder or hub id) onto `device`."""
    if not spec:
        raise TranslatorUnavailable("translation is off: set RETROPORTAL_TRANSLATE_MODEL "
                                    "(e.g. Helsinki-NLP/opus-mt-id-en) and restart the worker")
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        from transformers import MarianMTModel, MarianTokenizer

        with quiet_progress(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
            tokenizer = MarianTokenizer.from_pretrained(spec, local_files_only=local_files_only)
            model = MarianMTModel.from_pretrained(spec, local_files_only=local_files_only).to(device).eval()
    except Exception as e:  # OSError (not cached / no such folder), ImportError (sentencepiece), ValueError
        text = " ".join(str(e).split())[:200]
        raise TranslatorUnavailable(
            f"cannot load translation model {spec}: {text}; download it first "
            f"(`huggingface-cli download {spec}`) or point RETROPORTAL_TRANSLATE_MODEL at a local folder") from e
    return Translator(tokenizer, model, spec)
