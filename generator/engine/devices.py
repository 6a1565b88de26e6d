"""Where a model runs and in which precision.

Kept tiny on purpose: every entry point (web worker, CLI, tests) asks the same two questions and
must get the same answers, otherwise "same seed, same image" breaks between them.
"""
import torch


def pick_device() -> str:
    """Best available accelerator: CUDA, then Apple MPS, then the CPU."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str | torch.device) -> torch.dtype:
    """fp16 on CUDA (half the memory, tensor cores); fp32 elsewhere, where fp16 is slow or unsupported."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32
