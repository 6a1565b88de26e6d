"""DreamBooth fine-tuning of Stable Diffusion 1.x/2.x (full or LoRA), Django-free.

    from training.dreambooth import load_config, train
    cfg = load_config("run.toml", {"max_steps": 800})
    result = train(cfg, on_progress=lambda step, total, logs: ..., should_cancel=lambda: False)
"""
from .config import ConfigError, TrainConfig, load_config, save_config
from .data import DatasetError
from .loop import TrainResult, preflight, train
from .step import TrainingError

__all__ = ["ConfigError", "DatasetError", "TrainConfig", "TrainResult", "TrainingError", "load_config",
           "preflight", "save_config", "train"]
