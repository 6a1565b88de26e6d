"""One optimizer step: k micro-batches (gradient accumulation), instance + prior losses, penalties,
clipping, the update, EMA, and the numbers that go to metrics.csv.

Every random draw of micro-batch i (latent sample, noise, timesteps) comes from a generator seeded by
(seed, i), and batch i itself is recomputed from its index (data.BatchPlan): a resumed run replays
exactly what an uninterrupted run would have done, with no data-loader state to restore.
"""
import contextlib
import math
import time
from dataclasses import dataclass, field

import torch

from . import losses, regularization
from .config import TrainConfig
from .data import BatchPlan
from .encoding import LatentSource, TextSource


class TrainingError(RuntimeError):
    """Training stopped (non-finite loss, out of memory, ...); the message names the step and what to do."""


@dataclass
class Run:
    cfg: TrainConfig
    accelerator: object
    unet: torch.nn.Module  # prepared (possibly DDP-wrapped)
    text_encoder: torch.nn.Module
    noise_scheduler: object
    optimizer: object
    lr_scheduler: object
    unet_params: list
    te_params: list
    latents: LatentSource
    texts: TextSource
    plan: BatchPlan
    class_plan: BatchPlan | None
    anchor: regularization.Anchor | None = None  # θ₀ for full fine-tune L2-SP
    ema: object = None
    named: dict = field(default_factory=dict)  # "unet.x"/"text_encoder.x" -> trained parameter

    def te_active(self, step: int) -> bool:
        stop = self.cfg.stop_text_encoder_after
        return self.cfg.train_text_encoder and (stop is None or step <= stop)

    def active_params(self, step: int) -> list:
        return self.unet_params + (self.te_params if self.te_active(step) else [])


def _generator(cfg: TrainConfig, index: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed((cfg.seed * 1_000_003 + index) * 4 + stream)


def _denoise_loss(run: Run, examples, index: int, stream: int, te_active: bool) -> torch.Tensor:
    """Diffusion loss of one batch of examples (all of one bucket)."""
    gen = _generator(run.cfg, index, stream)
    latents = run.latents.sample(examples, gen)  # (B, 4, h, w)
    noise = losses.sample_noise(latents, run.cfg.noise_offset, gen)
    t = losses.sample_timesteps(run.noise_scheduler, latents.shape[0], gen, latents.device)
    noisy = run.noise_scheduler.add_noise(latents, noise, t)
    cond = run.texts.embed([e.prompt for e in examples], trainable=te_active, cache=run.cfg.cache_text_embeddings)
    pred = run.unet(noisy, t, cond.to(noisy.dtype)).sample
    target = losses.target_for(run.noise_scheduler, latents, noise, t)
    return losses.diffusion_loss(pred, target, t, run.noise_scheduler, run.cfg.snr_gamma)


def penalties(run: Run, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(L2-SP, L2) terms, weights applied, over the parameters training at `step`."""
    cfg, zero = run.cfg, torch.zeros(())
    l2sp = zero
    if cfg.l2sp_weight:
        if cfg.method == "lora":
            models = [run.accelerator.unwrap_model(run.unet)]
            models += [run.accelerator.unwrap_model(run.text_encoder)] if run.te_active(step) else []
            l2sp = cfg.l2sp_weight * regularization.lora_delta_penalty(models)
        else:
            active = {k: p for k, p in run.named.items() if run.te_active(step) or k.startswith("unet.")}
            l2sp = cfg.l2sp_weight * run.anchor.penalty(active)
    l2 = cfg.l2_weight * regularization.l2_penalty(run.active_params(step)) if cfg.l2_weight else zero
    return l2sp, l2


def _micro_batch(run: Run, step: int, micro: int) -> dict[str, torch.Tensor]:
    cfg, acc = run.cfg, run.accelerator
    index = ((step - 1) * cfg.gradient_accumulation_steps + micro) * acc.num_processes + acc.process_index
    te_active = run.te_active(step)
    parts = {"diffusion_loss": _denoise_loss(run, run.plan.batch(index), index, 0, te_active)}
    if run.class_plan is not None:
        parts["prior_loss"] = _denoise_loss(run, run.class_plan.batch(index), index, 1, te_active)
    parts["l2sp"], parts["l2"] = penalties(run, step)
    parts["loss"] = (parts["diffusion_loss"] + cfg.prior_loss_weight * parts.get("prior_loss", 0.0)
                     + parts["l2sp"] + parts["l2"])
    if not torch.isfinite(parts["loss"]):
        raise TrainingError(
            f"loss became {parts['loss'].item()} at step {step} (diffusion {parts['diffusion_loss'].item():.4g}); "
            "training stopped, the last checkpoint is kept. Try a lower learning rate, max_grad_norm, or "
            "mixed_precision=no")
    return parts


def optimizer_step(run: Run, step: int) -> dict[str, float]:
    """Accumulate k micro-batches, clip, update, step the LR schedule and EMA; returns the step's logs."""
    cfg, acc = run.cfg, run.accelerator
    start, k = time.perf_counter(), cfg.gradient_accumulation_steps
    totals: dict[str, float] = {}
    models = [run.unet] + ([run.text_encoder] if run.te_active(step) else [])
    for micro in range(k):
        with contextlib.ExitStack() as stack:
            if micro < k - 1:  # no gradient all-reduce until the last micro-batch (DDP)
                for model in models:
                    stack.enter_context(acc.no_sync(model))
            parts = _micro_batch(run, step, micro)
            acc.backward(parts["loss"] / k)
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + float(torch.as_tensor(value).detach()) / k
    if cfg.max_grad_norm > 0:
        acc.clip_grad_norm_(run.active_params(step), cfg.max_grad_norm)
    logs = {**{n: _mean_over_processes(acc, v) for n, v in totals.items()}, "lr": run.lr_scheduler.get_last_lr()[0]}
    run.optimizer.step()
    run.lr_scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.step(run.unet_params)
    logs["seconds"] = time.perf_counter() - start
    logs.setdefault("prior_loss", 0.0)
    return logs


def _mean_over_processes(acc, value: float) -> float:
    if acc.num_processes == 1:
        return value
    mean = acc.reduce(torch.tensor([value], device=acc.device), reduction="mean")
    return float(mean.item()) if math.isfinite(value) else value
