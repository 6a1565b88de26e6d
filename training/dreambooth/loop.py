"""train(cfg): DreamBooth (Ruiz et al., "DreamBooth: Fine Tuning Text-to-Image Diffusion Models for
Subject-Driven Generation", CVPR 2023) for SD 1.x/2.x, full or LoRA, through accelerate.

Order of business: refuse bad input before loading any model (preflight), load, generate missing
class pictures, set up (or restore) the training state, run optimizer steps with checkpoints and
validation grids, then export weights, loss curve and model card.
"""
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import checkpointing, class_images, lora, models, validation
from .config import ConfigError, TrainConfig, check_resume_compatible, save_config
from .data import (BatchPlan, DatasetError, Example, image_files, images_dir, is_prepared, prepare_raw,
                   scan_dataset)
from .encoding import LatentSource, TextSource
from .losses import NoiseSchedule
from .metrics_log import MetricsLog, Window
from .model_card import write_card
from .regularization import Regularizer, group
from .step import TrainingState, TrainingError, finite_prefix, non_finite_error, optimizer_step

log = logging.getLogger(__name__)
MEMORY_HINTS = ("batch_size=1 with gradient_accumulation_steps>1, method=lora, gradient_checkpointing=true, "
                "mixed_precision=bf16 or fp16, use_8bit_adam=true, train_text_encoder=false, a lower resolution")


@dataclass
class TrainResult:
    out: Path
    step: int
    cancelled: bool
    logs: dict
    files: list[str]


def preflight(cfg: TrainConfig) -> tuple[list[Example], Path | None]:
    """Every check that needs no model: dataset, class folder, base model folder, out folder, extras."""
    models.check_base_model(cfg.base_model)
    dataset = Path(cfg.dataset)
    if dataset.is_dir() and image_files(images_dir(dataset)) and not is_prepared(dataset):
        dataset = prepare_raw(dataset, Path(cfg.out) / "prepared-dataset", cfg.resolution, cfg.instance_prompt)
    examples = scan_dataset(dataset, cfg.instance_prompt, cfg.resolution, cfg.bucket_step)
    class_dir = None
    if cfg.with_prior_preservation:
        class_dir = Path(cfg.class_data_dir or class_images.default_class_dir(
            cfg.out, cfg.base_model, cfg.class_prompt, cfg.resolution))
        class_images.check_class_dir(class_dir, Path(cfg.dataset), [e.path for e in examples])
    if cfg.use_8bit_adam and importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("use_8bit_adam", "bitsandbytes is not installed (pip install bitsandbytes), or turn it off")
    out = Path(cfg.out)
    if cfg.resume and (out / "config.toml").exists():
        check_resume_compatible(cfg, out / "config.toml")
    elif not cfg.resume and (checkpointing.checkpoints(out) or (out / "metrics.csv").exists()):
        raise ConfigError("out", f"{out} already holds a run; pass resume to continue it, or choose another folder")
    return examples, class_dir


