"""Checkpoints: accelerator.save_state (weights, optimizer, LR scheduler, RNG, EMA) + the step counter.

Written into checkpoint-N.tmp and renamed to checkpoint-N only once complete, so a kill at any
moment leaves either a whole checkpoint or none; `trainer_state.json` is written last inside the
temp folder, and a folder without it is never loaded. Only the last K checkpoints are kept.
"""
import json
import os
import re
import shutil
from pathlib import Path

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `out`, oldest first."""
    found = []
    for path in Path(out).glob("checkpoint-*"):
        match = _NAME.match(path.name)
        if match and (path / STATE_FILE).exists():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(out: Path) -> Path | None:
    found = checkpoints(out)
    return found[-1][1] if found else None


def remove_incomplete(out: Path) -> None:
    """Delete checkpoint-N.tmp folders left by a killed run."""
    for path in Path(out).glob("checkpoint-*.tmp"):
        shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(accelerator, out: Path, step: int, state: dict, keep: int) -> Path:
    """Save the full training state at optimizer step `step`; call on every process."""
    final = Path(out) / f"checkpoint-{step}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json(tmp / STATE_FILE, {**state, "step": step})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for _, old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def keep_only_adapters(accelerator) -> None:
    """LoRA runs: model files in checkpoints hold the adapter tensors only, not the frozen base weights
    (megabytes instead of SD's 3.4 GB UNet per checkpoint); load with adapters_only=True."""

    def drop_frozen(models, weights, output_dir):
        for i, state in enumerate(weights):
            weights[i] = {k: v for k, v in state.items() if "lora_" in k}

    accelerator.register_save_state_pre_hook(drop_frozen)


def load_checkpoint(accelerator, path: Path, adapters_only: bool = False) -> dict:
    """Restore everything save_checkpoint saved; returns the trainer state (holds 'step')."""
    accelerator.load_state(str(path), strict=not adapters_only)
    return json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8"))


def _write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
