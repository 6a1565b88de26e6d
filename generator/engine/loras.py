"""LoRA mixing: several LoRAs at their own scales on the loaded base, as diffusers (peft) adapters.

The base pipeline stays loaded: each LoRA file is loaded as a named adapter into the UNet (and text
encoder, if it has layers for it), the adapters are weighted with `set_adapters`, the job draws, and
the LoRA layers are unloaded again, so the cached pipeline is exactly the base for the next job
(same weights, same module names). A LoRA
file is a few MB; the base is gigabytes — reloading the former per job is the cheap side.

A LoRA trained on another architecture is refused before anything loads when its base architecture
is known (`LoraChoice.base_architecture`), and otherwise when its tensors do not fit the model;
both errors name the LoRA and the model.
"""
import contextlib
import re
from pathlib import Path

from .generation_info import LoraInfo
from .hashes import a1111_lora_name
from .loading import PICKLE_SUFFIXES, LoadedModel
from .params import LoraChoice, ParamError


def _family(architecture: str) -> str:
    return "sd2" if architecture.startswith("sd2") else architecture


def _adapter_name(index: int, name: str) -> str:
    return f"mix{index}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)[:40]


def check_architecture(model: LoadedModel, lora: LoraChoice) -> None:
    if lora.base_architecture and _family(lora.base_architecture) != _family(model.architecture):
        raise ParamError("loras", f"LoRA {lora.name!r} was trained for {lora.base_architecture} but model "
                                  f"{model.name!r} is {model.architecture}; pick a LoRA made for {model.architecture}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:200] + ("…" if len(text) > 200 else "")


@contextlib.contextmanager
def mixed_loras(model: LoadedModel, loras: tuple[LoraChoice, ...], allow_pickle: bool = False):
    """Inside the block `model.pipeline` draws with `loras` mixed in; yields [LoraInfo] for the infotext."""
    if not loras:
        yield []
        return
    pipe = model.pipeline
    names, infos = [], []
    try:
        for index, lora in enumerate(loras):
            check_architecture(model, lora)
            source = Path(lora.source or lora.name)
            if not source.exists():
                raise ParamError("loras", f"LoRA {lora.name!r} has no file at {source}; register it again")
            if source.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
                raise ParamError("loras", f"LoRA {lora.name!r} is a pickle file, which can run code when loaded; "
                                          "convert it to .safetensors")
            name = _adapter_name(index, lora.name)
            try:
                pipe.load_lora_weights(str(source), adapter_name=name)
            except Exception as e:  # peft/diffusers: size mismatch, unknown keys, bad file
                raise ParamError("loras", f"LoRA {lora.name!r} does not fit model {model.name!r} "
                                          f"({model.architecture}): {_one_line(e)}") from e
            names.append(name)
            alias, file_hash = a1111_lora_name(source)
            infos.append(LoraInfo(alias, file_hash, lora.scale))
        pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
        yield infos
    finally:
        if names:
            # Removes the peft wrapper layers too (delete_adapters alone leaves them, renaming the base's
            # weights to `…base_layer…` in its state dict); weights fused at load time stay fused.
            pipe.unload_lora_weights()