def _accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps its settings process-wide; a worker process training run after run (each with its
    # own mixed_precision) needs them cleared. The process group (PartialState) is kept.
    AcceleratorState._reset_state()
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    try:
        # cpu=True without CUDA: under torchrun (or `accelerate launch --multi_gpu`) accelerate then picks
        # MULTI_CPU with gloo instead of silently running every process as a separate single-process run
        return Accelerator(mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available(),
                           log_with="tensorboard" if tensorboard else None, project_dir=str(Path(cfg.out) / "logs"))
    except (ValueError, RuntimeError) as exc:
        raise ConfigError("mixed_precision", f"{cfg.mixed_precision} is not available here ({exc})") from None


def _optimizer(cfg: TrainConfig, unet_params: list, te_params: list):
    groups = [{"params": unet_params, "lr": cfg.learning_rate}]
    if te_params:
        groups.append({"params": te_params, "lr": cfg.te_lr})
    if cfg.use_8bit_adam:
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(groups, weight_decay=cfg.adam_weight_decay)
    # fused: one kernel over all tensors (CPU and CUDA); torch's default on the CPU loops over them in Python
    return torch.optim.AdamW(groups, weight_decay=cfg.adam_weight_decay, fused=True)


def _regularizer(cfg: TrainConfig, comps, unet_params: list, te_params: list) -> Regularizer | None:
    if not (cfg.l2sp_weight or cfg.l2_weight):
        return None
    lora_run, l2sp = cfg.method == "lora", bool(cfg.l2sp_weight)
    groups = {"unet": group(comps.unet, unet_params, l2sp, lora_run)}
    if te_params:
        groups["text_encoder"] = group(comps.text_encoder, te_params, l2sp, lora_run)
    return Regularizer(groups, cfg.l2sp_weight, cfg.l2_weight)


def _class_plan(cfg: TrainConfig, acc, comps, class_dir: Path | None) -> BatchPlan | None:
    if class_dir is None:
        return None
    pipe = lambda: validation.build_pipeline(comps.vae, comps.text_encoder, comps.tokenizer, comps.unet,  # noqa: E731
                                             comps.sample_scheduler)
    if acc.is_main_process:
        class_images.ensure_class_images(pipe, class_dir, cfg.base_model, cfg.class_prompt, cfg.num_class_images,
                                         cfg.seed, cfg.class_inference_steps, cfg.resolution)
    acc.wait_for_everyone()
    files = image_files(class_dir)[:cfg.num_class_images]
    size = (cfg.resolution, cfg.resolution)
    return BatchPlan([Example(p, class_images.class_caption(p, cfg.class_prompt), size) for p in files],
                     cfg.batch_size, cfg.seed + 1)


def setup(cfg: TrainConfig, examples: list[Example], class_dir: Path | None) -> tuple[TrainingState, object]:
    """Load the models, class pictures, optimizer and schedules; wrap them with accelerate."""
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    acc = _accelerator(cfg)
    if cfg.method == "lora":
        checkpointing.keep_only_adapters(acc)
    set_seed(cfg.seed)  # LoRA's random A init
    comps = models.load_components(cfg.base_model)
    if cfg.export_single_file and comps.base_version != "sd_v1":
        raise ConfigError("export_single_file", "single-file export supports SD 1.x bases only "
                          f"(this base is {comps.base_version}); the diffusers folder works in ComfyUI")
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32)
    comps.vae.to(acc.device)
    comps.text_encoder.to(acc.device)
    comps.unet.to(acc.device)
    class_plan = _class_plan(cfg, acc, comps, class_dir)
    unet_params, te_params = models.select_trainable(cfg, comps, weight_dtype)
    if cfg.channels_last:
        comps.unet.to(memory_format=torch.channels_last)
    if cfg.compile:
        comps.unet.compile()  # in place: the module, its parameters and state-dict keys stay as they are
    regularizer = _regularizer(cfg, comps, unet_params, te_params)
    optimizer = _optimizer(cfg, unet_params, te_params)
    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                                 num_training_steps=cfg.max_steps)
    ema = EMAModel(unet_params, decay=cfg.ema_decay, foreach=True) if cfg.use_ema else None
    if ema is not None:
        acc.register_for_checkpointing(ema)
    if te_params:
        unet, te, optimizer, lr_scheduler = acc.prepare(comps.unet, comps.text_encoder, optimizer, lr_scheduler)
    else:
        unet, optimizer, lr_scheduler = acc.prepare(comps.unet, optimizer, lr_scheduler)
        te = comps.text_encoder
    latents = LatentSource(comps.vae, weight_dtype, acc.device, cfg.cache_latents)
    latents.warm(examples)
    run = TrainingState(cfg, acc, unet, te, NoiseSchedule(comps.noise_scheduler, acc.device), optimizer, lr_scheduler,
              unet_params, te_params, latents, TextSource(comps.tokenizer, te, acc.device),
              BatchPlan(examples, cfg.batch_size, cfg.seed), class_plan, regularizer, ema)
    return run, comps


def _restore(run: TrainingState) -> int:
    cfg, out = run.cfg, Path(run.cfg.out)
    checkpointing.remove_incomplete(out)
    latest = checkpointing.latest_checkpoint(out) if cfg.resume else None
    if latest is None:
        return 0
    state = checkpointing.load_checkpoint(run.accelerator, latest, adapters_only=cfg.method == "lora")
    log.info("resumed from %s (step %d)", latest, state["step"])
    return int(state["step"])


def _grid(run: TrainingState, comps, step: int) -> Path:
    acc, cfg = run.accelerator, run.cfg
    pipe = validation.build_pipeline(comps.vae, acc.unwrap_model(run.text_encoder), comps.tokenizer,
                                     acc.unwrap_model(run.unet), comps.sample_scheduler)
    with acc.autocast():  # frozen weights are in the mixed-precision dtype
        return validation.save_grid(pipe, Path(cfg.out), step, cfg.prompts_for_validation, cfg.seed,
                                    cfg.validation_inference_steps, cfg.resolution)


def _save(run: TrainingState, step: int) -> Path:
    cfg = run.cfg
    return checkpointing.save_checkpoint(run.accelerator, Path(cfg.out), step, {"max_steps": cfg.max_steps},
                                         cfg.checkpoints_total_limit)


