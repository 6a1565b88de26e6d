"""manage.py train: DreamBooth fine-tuning from the command line (a thin shell over training.dreambooth).

Every TrainConfig setting is a flag (`batch_size` -> `--batch-size`; booleans also take `--no-...`);
`--config run.toml` supplies the same keys with underscores and flags override it. `--base-model` and
`--dataset` take a path, or the name of a registered model / prepared dataset.
Data-parallel: `accelerate launch --multi_gpu --num_processes 2 manage.py train ...` (torchrun underneath;
on a machine without CUDA the processes use gloo on CPU) or `torchrun --nproc_per_node 2 manage.py train ...`.
(`accelerate launch --cpu --num_processes N` starts N processes only through mpirun with --mpirun_hostfile.)
SIGINT/SIGTERM save a checkpoint and stop; rerun with --resume to continue.
"""
import argparse
import dataclasses
import os
import signal
import typing
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.dreambooth import ConfigError, DatasetError, TrainingError, load_config, train
from training.dreambooth.config import TrainConfig
from training.dreambooth.presets import PRESETS


def _resolve_model(value: str) -> str:
    """A path as given, else the local folder of the registered model of that name."""
    if value is None or Path(value).exists():
        return value
    from generator.models import AIModel

    model = AIModel.objects.filter(name=value).first()
    if model is None:
        raise CommandError(f"--base-model {value}: no such folder and no registered model of that name")
    return model.source


def _resolve_dataset(value: str) -> str:
    """A path as given, else the prepared folder of the dataset of that name."""
    if value is None or Path(value).exists():
        return value
    from training.models import Dataset

    dataset = Dataset.objects.filter(name=value).first()
    if dataset is None:
        raise CommandError(f"--dataset {value}: no such folder and no dataset of that name")
    return str(dataset.prepared_dir)


def _model_defaults(base_model: str | None) -> dict:
    """Settings that follow the base model unless given: the resolution is its native size (64 for the
    mini-world base, 512 for SD 1.x), read from its configs."""
    from generator.engine.loading import folder_native_size

    size = folder_native_size(base_model) if base_model else None
    return {"resolution": size} if size else {}


def _rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 when run alone)."""
    return int(os.environ.get("RANK", "0"))


def _register_hint(cfg, preset) -> str:
    """The add_model line that registers what the preset trained with the defaults it was measured at."""
    lora = cfg.method == "lora"
    path = Path(cfg.out) / "pytorch_lora_weights.safetensors" if lora else Path(cfg.out)
    flags = "".join(f" --default-{name.replace('_', '-')} {value:g}" for name, value in preset.generation.items())
    return (f"register it: manage.py add_model --name {cfg.output_name} --path {path}"
            f"{' --lora-of BASE_NAME' if lora else ''}{flags}  (the {preset.name} preset's recommended defaults)")


class Command(BaseCommand):
    help = "Fine-tune Stable Diffusion with DreamBooth (full or LoRA) on a prepared dataset folder."
    requires_system_checks = []  # paths only: no database needed

    def add_arguments(self, parser):
        parser.add_argument("--config", help="TOML file with the same settings (keys with underscores)")
        parser.add_argument("--preset", choices=sorted(PRESETS),
                            help="a named recipe (training/dreambooth/presets.py); --config and flags override it")
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(TrainConfig):
            flag = "--" + f.name.replace("_", "-")
            if hints[f.name] is bool:
                parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
            elif typing.get_origin(hints[f.name]) is list:
                parser.add_argument(flag, dest=f.name, action="append", metavar="TEXT",
                                    help="repeat for several")
            else:
                parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper())

    def handle(self, *args, **options):
        overrides = {f.name: options.get(f.name) for f in dataclasses.fields(TrainConfig)}
        overrides["base_model"] = _resolve_model(overrides["base_model"])
        overrides["dataset"] = _resolve_dataset(overrides["dataset"])
        try:
            cfg = load_config(options.get("config"), overrides, preset=options.get("preset"),
                              defaults=_model_defaults(overrides["base_model"]))
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        stop = {"requested": False}

        def request_stop(signum, frame):
            stop["requested"] = True
            self.stderr.write("stopping: saving a checkpoint after this step (rerun with --resume)")

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, request_stop)
        result = self._train(cfg, lambda: stop["requested"])
        what = "stopped at" if result.cancelled else "finished"
        if _rank() == 0:
            self.stdout.write(f"{what} step {result.step}/{cfg.max_steps}: {cfg.out}")
            preset = PRESETS.get(options.get("preset") or "")
            if preset and preset.generation and not result.cancelled:
                self.stdout.write(_register_hint(cfg, preset))

    def _train(self, cfg, should_cancel):
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, desc="train", unit="step", dynamic_ncols=True, file=self.stderr._out,
                   disable=_rank() != 0)

        def on_progress(step, total, logs):
            bar.n = step
            bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}")

        try:
            return train(cfg, on_progress=on_progress, should_cancel=should_cancel)
        except (ConfigError, DatasetError, TrainingError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
