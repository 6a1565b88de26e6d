"""One optimizer step: k micro-batches (gradient accumulation), instance + prior losses, penalties,
clipping, the update, EMA, and the numbers that go to metrics.csv.

Every random draw of micro-batch i (latent sample, noise, timesteps) comes from a generator seeded by
(seed, i), and batch i itself is recomputed from its index (data.BatchPlan): a resumed run replays
exactly what an uninterrupted run would have done, with no data-loader state to restore.

Nothing here reads a tensor's value: a step's losses stay on the device (metrics_log.Window) until a
logging step reads the whole window at once, so an accelerator never waits for the host mid-run.
"""
import contextlib
import math
import time
from dataclasses import dataclass

import torch

from . import losses, regularization
from .config import TrainConfig
from .data import BatchPlan, drop_tags
from .encoding import LatentSource, TextSource

LOSS_COLUMNS = ("loss", "diffusion_loss", "prior_loss")


class TrainingError(RuntimeError):
    """Training stopped (non-finite loss, out of memory, ...); the message names the step and what to do."""


@dataclass
class TrainingState:
    cfg: TrainConfig
    accelerator: object
    unet: torch.nn.Module  # prepared (possibly DDP-wrapped)
    text_encoder: torch.nn.Module
    schedule: losses.NoiseSchedule
    optimizer: object
    lr_scheduler: object
    unet_params: list
    te_params: list
    latents: LatentSource
    texts: TextSource
    plan: BatchPlan
    class_plan: BatchPlan | None
    regularizer: regularization.Regularizer | None = None  # L2-SP / L2, applied to the gradients
    ema: object = None

    def te_active(self, step: int) -> bool:
        stop = self.cfg.stop_text_encoder_after
        return self.cfg.train_text_encoder and (stop is None or step <= stop)

    def active_params(self, step: int) -> list:
        return self.unet_params + (self.te_params if self.te_active(step) else [])

    def active_groups(self, step: int) -> list[str]:
        return ["unet"] + (["text_encoder"] if self.te_params and self.te_active(step) else [])


def _generator(cfg: TrainConfig, index: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed((cfg.seed * 1_000_003 + index) * 4 + stream)


def batch_prompts(cfg: TrainConfig, examples, index: int, stream: int) -> list[str]:
    """The batch's captions with caption_dropout (whole captions → "") and caption_tag_dropout applied, drawn
    from a generator of their own (streams 2, 3), so the latent, noise and timestep draws are the same with and
    without them."""
    prompts = [e.prompt for e in examples]
    if not (cfg.caption_dropout or cfg.caption_tag_dropout):
        return prompts
    gen = _generator(cfg, index, 2 + stream)
    if cfg.caption_dropout:
        kept = (torch.rand(len(prompts), generator=gen) >= cfg.caption_dropout).tolist()
        prompts = [p if k else "" for p, k in zip(prompts, kept)]
    if cfg.caption_tag_dropout:
        keep = tuple(p.lower() for p in (cfg.instance_prompt, cfg.class_prompt) if p.strip())
        prompts = [drop_tags(p, cfg.caption_tag_dropout, keep, gen) for p in prompts]
    return prompts


def _denoise_loss(run: TrainingState, examples, index: int, stream: int, te_active: bool) -> torch.Tensor:
    """Diffusion loss of one batch of examples (all of one bucket)."""
    gen = _generator(run.cfg, index, stream)
    latents = run.latents.sample(examples, gen)  # (B, 4, h, w)
    noise = losses.sample_noise(latents, run.cfg.noise_offset, gen)
    t = losses.sample_timesteps(run.schedule, latents.shape[0], gen, latents.device)
    noisy = run.schedule.add_noise(latents, noise, t)
    if run.cfg.channels_last:
        noisy = noisy.contiguous(memory_format=torch.channels_last)
    cond = run.texts.embed(batch_prompts(run.cfg, examples, index, stream), trainable=te_active,
                           cache=run.cfg.cache_text_embeddings and not run.cfg.caption_tag_dropout)
    pred = run.unet(noisy, t, cond.to(noisy.dtype)).sample
    target = losses.target_for(run.schedule, latents, noise, t)
    return losses.diffusion_loss(pred, target, t, run.schedule, run.cfg.snr_gamma)


def _micro_batch(run: TrainingState, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(instance loss, class loss or None) of micro-batch `micro` of optimizer step `step`."""
    cfg, acc = run.cfg, run.accelerator
    index = ((step - 1) * cfg.gradient_accumulation_steps + micro) * acc.num_processes + acc.process_index
    te_active = run.te_active(step)
    diffusion = _denoise_loss(run, run.plan.batch(index), index, 0, te_active)
    prior = _denoise_loss(run, run.class_plan.batch(index), index, 1, te_active) if run.class_plan else None
    return diffusion, prior


def optimizer_step(run: TrainingState, step: int, measure: bool) -> dict:
    """Accumulate k micro-batches, add the penalties' gradients, clip, update, step the LR schedule and EMA.

    Returns the step's numbers for metrics_log.Window (losses as device tensors). The penalties are
    measured only when `measure` (a logging step); otherwise they and the total `loss` are None.
    """
    cfg, acc = run.cfg, run.accelerator
    start, k = time.perf_counter(), cfg.gradient_accumulation_steps
    models = [run.unet] + ([run.text_encoder] if run.te_active(step) else [])
    diffusion = prior = 0.0
    for micro in range(k):
        with contextlib.ExitStack() as stack:
            if micro < k - 1:  # no gradient all-reduce until the last micro-batch (DDP)
                for model in models:
                    stack.enter_context(acc.no_sync(model))
            d, p = _micro_batch(run, step, micro)
            acc.backward((d if p is None else d + cfg.prior_loss_weight * p) / k)
        diffusion = diffusion + d.detach() / k
        prior = prior + (p.detach() / k if p is not None else 0.0)
    acc.unscale_gradients()  # fp16: the penalties' gradients are added to unscaled gradients
    penalties = run.regularizer.apply(run.active_groups(step), measure) if run.regularizer else {}
    if cfg.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(run.active_params(step), cfg.max_grad_norm, foreach=True)
    lr = run.lr_scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.lr_scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.step(run.unet_params)
    data = diffusion + cfg.prior_loss_weight * prior
    if run.regularizer is None:
        penalties, loss = {"l2sp": 0.0, "l2": 0.0}, data
    elif measure:
        loss = data + penalties["l2sp"].to(data.device) + penalties["l2"].to(data.device)
    else:
        penalties, loss = {"l2sp": None, "l2": None}, None
    return {"loss": loss, "diffusion_loss": diffusion, "prior_loss": prior, **penalties, "lr": lr,
            "seconds": time.perf_counter() - start}


def finite_prefix(rows: list[dict]) -> int:
    """How many leading rows (drained numbers) have finite losses."""
    for i, row in enumerate(rows):
        if any(row.get(k) is not None and not math.isfinite(row[k]) for k in LOSS_COLUMNS):
            return i
    return len(rows)


def non_finite_error(row: dict) -> TrainingError:
    value = next(row[k] for k in LOSS_COLUMNS if row.get(k) is not None and not math.isfinite(row[k]))
    return TrainingError(
        f"loss became {value} at step {row['step']} (diffusion {row['diffusion_loss']:.4g}); "
        "training stopped, the last checkpoint is kept. Try a lower learning rate, max_grad_norm, or "
        "mixed_precision=no")