def _is_logging_step(cfg: TrainConfig, step: int, start: int) -> bool:
    """The first step of a (resumed) run, every log_every-th, every checkpoint and the last."""
    return (step == start + 1 or step % cfg.log_every == 0 or step == cfg.max_steps
            or bool(cfg.checkpoint_steps and step % cfg.checkpoint_steps == 0))


def _flush(run: TrainingState, window: Window, metrics: MetricsLog | None) -> dict:
    """Read the window's numbers (one device sync), check them, write their rows; returns the last row."""
    acc = run.accelerator
    rows = window.drain((lambda t: acc.reduce(t, reduction="mean")) if acc.num_processes > 1 else None)
    good = finite_prefix(rows)
    if metrics is not None and good:
        metrics.append(rows[:good])
    if good < len(rows):
        raise non_finite_error(rows[good])
    logs = {k: v for k, v in rows[-1].items() if k != "step" and v is not None}
    if metrics is not None:
        acc.log(logs, step=rows[-1]["step"])
    return logs


def train(cfg: TrainConfig, on_progress: Callable[[int, int, dict], None] | None = None,
          should_cancel: Callable[[], bool] | None = None) -> TrainResult:
    """Run (or resume) DreamBooth training as configured; returns where it stopped and what it wrote."""
    examples, class_dir = preflight(cfg)
    run, comps = setup(cfg, examples, class_dir)
    acc, out = run.accelerator, Path(cfg.out)
    if acc.is_main_process:
        save_config(cfg, out / "config.toml")
        acc.init_trackers("dreambooth")
    step = start = _restore(run)
    metrics, logs = (MetricsLog(out, resume_step=start) if acc.is_main_process else None), {}
    window = Window()
    try:
        while step < cfg.max_steps:
            step += 1
            logging = _is_logging_step(cfg, step, start)
            window.add(step, optimizer_step(run, step, measure=logging))
            if logging:
                logs = _flush(run, window, metrics)
            if on_progress:
                on_progress(step, cfg.max_steps, logs)  # the losses of the last logging step
            if cfg.validation_steps and step % cfg.validation_steps == 0 and step < cfg.max_steps \
                    and acc.is_main_process:
                _grid(run, comps, step)
            if should_cancel and should_cancel():
                logs = logs if logging else _flush(run, window, metrics)
                _save(run, step)
                return TrainResult(out, step, True, logs, [])
            if cfg.checkpoint_steps and step % cfg.checkpoint_steps == 0 and step < cfg.max_steps:
                _save(run, step)
    except torch.OutOfMemoryError:
        raise TrainingError(f"out of memory at step {step}; to use less memory try: {MEMORY_HINTS}") from None
    if step > start:
        _save(run, step)  # the final state can be resumed with a larger max_steps
    files = finish(run, comps, examples, step, logs) if acc.is_main_process else []
    acc.wait_for_everyone()
    acc.end_training()
    return TrainResult(out, step, False, logs, files)


def finish(run: TrainingState, comps, examples: list[Example], step: int, logs: dict) -> list[str]:
    """Export the weights, the final validation grid, loss.png and README.md."""
    cfg, acc, out = run.cfg, run.accelerator, Path(run.cfg.out)
    unet, te = acc.unwrap_model(run.unet), acc.unwrap_model(run.text_encoder)
    if run.ema is not None:
        run.ema.copy_to(run.unet_params)
    if cfg.method == "lora":
        files = [lora.save_diffusers_lora(out, unet, te, cfg.rank, cfg.lora_alpha).name,
                 lora.save_kohya_lora(out, unet, te, cfg.lora_alpha,
                                      lora.kohya_metadata(cfg, comps.base_version, step, len(examples))).name]
    else:
        single_file = f"{cfg.output_name}.safetensors" if cfg.export_single_file else None
        files = models.save_full_pipeline(out, comps, unet, te, single_file, cfg.export_dtype)
    grid = _grid(run, comps, step)
    MetricsLog(out, resume_step=step).plot()
    buckets = sorted({e.size for e in examples})
    summary = {"num_images": len(examples), "num_buckets": len(buckets), "buckets": buckets, "steps": step,
               "prediction_type": run.schedule.prediction_type,
               "seconds": sum(float(r["seconds"]) for r in MetricsLog(out, resume_step=step).rows())}
    write_card(cfg, summary, {k: float(v) for k, v in logs.items()}, grid, files + ["metrics.csv", "loss.png"])
    return files


__all__ = ["train", "TrainResult", "TrainingError", "DatasetError", "ConfigError", "preflight"]
